"""Building the feeds from the store: content, validity, archives, incremental writes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from publisher import db
from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.feeds.build import publish_feeds
from publisher.models import Author, Post, PostStatus, Tag
from tests.feedcheck import check_atom, check_json, check_rss, parse_ok
from tests.integration.test_store import SAMPLE

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SITE = "https://news.example.org/"
FEEDS = SITE + "feeds/"


@pytest.fixture
def built(sessions: sessionmaker[Session], settings: Settings, sample_dir: Path) -> Path:
    import_target(sessions, str(sample_dir), settings, NOW)
    publish_feeds(sessions, settings, NOW)
    return settings.feeds.output_dir


def test_sample_feeds_carry_every_post_field_by_field(built: Path, settings: Settings) -> None:
    atom = parse_ok((built / "atom.xml").read_bytes())
    rss = parse_ok((built / "rss.xml").read_bytes())
    berlin = settings.site.zone
    for parsed in (atom, rss):
        got = [
            (
                e.title,
                datetime(*e.published_parsed[:6], tzinfo=UTC).astimezone(berlin).date().isoformat(),
                e.get("author_detail", {}).get("name") or e.get("author"),
            )
            for e in parsed.entries
        ]
        assert got == SAMPLE
    first = atom.entries[0]
    assert first.id == "tag:news.example.org,2019-12-05:leave-no-one-behind-news-round-up"
    assert first.link == SITE + "news/leave-no-one-behind-news-round-up/"
    # readers show Atom's term: it is the tag's name, as in RSS, never the slug
    assert {t.term for t in first.tags} == {"Leave No One Behind", "SDGs"}
    assert {t.term for t in rss.entries[0].tags} == {"Leave No One Behind", "SDGs"}
    strategy = next(e for e in atom.entries if e.title == "Our strategy 2019 – 2021")
    (pdf,) = strategy.enclosures
    assert pdf.href == "https://icscentre.org/downloads/ICSC-Strategy-2019-2021.pdf"
    assert pdf.type == "application/pdf"
    assert "Download Strategy (PDF)" in strategy.content[0].value
    rss_strategy = next(e for e in rss.entries if e.title == "Our strategy 2019 – 2021")
    assert rss_strategy.enclosures[0].href == pdf.href
    assert rss_strategy.id == strategy.id
    # posts of the same day have distinct update times (readers sort by them)
    updated = [e.updated for e in atom.entries]
    assert len(set(updated)) == len(updated)
    assert atom.feed.updated == "2019-12-05T11:00:00+00:00", "derived from entries, not now"


def test_every_feed_is_valid(built: Path) -> None:
    atoms = sorted(built.rglob("atom*.xml"))
    assert len(atoms) >= 1 + 8 + 2  # site, 8 tags, 2 authors
    for atom in atoms:
        folder = atom.parent.relative_to(built).as_posix()
        prefix = "" if folder == "." else folder + "/"
        check_atom(atom.read_bytes(), FEEDS + prefix + "atom.xml", SITE)
        check_rss((atom.parent / "rss.xml").read_bytes(), FEEDS + prefix + "rss.xml", SITE)
        feed = check_json((atom.parent / "feed.json").read_bytes())
        assert feed["feed_url"] == FEEDS + prefix + "feed.json"


def test_tag_and_author_feeds(built: Path) -> None:
    tag = parse_ok((built / "tags/publications/atom.xml").read_bytes())
    assert [e.title for e in tag.entries] == [
        "Innovation Report, get involved!",
        "Discover: Innovation for civil society organisations in times of populism",
        "Our strategy 2019 – 2021",
        "New – 2019 flyer, find out what’s on and what we are doing this year",
    ]
    assert tag.feed.title == "Test Centre: Publications"
    miriam = parse_ok((built / "authors/miriam-niehaus/rss.xml").read_bytes())
    assert [e.title for e in miriam.entries] == [SAMPLE[2][0]]


def test_second_build_rewrites_nothing(
    built: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    files = sorted(p for p in built.rglob("*") if p.is_file())
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    time.sleep(0.01)
    report = publish_feeds(sessions, settings, NOW + timedelta(days=3))
    assert report.rendered == 0 and report.written == []
    # even when every document is rendered again, equal bytes are not rewritten
    forced = publish_feeds(sessions, settings, NOW, force=True)
    assert forced.rendered == forced.documents and forced.written == []
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == before


def add_post(
    session: Session,
    slug: str,
    when: datetime,
    status: PostStatus = PostStatus.PUBLISHED,
    title: str | None = None,
    body: str = "<p>Body</p>",
    tags: list[Tag] | None = None,
) -> Post:
    post = Post(
        uid=f"urn:test:{slug}",
        slug=slug,
        title=title or slug.title(),
        body_source="",
        body_html=body,
        status=status,
        published_at=when,
        updated_at=when,
        tags=tags or [],
    )
    session.add(post)
    return post


def test_one_new_post_rewrites_only_the_feeds_that_contain_it(
    built: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    with db.transaction(sessions) as session:
        tag = session.query(Tag).filter_by(slug="solidarity").one()
        author = session.query(Author).filter_by(slug="miriam-niehaus").one()
        post = add_post(session, "fresh", NOW - timedelta(hours=1), tags=[tag])
        post.author = author
    report = publish_feeds(sessions, settings, NOW)
    assert sorted(report.written) == sorted(
        f"{folder}{name}"
        for folder in ("", "tags/solidarity/", "authors/miriam-niehaus/")
        for name in ("atom.xml", "rss.xml", "feed.json")
    )
    assert parse_ok((built / "atom.xml").read_bytes()).entries[0].title == "Fresh"


def test_drafts_and_future_posts_never_appear_and_unpublished_posts_leave(
    built: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    with db.transaction(sessions) as session:
        add_post(session, "a-draft", NOW - timedelta(days=1), PostStatus.DRAFT)
        add_post(session, "the-future", NOW + timedelta(days=1), PostStatus.SCHEDULED)
        solidarity = (
            session.query(Post)
            .filter_by(
                slug="a-new-playbook-for-international-civil-society-to-put-into-action-solidarity"
            )
            .one()
        )
        solidarity.status = PostStatus.DRAFT
    report = publish_feeds(sessions, settings, NOW)
    titles = {e.title for p in built.rglob("atom.xml") for e in parse_ok(p.read_bytes()).entries}
    assert "A-Draft" not in titles and "The-Future" not in titles
    assert SAMPLE[2][0] not in titles
    # Miriam's only post and the tag only it had are gone with their feeds
    assert "authors/miriam-niehaus/atom.xml" in report.removed
    assert not (built / "tags/solidarity").exists()
    # the scheduled post appears once its time has come
    publish_feeds(sessions, settings, NOW + timedelta(days=2))
    assert parse_ok((built / "atom.xml").read_bytes()).entries[0].title == "The-Future"


def test_renaming_a_post_keeps_its_entry_id(
    built: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    before = parse_ok((built / "atom.xml").read_bytes()).entries[0]
    with db.transaction(sessions) as session:
        post = session.query(Post).filter_by(slug="leave-no-one-behind-news-round-up").one()
        post.slug, post.title = "lnob-round-up", "A new title"
    publish_feeds(sessions, settings, NOW)
    after = parse_ok((built / "atom.xml").read_bytes()).entries[0]
    assert after.id == before.id
    assert (after.title, after.link) == ("A new title", SITE + "news/lnob-round-up/")


def test_forbidden_characters_in_a_post_file_do_not_break_the_build(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    post = tmp_path / "nasty.md"
    post.write_text(
        "---\ntitle: Bad\x00nul\x0cform\ndate: 2026-11-20\nstatus: published\n---\n"
        "Body with a \x00 NUL and a \x0c form feed.\n"
    )
    import_target(sessions, str(post), settings, NOW)
    publish_feeds(sessions, settings, NOW)
    out = settings.feeds.output_dir
    check_atom((out / "atom.xml").read_bytes(), FEEDS + "atom.xml", SITE)
    check_rss((out / "rss.xml").read_bytes(), FEEDS + "rss.xml", SITE)
    feed = check_json((out / "feed.json").read_bytes())
    assert feed["items"][0]["title"] == "Badnulform"
    assert feed["items"][0]["content_html"] == "<p>Body with a  NUL and a  form feed.</p>\n"


def test_relative_links_become_absolute(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    with db.transaction(sessions) as session:
        add_post(
            session,
            "links",
            NOW - timedelta(days=1),
            body='<p><a href="/about/">About</a> <img src="img/x.png" alt="x"> '
            '<a href="https://other.example/">o</a></p>',
        )
    publish_feeds(sessions, settings, NOW)
    feed = check_json((settings.feeds.output_dir / "feed.json").read_bytes())
    html = feed["items"][0]["content_html"]
    assert 'href="https://news.example.org/about/"' in html
    assert 'src="https://news.example.org/img/x.png"' in html
    assert 'href="https://other.example/"' in html


def small_pages(settings: Settings, **feeds: object) -> Settings:
    return settings.model_copy(
        update={"feeds": settings.feeds.model_copy(update={"items": 3, **feeds})}
    )


def walk_archive(out: Path, start: str = "atom.xml", rel: str = "prev-archive") -> list[str]:
    """Follow prev-archive from the subscription document, as RFC 5005 readers do
    (or next-archive from the oldest page)."""
    parsed = parse_ok((out / start).read_bytes())
    titles = [e.title for e in parsed.entries]
    while True:
        prev = [x.href for x in parsed.feed.links if x.rel == rel]
        if not prev:
            return titles
        parsed = parse_ok((out / prev[0].removeprefix(FEEDS)).read_bytes())
        titles += [e.title for e in parsed.entries if e.title not in titles]


# A full archive page's entries never change, and its file changes only when
# the page after it fills (to gain its next-archive link, RFC 5005 §4).
def test_archive_pages_hold_the_whole_history_and_link_both_ways(
    sessions: sessionmaker[Session], settings: Settings, sample_dir: Path
) -> None:
    settings = small_pages(settings)
    out = settings.feeds.output_dir
    import_target(sessions, str(sample_dir), settings, NOW)
    publish_feeds(sessions, settings, NOW)
    # 10 posts, pages of 3: three full pages (oldest first) and the newest 3 in atom.xml
    assert sorted(p.name for p in (out / "archive").iterdir()) == sorted(
        f"{stem}-{n}.{ext}"
        for n in (1, 2, 3)
        for stem, ext in (("atom", "xml"), ("rss", "xml"), ("feed", "json"))
    )
    assert sorted(walk_archive(out)) == sorted(title for title, _, _ in SAMPLE)
    page1 = (out / "archive/atom-1.xml").read_bytes()
    check_atom(page1, FEEDS + "archive/atom-1.xml", SITE)
    assert b"<fh:archive/>" in page1
    assert b'rel="current" href="' + FEEDS.encode() + b'atom.xml"' in page1
    # the oldest page links forward, so an archive can be walked both ways
    assert b'rel="next-archive" href="' + FEEDS.encode() + b'archive/atom-2.xml"' in page1
    assert b"next-archive" not in (out / "archive/atom-3.xml").read_bytes()
    forward = walk_archive(out, "archive/atom-1.xml", "next-archive")
    assert len(forward) == 9 and set(forward) < {title for title, _, _ in SAMPLE}
    check_rss((out / "archive/rss-2.xml").read_bytes(), FEEDS + "archive/rss-2.xml", SITE)
    check_json((out / "archive/feed-3.json").read_bytes())

    full_pages = {p: p.stat().st_mtime_ns for p in (out / "archive").iterdir()}
    with db.transaction(sessions) as session:
        add_post(session, "new-1", NOW - timedelta(hours=1))
    report = publish_feeds(sessions, settings, NOW)
    assert not any(path.startswith("archive/") for path in report.written)
    assert {p: p.stat().st_mtime_ns for p in full_pages} == full_pages
    with db.transaction(sessions) as session:
        add_post(session, "new-2", NOW - timedelta(minutes=30))
    report = publish_feeds(sessions, settings, NOW)
    # page 4 is new; page 3 gains its next-archive link (JSON Feed has none, so its
    # bytes stay the same and it is not rewritten); pages 1 and 2 are untouched
    assert sorted(p for p in report.written if p.startswith("archive/")) == [
        "archive/atom-3.xml",
        "archive/atom-4.xml",
        "archive/feed-4.json",
        "archive/rss-3.xml",
        "archive/rss-4.xml",
    ]
    assert len(walk_archive(out)) == 12
    assert len(walk_archive(out, "archive/atom-1.xml", "next-archive")) == 12


def test_summary_mode(
    sessions: sessionmaker[Session], settings: Settings, sample_dir: Path
) -> None:
    settings = small_pages(settings, content="summary")
    import_target(sessions, str(sample_dir), settings, NOW)
    publish_feeds(sessions, settings, NOW)
    entry = parse_ok((settings.feeds.output_dir / "atom.xml").read_bytes()).entries[0]
    assert "content" not in entry
    assert entry.summary.startswith("The Leave No One Behind project was launched")
    assert entry.summary.endswith("…") and len(entry.summary) <= 301


# A parallel build writes the same bytes as a build on one process, whether its
# workers are forked (they must not use the connection they inherit) or spawned.
@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_build_on_every_core_writes_the_same_files(
    sessions: sessionmaker[Session],
    settings: Settings,
    sample_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    start: str,
) -> None:
    """The parallel path (workers reopen the database by URL) and the in-process one agree."""
    import publisher.feeds.build as jobs_module
    import publisher.feeds.workers as workers_module

    monkeypatch.setattr(workers_module, "start_method", lambda: start)

    settings = small_pages(settings)
    import_target(sessions, str(sample_dir), settings, NOW)
    with db.transaction(sessions) as session:
        for n in range(40):
            add_post(session, f"extra-{n}", NOW - timedelta(days=n + 1))
    alone = publish_feeds(sessions, settings, NOW)
    before = {p: p.read_bytes() for p in settings.feeds.output_dir.rglob("*") if p.is_file()}
    monkeypatch.setattr(jobs_module, "choose_workers", lambda entries: 2)
    together = publish_feeds(sessions, settings, NOW, force=True)
    assert (alone.processes, together.processes) == (1, 2)
    assert together.rendered == alone.rendered > 2
    assert together.written == [], "the same bytes: nothing rewritten"
    assert {p: p.read_bytes() for p in before} == before
    # the connection the workers inherited still serves this process
    assert publish_feeds(sessions, settings, NOW).rendered == 0
