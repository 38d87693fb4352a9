"""Large imports: parsed in a pool while batches are written, still all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench.corpus import generate, write_posts
from publisher.config import Settings
from publisher.content import importer, matching, sources, writer
from publisher.errors import ImportFailed
from publisher.models import Attachment, Author, Post, Tag, post_tags
from tests.integration.test_store import NOW

pytestmark = pytest.mark.integration


def counts(sessions: sessionmaker[Session]) -> tuple[int, ...]:
    with sessions() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Post, post_tags, Attachment, Author, Tag)
        )


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 20 posts, and a pool of processes from 10 files on."""
    monkeypatch.setattr(writer, "BATCH", 20)
    monkeypatch.setattr(sources, "PARALLEL_THRESHOLD", 10)


# Batches already written when the pool reaches a bad file are rolled back with
# the rest: the database is as it was, and every problem is listed.
def test_a_bad_last_file_undoes_the_batches_written_before_it(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path, small_batches: None
) -> None:
    write_posts(tmp_path, list(generate(100)))
    (tmp_path / "zz-bad.md").write_text("---\ntitle: Bad\ndate: someday\n---\nBody\n")
    (tmp_path / "zz-worse.md").write_text("no front matter\n")
    with pytest.raises(ImportFailed) as failed:
        importer.import_target(sessions, str(tmp_path), settings, NOW)
    assert [e.source.rsplit("/", 1)[-1] for e in failed.value.errors] == [
        "zz-bad.md",
        "zz-worse.md",
    ]
    assert counts(sessions) == (0, 0, 0, 0, 0)


# Written in bulk, posts read back with their authors and tags, and importing
# again finds every one unchanged.
def test_posts_written_in_batches_read_back_whole(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path, small_batches: None
) -> None:
    posts = list(generate(100))
    write_posts(tmp_path, posts)
    report = importer.import_target(sessions, str(tmp_path), settings, NOW)
    assert len(report.created) == 100
    with sessions() as session:
        stored = {p.title: p for p in session.scalars(select(Post))}
        for generated in posts:
            got = stored[generated.title]
            assert got.author is not None and got.author.name == generated.author
            assert sorted(t.name for t in got.tags) == sorted(generated.tags)
            assert got.published_at == generated.date
    again = importer.import_target(sessions, str(tmp_path), settings, NOW)
    assert (len(again.created), len(again.unchanged)) == (0, 100)


# The first drafts of an import look up the stored posts they name one by one;
# later ones (and every one after the first batch is written) are matched among
# all the keys, read at once before that first write. Either way each draft is
# matched against the store as it was when the import began, so the import
# decides the same: new, updated, or a conflict with a stored post.
@pytest.mark.parametrize("lookups", [0, 3, 1000])
def test_drafts_are_matched_alike_looked_up_or_read_all(
    lookups: int,
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
    small_batches: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(matching, "LOOKUPS", lookups)
    posts = list(generate(65))
    write_posts(tmp_path, posts[:60])
    importer.import_target(sessions, str(tmp_path), settings, NOW)
    write_posts(tmp_path, posts[60:])
    for edited in posts[:10]:
        path = tmp_path / edited.file_name
        path.write_text(path.read_text().replace(edited.title, edited.title + " (edited)"))
    report = importer.import_target(sessions, str(tmp_path), settings, NOW, force=True)
    assert (len(report.created), len(report.updated)) == (5, 60)
    assert counts(sessions)[0] == 65

    for name, slug in (("aa-taken.md", "post-00007"), ("zz-taken.md", "post-00042")):
        text = f"---\ntitle: Other\nid: urn:x:{name}\nslug: {slug}\n---\nBody\n"
        (tmp_path / name).write_text(text)
    with pytest.raises(ImportFailed) as failed:
        importer.import_target(sessions, str(tmp_path), settings, NOW)
    assert [e.source.rsplit("/", 1)[-1] for e in failed.value.errors] == [
        "aa-taken.md",
        "zz-taken.md",
    ]
    assert all("is already used by the post" in str(e) for e in failed.value.errors)
