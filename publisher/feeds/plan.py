"""Which feed documents exist, what each holds, and whether it must be rebuilt.

Pure. From light per-post facts (no bodies) we lay out every document:

- one **site feed**, plus one feed per **tag** and per **author**, each in
  Atom, RSS and JSON Feed;
- the site feed keeps its full history as **RFC 5005 archive pages**: the
  posts, oldest first, cut into pages of ``page_size``. Only full pages are
  written. A full page's entries never change (new posts go to newer pages).
  Archive pages link both ways (RFC 5005 §4): ``prev-archive`` to the page
  before, ``next-archive`` to the page after, and ``current`` to the
  subscription document; so the newest page changes once more, when the page
  after it fills and it gains its ``next-archive`` link. The subscription
  document holds the newest ``page_size`` posts, which always include the posts
  not yet on a full page, and links ``prev-archive`` to the newest full page.
- tag and author feeds hold the newest ``page_size`` posts; their history is
  in the site archive.

Each document gets a fingerprint of everything it is made from, so a build
renders only the documents whose fingerprint changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from ..urls import FEED_FILES, Urls
from .model import FeedMeta, Links

#: bump when the output for the same input changes, to rebuild everything once
FORMAT_VERSION = "2"


class Stub(NamedTuple):
    """What planning needs to know of a visible post (a tuple: there are many)."""

    id: int
    #: changes whenever anything shown in the post's entry changes
    version: str
    author: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedSpec:
    """One feed: its folder under the feed root, metadata, and whether it is archived."""

    folder: str
    meta: FeedMeta
    archived: bool = False


@dataclass(frozen=True)
class DocPlan:
    """One document to write in every format.

    Paths and links follow from the feed, the page and the number of full
    pages; they are worked out only when asked for, since most documents of
    a large site are unchanged and never rendered.
    """

    spec: FeedSpec
    #: 1-based archive page (oldest first), or None for the subscription document
    page: int | None
    #: full archive pages of this feed
    pages: int
    #: newest first
    post_ids: tuple[int, ...]
    fingerprint: str
    urls: Urls

    @property
    def is_archive(self) -> bool:
        return self.page is not None

    @cached_property
    def paths(self) -> dict[str, str]:
        return document_paths(self.spec.folder, self.page)

    @cached_property
    def links(self) -> dict[str, Links]:
        folder, page, feed = self.spec.folder, self.page, self.urls.feed
        current = document_paths(folder, None)
        if page is None:
            older = document_paths(folder, self.pages) if self.pages else None
            return {
                kind: Links(feed(current[kind]), prev_archive=feed(older[kind]) if older else None)
                for kind in FEED_FILES
            }
        older = document_paths(folder, page - 1) if page > 1 else None
        newer = document_paths(folder, page + 1) if page < self.pages else None
        return {
            kind: Links(
                self=feed(self.paths[kind]),
                current=feed(current[kind]),
                prev_archive=feed(older[kind]) if older else None,
                next_archive=feed(newer[kind]) if newer else None,
            )
            for kind in FEED_FILES
        }


def document_paths(folder: str, page: int | None) -> dict[str, str]:
    """``atom.xml`` … for the subscription document, ``archive/atom-3.xml`` … for page 3."""
    if page is None:
        return {kind: folder + name for kind, name in FEED_FILES.items()}
    return {kind: f"{folder}archive/{stem}-{page}.{ext}" for kind, (stem, ext) in _STEMS.items()}


_STEMS = {kind: tuple(name.rsplit(".", 1)) for kind, name in FEED_FILES.items()}


def _fingerprint(head: str, versions: Iterable[str]) -> str:
    return hashlib.sha256((head + "\0" + "\0".join(versions)).encode()).hexdigest()


def plan_feed(
    spec: FeedSpec,
    stubs: Sequence[Stub],
    page_size: int,
    urls: Urls,
    salt: str = "",
) -> list[DocPlan]:
    """The documents of one feed, given its posts oldest first.

    A fingerprint covers the format version, the salt (site-wide facts), the
    feed, the document's place in the archive (which fixes its links: the
    newest page has no ``next-archive`` yet) and the versions of its posts.
    """
    pages = len(stubs) // page_size if spec.archived else 0
    head = f"{FORMAT_VERSION}\0{salt}\0{spec!r}\0{urls!r}"
    plans = []
    for page in range(1, pages + 1):
        chunk = stubs[(page - 1) * page_size : page * page_size]
        ids = tuple(s.id for s in reversed(chunk))
        place = f"{page}" if page < pages else f"{page}:newest"
        fingerprint = _fingerprint(f"{head}\0{place}", (s.version for s in chunk))
        plans.append(DocPlan(spec, page, pages, ids, fingerprint, urls))
    newest = stubs[-page_size:]
    ids = tuple(s.id for s in reversed(newest))
    fingerprint = _fingerprint(f"{head}\0current:{pages}", (s.version for s in newest))
    plans.append(DocPlan(spec, None, pages, ids, fingerprint, urls))
    return plans


def plan_documents(
    site: FeedSpec,
    tags: dict[str, FeedSpec],
    authors: dict[str, FeedSpec],
    stubs: Sequence[Stub],
    page_size: int,
    urls: Urls,
    salt: str = "",
) -> list[DocPlan]:
    """Every document of every feed. ``stubs`` are the visible posts, oldest first.

    Tags and authors without a visible post get no feed.
    """
    by_tag: dict[str, list[Stub]] = {}
    by_author: dict[str, list[Stub]] = {}
    for stub in stubs:
        for tag in stub.tags:
            by_tag.setdefault(tag, []).append(stub)
        if stub.author is not None:
            by_author.setdefault(stub.author, []).append(stub)
    plans = plan_feed(site, stubs, page_size, urls, salt)
    for slug, members in sorted(by_tag.items()):
        plans += plan_feed(tags[slug], members, page_size, urls, salt)
    for slug, members in sorted(by_author.items()):
        plans += plan_feed(authors[slug], members, page_size, urls, salt)
    return plans


#: what serialising an entry costs, against what a document costs on top of its
#: entries (its head in three formats, three files): measured at 10,000 posts,
#: ~0.25 ms an entry and ~1 ms a document on a fresh folder, up to ~3 ms where
#: the disk is slow to create files
ENTRY_COST, DOCUMENT_COST = 1, 4


def split_shares(
    plans: Sequence[DocPlan], stubs: Sequence[Stub], shares: int
) -> list[list[DocPlan]]:
    """``plans`` cut into ``shares`` lists of about equal cost, for as many processes.

    A share costs its documents and the entries they list, each entry once
    (a process serialises an entry once, whatever documents of its share list it).
    Documents go in the order of their newest post, so archive pages stay together
    and the feeds of the newest posts share their entries; a share is closed once it
    holds its part of the whole. Entries listed in two shares are made twice: a
    few percent of them.
    """
    position = {stub.id: index for index, stub in enumerate(stubs)}
    ordered = sorted(plans, key=lambda p: max((position[i] for i in p.post_ids), default=0))
    distinct = len({i for plan in plans for i in plan.post_ids})
    part = (distinct * ENTRY_COST + len(plans) * DOCUMENT_COST) / shares
    result: list[list[DocPlan]] = [[]]
    seen: set[int] = set()
    spent = 0
    for plan in ordered:
        if spent >= part and len(result) < shares:
            result.append([])
            seen, spent = set(), 0
        new = [i for i in plan.post_ids if i not in seen]
        seen.update(new)
        spent += len(new) * ENTRY_COST + DOCUMENT_COST
        result[-1].append(plan)
    return result + [[] for _ in range(shares - len(result))]
