"""Careless or hostile input, on SQLite and on PostgreSQL: names in any script,
tags that differ in case, ids claimed by another file, over-long values.

Each case ended in a traceback (IntegrityError, DataError) or silently merged
or took over rows before; now each is imported correctly or refused by name
with the database unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.content.values import PostStatus
from publisher.errors import ImportFailed
from publisher.feeds.build import publish_feeds
from publisher.models import Author, Post, Tag
from tests.integration.test_store import NOW, post, snapshot, write

pytestmark = pytest.mark.integration


def tags_and_authors(sessions: sessionmaker[Session]) -> tuple[set[tuple[str, str]], ...]:
    with sessions() as session:
        tags = {(t.slug, t.name) for t in session.scalars(select(Tag))}
        authors = {(a.slug, a.name) for a in session.scalars(select(Author))}
    return tags, authors


# C and C++ are two tags with two feeds (their slugs used to collide: IntegrityError).
def test_tags_whose_slugs_would_collide_stay_apart(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "a.md", post(extra="tags: [C++, C]\n"))
    write(tmp_path, "b.md", post(title="B", extra="tags: [c plus plus]\n"))
    import_target(sessions, str(tmp_path), settings, NOW)
    tags, _ = tags_and_authors(sessions)
    assert tags == {("c-plus-plus", "C++"), ("c", "C"), ("c-plus-plus-2", "c plus plus")}
    publish_feeds(sessions, settings, NOW)
    out = settings.feeds.output_dir
    assert (out / "tags/c-plus-plus/atom.xml").is_file() and (out / "tags/c/atom.xml").is_file()


# SDGs in one post and sdgs in another are one tag (the first spelling names it).
def test_tags_differing_in_case_across_posts_are_one_tag(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "a.md", post(extra="tags: [SDGs]\n"))
    write(tmp_path, "b.md", post(title="B", extra="tags: [sdgs]\n"))
    import_target(sessions, str(tmp_path), settings, NOW)
    tags, _ = tags_and_authors(sessions)
    assert tags == {("sdgs", "SDGs")}


# Two people are never one author because their names make the same slug,
# and names in any script make readable slugs (never the empty one).
def test_authors_in_any_script_are_never_merged(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "a.md", post(extra="author: 李明\n"))
    write(tmp_path, "b.md", post(title="B", extra="author: Иван Петров\n"))
    write(tmp_path, "c.md", post(title="C", extra="author: Li Ming\n"))
    write(tmp_path, "d.md", post(title="D", extra="author: 🎉\n"))
    import_target(sessions, str(tmp_path), settings, NOW)
    _, authors = tags_and_authors(sessions)
    assert authors == {
        ("li-ming", "李明"),
        ("ivan-petrov", "Иван Петров"),
        ("li-ming-2", "Li Ming"),
        ("author", "🎉"),
    }
    with sessions() as session:
        credited = {p.title: p.author.name for p in session.scalars(select(Post)) if p.author}
    assert credited == {"A post": "李明", "B": "Иван Петров", "C": "Li Ming", "D": "🎉"}
    publish_feeds(sessions, settings, NOW)
    out = settings.feeds.output_dir
    assert not (out / "authors/atom.xml").exists()
    assert (out / "authors/li-ming/atom.xml").is_file()
    assert (out / "authors/li-ming-2/atom.xml").is_file()


# A file that states another file's id does not take that post over.
def test_an_id_belonging_to_another_file_is_refused_naming_both(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    original = write(tmp_path, "original.md", post(extra="id: urn:post:1\n"))
    import_target(sessions, str(original), settings, NOW)
    before = snapshot(engine)
    intruder = write(tmp_path, "intruder.md", post(title="Mine now", extra="id: urn:post:1\n"))
    with pytest.raises(ImportFailed) as info:
        import_target(sessions, str(intruder), settings, NOW)
    message = str(info.value)
    assert f"{intruder}: id: id 'urn:post:1' belongs to the post from {original}" in message
    assert snapshot(engine) == before
    # a renamed file (the old one is gone) keeps its post
    original.unlink()
    import_target(sessions, str(intruder), settings, NOW)
    with sessions() as session:
        (kept,) = session.scalars(select(Post)).all()
        assert (kept.uid, kept.title) == ("urn:post:1", "Mine now")


LONG = "x" * 201


# Values longer than their columns are refused before writing, on SQLite
# (which would store them) exactly as on PostgreSQL (which raised DataError).
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (f"author: {LONG}\n", "author"),
        (f"author:\n  name: A\n  role: {LONG}\n", "author.role"),
        (f"tags: [{LONG}]\n", "tags.0"),
        (f"id: urn:{'y' * 300}\n", "id"),
    ],
)
def test_values_longer_than_the_schema_allows_are_refused(
    extra: str,
    field: str,
    engine: Engine,
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
) -> None:
    write(tmp_path, "long.md", post(extra=extra))
    before = snapshot(engine)
    with pytest.raises(ImportFailed) as info:
        import_target(sessions, str(tmp_path), settings, NOW)
    (error,) = info.value.errors
    assert error.field == field and error.source.endswith("long.md")
    assert snapshot(engine) == before


FEED = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Old</title><id>urn:old</id>
<updated>2019-12-05T12:00:00Z</updated>
<entry><id>urn:e1</id><title>Entry</title><updated>2019-01-01T00:00:00Z</updated>
<author><name>{author}</name></author>{categories}<content type="html">ok</content></entry>
</feed>"""


# A migrated feed is held to the same limits: the checks run on every draft.
def test_feed_entries_are_held_to_the_same_limits(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    categories = "".join(f'<category term="t{i}"/>' for i in range(51))
    feed = write(tmp_path, "old.xml", FEED.format(author=LONG, categories=categories))
    before = snapshot(engine)
    with pytest.raises(ImportFailed) as info:
        import_target(sessions, str(feed), settings, NOW)
    assert {e.field for e in info.value.errors} == {"author.name", "tags"}
    assert all(e.source == f"{feed}#entry-1" for e in info.value.errors)
    assert snapshot(engine) == before


# Tags differing only in case inside one post file are reported, not a traceback.
def test_same_tag_twice_in_one_post_is_reported(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "a.md", post(extra="tags: [SDGs, sdgs]\n"))
    before = snapshot(engine)
    with pytest.raises(ImportFailed, match="'SDGs' and 'sdgs' are the same tag"):
        import_target(sessions, str(tmp_path), settings, NOW)
    assert snapshot(engine) == before


# Invariant: a post file renamed (its slug, made from its name, with it) is the same
# post: its id is kept and no second post appears, and the import says so. A new file
# with the same title and date while the first file is still there is a post of its own.
def test_a_renamed_file_keeps_its_post(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    first = write(tmp_path, "2020-01-01-third-same-day.md", post(title="Third"))
    import_target(sessions, str(tmp_path), settings, NOW)
    with sessions() as session:
        (before,) = session.scalars(select(Post)).all()
        uid = before.uid
    first.rename(tmp_path / "2020-01-01-third-post.md")
    report = import_target(sessions, str(tmp_path), settings, NOW)
    assert (report.created, report.updated) == ([], ["third-post"])
    assert any("which is gone (renamed)" in note for note in report.notes)
    with sessions() as session:
        (after,) = session.scalars(select(Post)).all()
        assert (after.uid, after.slug) == (uid, "third-post")
        assert after.source_path == str(tmp_path / "2020-01-01-third-post.md")
    write(tmp_path, "2020-01-01-another.md", post(title="Third"))
    again = import_target(sessions, str(tmp_path), settings, NOW)
    assert again.created == ["another"]
    with sessions() as session:
        assert len(session.scalars(select(Post)).all()) == 2


# An import that sets a post's status from its file, other than the post had (taken
# down with `posts unpublish`, say), says so: nothing changes state unseen.
def test_a_status_the_file_changes_is_noted(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "2020-01-01-a-post.md", post())
    import_target(sessions, str(tmp_path), settings, NOW)
    with sessions.begin() as session:
        (taken_down,) = session.scalars(select(Post)).all()
        taken_down.status = PostStatus.DRAFT
    write(tmp_path, "2020-01-01-a-post.md", post(body="A typo fixed."))
    report = import_target(sessions, str(tmp_path), settings, NOW)
    assert report.notes == [
        f"{tmp_path / '2020-01-01-a-post.md'}: published, as the file says (the post was draft)"
    ]


# A post whose file was deleted stays as it is (published, if it was), and the import of
# its folder says so and how to take it down; a renamed file's post is not "gone".
def test_a_deleted_file_s_post_is_named(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    kept = write(tmp_path, "2020-01-01-kept.md", post(title="Kept"))
    deleted = write(tmp_path, "2020-01-01-deleted.md", post(title="Deleted", day=2))
    import_target(sessions, str(tmp_path), settings, NOW)
    deleted.unlink()
    kept.rename(tmp_path / "2020-01-01-kept-renamed.md")
    report = import_target(sessions, str(tmp_path), settings, NOW)
    gone = [note for note in report.notes if ": gone;" in note]
    assert gone == [
        f"{deleted}: gone; its post 'deleted' stays as it is "
        "(`publisher posts unpublish deleted` takes it down)"
    ]


# Two files renamed at once whose posts share a title and date: which is which cannot
# be told, so neither is guessed at (no post takes the other's id); both old posts are
# named as gone.
def test_twin_renames_are_not_guessed_at(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    a = write(tmp_path, "dup-a.md", post(title="Same", body="A"))
    b = write(tmp_path, "dup-b.md", post(title="Same", body="B"))
    import_target(sessions, str(tmp_path), settings, NOW)
    a.rename(tmp_path / "dup-x.md")
    b.rename(tmp_path / "dup-y.md")
    report = import_target(sessions, str(tmp_path), settings, NOW)
    assert sorted(report.created) == ["dup-x", "dup-y"] and report.updated == []
    assert len([note for note in report.notes if ": gone;" in note]) == 2
