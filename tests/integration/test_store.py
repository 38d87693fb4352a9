"""The store, on SQLite and on PostgreSQL: import, re-import, refuse, rename."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, select
from sqlalchemy.orm import Session, sessionmaker

from publisher import queries
from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.content.sanitize import sanitize_html
from publisher.errors import ImportFailed
from publisher.models import Post, PostStatus

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

# The sample as the page shows it: newest first, three posts on 5 December 2019
# in the page's order, with exact titles (curly quotes, en dashes).
SAMPLE = [
    ("Leave No One Behind news round-up", "2019-12-05", "Thomas Howie"),
    ("Innovation Report, get involved!", "2019-12-05", "Thomas Howie"),
    (
        "A new playbook for international civil society to put into action solidarity",
        "2019-12-05",
        "Miriam Niehaus",
    ),
    (
        "Discover: Innovation for civil society organisations in times of populism",
        "2019-11-18",
        "Thomas Howie",
    ),
    ("Leave No One Behind buzzing ahead", "2019-07-25", "Thomas Howie"),
    (
        "Leave No One Behind Partnership at the SDG Global Festival of Action",
        "2019-05-03",
        "Thomas Howie",
    ),
    ("Our strategy 2019 – 2021", "2019-04-18", "Thomas Howie"),
    ("6 Good Resources on Blockchain for Social Good", "2019-03-18", "Thomas Howie"),
    (
        "New – 2019 flyer, find out what’s on and what we are doing this year",
        "2019-02-13",
        "Thomas Howie",
    ),
    ("Rapid response mechanism webinar by ProtectDefenders.EU", "2019-02-11", "Thomas Howie"),
]


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove a refused import wrote nothing."""
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {
            name: sorted(tuple(map(str, row)) for row in conn.execute(table.select()))
            for name, table in meta.tables.items()
        }


def test_sample_round_trips(
    sessions: sessionmaker[Session], settings: Settings, sample_dir: Path
) -> None:
    report = import_target(sessions, str(sample_dir), settings, NOW)
    assert len(report.created) == 10
    with sessions() as session:
        posts = queries.published_posts(session, NOW)
        berlin = settings.site.zone
        got = [
            (p.title, p.published_at.astimezone(berlin).date().isoformat(), p.author.name)
            for p in posts
            if p.published_at and p.author
        ]
        assert got == SAMPLE
        times = [p.published_at for p in posts]
        assert len(set(times)) == 10, "same-day posts keep distinct times, hence their order"
        assert all(t is not None and t.tzinfo is not None for t in times)

        miriam = posts[2].author
        assert miriam is not None
        assert (miriam.role, miriam.organisation) == (
            "Head of Programmes",
            "International Civil Society Centre",
        )
        assert miriam.bio and miriam.bio.startswith("Miriam leads the Centre’s programmes.")
        thomas = posts[0].author
        assert thomas is not None and thomas.bio and "Bristol University" in thomas.bio

        strategy = queries.post_by_slug(session, "our-strategy-2019-2021")
        assert strategy is not None
        (pdf,) = strategy.attachments
        assert (pdf.title, pdf.media_type) == ("Download Strategy (PDF)", "application/pdf")

        video_post = posts[1]
        assert 'class="video"' in video_post.body_html
        assert "<iframe" not in video_post.body_html
        festival = posts[5]
        assert festival.body_html.count("<blockquote>") == 2
        blockchain = queries.post_by_slug(session, "6-good-resources-on-blockchain-for-social-good")
        assert blockchain is not None and blockchain.body_html.count("<li>") == 6
        assert {t.name for t in posts[0].tags} == {"Leave No One Behind", "SDGs"}


def test_reimport_changes_nothing(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings, sample_dir: Path
) -> None:
    import_target(sessions, str(sample_dir), settings, NOW)
    before = snapshot(engine)
    report = import_target(sessions, str(sample_dir), settings, NOW + timedelta(days=1))
    assert (len(report.created), len(report.updated), len(report.unchanged)) == (0, 0, 10)
    assert snapshot(engine) == before
    # even a forced re-render of unchanged sources leaves every row as it was
    forced = import_target(sessions, str(sample_dir), settings, NOW + timedelta(days=2), True)
    assert len(forced.updated) == 10
    assert snapshot(engine) == before


# Bodies are stored as rendered, and sanitised on every way out; earlier versions
# stored them sanitised. Re-rendering such a row changes its HTML but not what
# readers see: the post is not marked updated (feed readers would show every
# entry as changed). A change they would see still is an update.
def test_a_body_stored_sanitised_by_an_earlier_version_is_not_an_update(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "2020-01-01-a-post.md", post(body="See [the report](https://example.org/)."))
    import_target(sessions, str(tmp_path), settings, NOW)
    with sessions.begin() as session:
        stored = queries.post_by_slug(session, "a-post")
        assert stored is not None
        rendered, first_updated = stored.body_html, stored.updated_at
        stored.body_html = sanitize_html(rendered)  # as an earlier version stored it
        assert stored.body_html != rendered  # (nh3 adds rel="noopener noreferrer")

    import_target(sessions, str(tmp_path), settings, NOW + timedelta(days=1), True)
    with sessions() as session:
        (again,) = session.scalars(select(Post)).all()
        assert (again.body_html, again.updated_at) == (rendered, first_updated)

    write(
        tmp_path, "2020-01-01-a-post.md", post(body="See [the new report](https://example.org/).")
    )
    import_target(sessions, str(tmp_path), settings, NOW + timedelta(days=2))
    with sessions() as session:
        (edited,) = session.scalars(select(Post)).all()
        assert edited.updated_at == NOW + timedelta(days=2)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


POST = "---\ntitle: {title}\ndate: 2020-01-0{day} 10:00\nstatus: published\n{extra}---\n{body}\n"


def post(title: str = "A post", day: int = 1, extra: str = "", body: str = "Body.") -> str:
    return POST.format(title=title, day=day, extra=extra, body=body)


def test_edit_updates_in_place_and_keeps_the_id(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "2020-01-01-a-post.md", post())
    import_target(sessions, str(tmp_path), settings, NOW)
    with sessions() as session:
        original = queries.post_by_slug(session, "a-post")
        assert original is not None
        uid, created_updated = original.uid, original.updated_at

    write(tmp_path, "2020-01-01-a-post.md", post(title="A better title", body="New body."))
    report = import_target(sessions, str(tmp_path), settings, NOW)
    assert report.updated == ["a-post"]
    with sessions() as session:
        (edited,) = session.scalars(select(Post)).all()
        assert (edited.uid, edited.title) == (uid, "A better title")
        assert edited.updated_at == NOW and created_updated != NOW


def test_renamed_slug_keeps_the_permanent_id(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "p.md", post(extra="id: urn:uuid:0b1c\nslug: first-name\n"))
    import_target(sessions, str(tmp_path), settings, NOW)
    write(tmp_path, "p.md", post(extra="id: urn:uuid:0b1c\nslug: second-name\n"))
    import_target(sessions, str(tmp_path), settings, NOW)
    with sessions() as session:
        (renamed,) = session.scalars(select(Post)).all()
        assert (renamed.uid, renamed.slug) == ("urn:uuid:0b1c", "second-name")


# A post file with no `id:` names its post by its slug, else by the file: a file
# whose own `slug:` changes renames its post (one post, its id kept), not a second
# one in every feed beside it.
def test_a_file_without_an_id_whose_slug_changes_renames_its_post(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, "2020-01-01-hello.md", post(title="Hello"))
    import_target(sessions, str(tmp_path), settings, NOW)
    with sessions() as session:
        (uid,) = session.scalars(select(Post.uid)).all()
    path.write_text(post(title="Hello", extra="slug: hello-world\n"))
    report = import_target(sessions, str(path), settings, NOW)
    assert (report.created, report.updated) == ([], ["hello-world"])
    with sessions() as session:
        assert [(p.uid, p.slug) for p in session.scalars(select(Post))] == [(uid, "hello-world")]


# ... and a second file that takes that slug (next year's "annual update", imported
# alone as a new post is) is refused, naming the file whose post it would have
# overwritten; so is the folder. Nothing changes. (Once that file is gone, the slug
# is free to take: a file renamed.)
def test_a_file_never_takes_over_another_file_s_post_by_its_slug(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    first = write(tmp_path, "2019-12-01-annual-update.md", post(title="Annual update 2019"))
    import_target(sessions, str(tmp_path), settings, NOW)
    newer = write(tmp_path, "2020-01-02-annual-update.md", post(title="Update 2020", day=2))
    before = snapshot(engine)
    for target in (newer, tmp_path):
        with pytest.raises(ImportFailed) as refused:
            import_target(sessions, str(target), settings, NOW)
        assert f"{newer}: slug: slug 'annual-update' is already used by " in str(refused.value)
        assert str(first) in str(refused.value)
        assert snapshot(engine) == before
    first.unlink()
    assert import_target(sessions, str(newer), settings, NOW).updated == ["annual-update"]


BROKEN = {
    "bad-yaml.md": ("---\ntitle: [oops\n---\nBody\n", "bad-yaml.md:2"),
    "no-title.md": ("---\ndate: 2020-01-01\n---\nBody\n", "no-title.md:2: title: is required"),
    "bad-date.md": (
        "---\ntitle: T\ndate: 31/31/2020\nstatus: published\n---\n",
        "bad-date.md:3: date: cannot read '31/31/2020'",
    ),
    "latin1.md": (b"---\ntitle: Caf\xe9\n---\n", "latin1.md:2: is not UTF-8"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_file_is_refused_and_nothing_is_written(
    name: str,
    engine: Engine,
    sessions: sessionmaker[Session],
    settings: Settings,
    sample_dir: Path,
    tmp_path: Path,
) -> None:
    import_target(sessions, str(sample_dir), settings, NOW)
    before = snapshot(engine)
    folder = tmp_path / "posts"
    shutil.copytree(sample_dir, folder)
    # an edit to a good post rides along: it must not be written either
    edited = folder / "2019-04-18-our-strategy-2019-2021.md"
    edited.write_text(edited.read_text().replace("Welcome", "Hello"))
    write(folder, "new-good.md", post(title="Good one"))
    text, expected = BROKEN[name]
    write(folder, name, text)
    with pytest.raises(ImportFailed) as info:
        import_target(sessions, str(folder), settings, NOW)
    assert len(info.value.errors) == 1
    assert expected in str(info.value), str(info.value)
    assert "the database is unchanged" in str(info.value)
    assert snapshot(engine) == before


def test_duplicate_slug_in_one_import(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "a.md", post(extra="slug: same\n"))
    write(tmp_path, "b.md", post(title="Other", extra="slug: same\n"))
    before = snapshot(engine)
    with pytest.raises(ImportFailed) as info:
        import_target(sessions, str(tmp_path), settings, NOW)
    message = str(info.value)
    assert "b.md: slug: slug 'same' is already used by" in message and "a.md" in message
    assert snapshot(engine) == before


def test_duplicate_slug_against_the_database(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    write(first, "x.md", post(extra="id: urn:one\nslug: taken\n"))
    import_target(sessions, str(first), settings, NOW)
    write(second, "y.md", post(extra="id: urn:two\nslug: taken\n"))
    before = snapshot(engine)
    with pytest.raises(ImportFailed, match=r"y.md: slug: slug 'taken' is already used"):
        import_target(sessions, str(second), settings, NOW)
    assert snapshot(engine) == before


def test_drafts_and_future_posts_are_not_visible(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "draft.md", "---\ntitle: Draft\n---\nx\n")
    write(tmp_path, "future.md", "---\ntitle: Future\ndate: 2030-01-01\nstatus: scheduled\n---\n")
    write(tmp_path, "past.md", post(title="Past"))
    import_target(sessions, str(tmp_path), settings, NOW)
    with sessions() as session:
        assert [p.title for p in queries.published_posts(session, NOW)] == ["Past"]
        later = datetime(2030, 1, 2, tzinfo=UTC)
        assert [p.title for p in queries.published_posts(session, later)] == ["Future", "Past"]
        drafts = queries.listed_posts(session, status=PostStatus.DRAFT)
        assert [p.title for p in drafts] == ["Draft"]


def test_feed_migration_is_idempotent(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    from tests.unit.test_feedimport import ATOM

    feed = write(tmp_path, "old.xml", ATOM)
    assert len(import_target(sessions, str(feed), settings, NOW).created) == 1
    before = snapshot(engine)
    assert len(import_target(sessions, str(feed), settings, NOW).unchanged) == 1
    assert snapshot(engine) == before
    with sessions() as session:
        (migrated,) = session.scalars(select(Post)).all()
        assert migrated.uid == "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"


# A feed imported week after week (a rolling window of "Weekly update" entries):
# each entry keeps the slug it was first stored with, a new one whose slug a
# stored post holds takes its date after it, and no import is refused for it.
def test_a_feed_of_same_titled_entries_imports_week_after_week(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    from tests.unit.test_feedimport import _feed_of

    def entry(day: int) -> tuple[str, str, str, str]:
        return (
            f"urn:w{day}",
            "Weekly update",
            f"https://old.example.org/?p={day}",
            f"2019-01-{day:02}T09:00:00Z",
        )

    def slugs() -> dict[str, str]:
        with sessions() as session:
            return {uid: slug for uid, slug in session.execute(select(Post.uid, Post.slug))}

    feed = tmp_path / "old.xml"
    weeks = [[entry(1), entry(8)], [entry(8), entry(15)], [entry(22)], [entry(22), entry(15)]]
    for week in weeks:
        feed.write_bytes(_feed_of(*week))
        import_target(sessions, str(feed), settings, NOW)
    assert slugs() == {
        "urn:w1": "weekly-update",
        "urn:w8": "weekly-update-2019-01-08",
        "urn:w15": "weekly-update-2019-01-15",
        "urn:w22": "weekly-update-2019-01-22",
    }
    before = snapshot(engine)
    assert len(import_target(sessions, str(feed), settings, NOW).unchanged) == 2
    assert snapshot(engine) == before
