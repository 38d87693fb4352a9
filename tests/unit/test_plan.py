"""The feed planner and RFC 5005 paging, without a database: stubs in, plans out."""

from __future__ import annotations

import random

import pytest

from publisher.feeds.model import FeedMeta
from publisher.feeds.plan import (
    DOCUMENT_COST,
    ENTRY_COST,
    DocPlan,
    FeedSpec,
    Stub,
    document_paths,
    plan_documents,
    plan_feed,
    split_shares,
)
from publisher.urls import Urls

URLS = Urls(base="https://example.org/", feeds="https://example.org/feeds/")
FEEDS = URLS.feeds
SITE = FeedSpec("", FeedMeta(id=FEEDS + "atom.xml", title="Site", home=URLS.base), archived=True)


def stubs(count: int, version: str = "v") -> list[Stub]:
    """``count`` posts, oldest first, ids 1…count."""
    return [
        Stub(n, f"{version}{n}", "ana", ("events",) if n % 2 else ()) for n in range(1, count + 1)
    ]


def archive(plans: list[DocPlan]) -> list[DocPlan]:
    return [p for p in plans if p.is_archive]


def test_only_full_pages_are_archived_oldest_first() -> None:
    plans = plan_feed(SITE, stubs(10), 3, URLS)
    assert [p.page for p in plans] == [1, 2, 3, None]
    assert [p.post_ids for p in archive(plans)] == [(3, 2, 1), (6, 5, 4), (9, 8, 7)]
    # the subscription document holds the newest page_size posts, newest first
    assert plans[-1].post_ids == (10, 9, 8)


def test_paths_of_the_subscription_document_and_of_a_page() -> None:
    assert document_paths("tags/events/", None) == {
        "atom": "tags/events/atom.xml",
        "rss": "tags/events/rss.xml",
        "json": "tags/events/feed.json",
    }
    assert document_paths("", 3)["json"] == "archive/feed-3.json"


# RFC 5005 §4: archive pages link both ways and to the subscription document;
# the subscription document links to the newest page; the oldest page links forward.
def test_archive_pages_link_both_ways() -> None:
    plans = plan_feed(SITE, stubs(10), 3, URLS)
    first, second, newest, current = (p.links["atom"] for p in plans)
    assert first.self == FEEDS + "archive/atom-1.xml"
    assert (first.prev_archive, first.next_archive) == (None, FEEDS + "archive/atom-2.xml")
    assert second.prev_archive == FEEDS + "archive/atom-1.xml"
    assert second.next_archive == FEEDS + "archive/atom-3.xml"
    assert (newest.prev_archive, newest.next_archive) == (FEEDS + "archive/atom-2.xml", None)
    assert {first.current, second.current, newest.current} == {FEEDS + "atom.xml"}
    assert current.self == FEEDS + "atom.xml"
    assert current.prev_archive == FEEDS + "archive/atom-3.xml"
    assert (current.current, current.next_archive) == (None, None)
    assert plans[0].links["rss"].next_archive == FEEDS + "archive/rss-2.xml"


def test_a_feed_shorter_than_a_page_has_no_archive() -> None:
    (only,) = plan_feed(SITE, stubs(2), 3, URLS)
    assert only.page is None and only.post_ids == (2, 1)
    assert only.links["atom"].prev_archive is None


def test_tag_and_author_feeds_are_not_archived() -> None:
    spec = FeedSpec("tags/events/", FeedMeta(id="t", title="Events", home=URLS.base))
    (only,) = plan_feed(spec, stubs(10), 3, URLS)
    assert only.post_ids == (10, 9, 8)


# A build renders only what changed: a full page's fingerprint moves only when one
# of its posts changes, or when it stops being the newest page (it gains next-archive).
def test_fingerprints_change_only_with_what_a_document_shows() -> None:
    before = {p.page: p.fingerprint for p in plan_feed(SITE, stubs(9), 3, URLS)}
    edited = stubs(9)
    edited[4] = edited[4]._replace(version="edited")  # post 5, on page 2
    after = {p.page: p.fingerprint for p in plan_feed(SITE, edited, 3, URLS)}
    assert [page for page in before if before[page] != after[page]] == [2]  # not in the newest 3

    grown = {p.page: p.fingerprint for p in plan_feed(SITE, stubs(12), 3, URLS)}
    assert [page for page in before if before[page] != grown.get(page)] == [3, None]
    assert plan_feed(SITE, stubs(9), 3, URLS, salt="other")[0].fingerprint != before[1]


def test_every_tag_and_author_with_a_visible_post_gets_a_feed() -> None:
    tag = FeedSpec("tags/events/", FeedMeta(id="t", title="Events", home=URLS.base))
    author = FeedSpec("authors/ana/", FeedMeta(id="a", title="Ana", home=URLS.base))
    unused = FeedSpec("tags/unused/", FeedMeta(id="u", title="Unused", home=URLS.base))
    plans = plan_documents(
        SITE, {"events": tag, "unused": unused}, {"ana": author}, stubs(4), 3, URLS
    )
    assert [(p.spec.folder, p.page, p.post_ids) for p in plans] == [
        ("", 1, (3, 2, 1)),
        ("", None, (4, 3, 2)),
        ("tags/events/", None, (3, 1)),
        ("authors/ana/", None, (4, 3, 2)),
    ]


def _cost(share: list[DocPlan]) -> int:
    return len({i for p in share for i in p.post_ids}) * ENTRY_COST + len(share) * DOCUMENT_COST


def _tagged_site(count: int) -> list[DocPlan]:
    """A site of ``count`` posts with 3 of 40 tags each and 5 authors, every feed planned."""
    rng = random.Random(5)
    tags = [f"t{n}" for n in range(40)]
    posts = [Stub(n, f"v{n}", f"a{n % 5}", tuple(rng.sample(tags, 3))) for n in range(1, count + 1)]

    def spec(folder: str) -> FeedSpec:
        return FeedSpec(
            folder, FeedMeta(id=FEEDS + folder + "atom.xml", title=folder, home=URLS.base)
        )

    return plan_documents(
        SITE,
        {t: spec(f"tags/{t}/") for t in tags},
        {f"a{n}": spec(f"authors/a{n}/") for n in range(5)},
        posts,
        10,
        URLS,
    )


# A parallel build gives every document to exactly one process, and the processes
# about equal work: the build takes as long as its slowest share.
@pytest.mark.parametrize("shares", [1, 2, 3])
def test_shares_hold_every_document_once_at_about_equal_cost(shares: int) -> None:
    plans = _tagged_site(2000)
    posts = [Stub(n, f"v{n}") for n in range(1, 2001)]
    split = split_shares(plans, posts, shares)
    assert len(split) == shares
    assert sorted(id(p) for share in split for p in share) == sorted(id(p) for p in plans)
    costs = [_cost(share) for share in split]
    assert max(costs) <= 1.2 * min(costs)
    # an entry is made in more than one process only rarely
    whole = _cost(plans)
    assert sum(costs) <= 1.05 * whole + (shares - 1) * 100


def test_more_shares_than_documents_leaves_some_empty() -> None:
    plans = plan_feed(SITE, stubs(3), 10, URLS)
    split = split_shares(plans, stubs(3), 3)
    assert [len(share) for share in split] == [1, 0, 0]
