"""The build stamp: a build with nothing to do says so without loading the build.

The invariant: the stamp says "nothing to do" only when the full build would
render nothing and write nothing. Each case below changes one thing a build
depends on and checks that the stamp no longer answers, and that the full
build then does have work.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from publisher import config, db
from publisher.config import Settings, load_settings
from publisher.content.importer import import_target
from publisher.feeds.build import publish_feeds
from publisher.feeds.manifest import state_dir
from publisher.feeds.stamp import DATABASE_URL_ENV, check_unchanged, config_key, stamp_path
from publisher.files import exclusive_lock
from publisher.models import Post, PostStatus, Tag
from tests.conftest import CONFIG_TEXT

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER_POST = """\
---
title: Coming soon
date: 2026-11-25T15:00:00+00:00
status: published
---
Not yet.
"""


class Site:
    """A config file, its SQLite database with the sample, and feeds built with a stamp."""

    def __init__(self, root: Path, sample_dir: Path) -> None:
        self.config = root / "config.yaml"
        self.config.write_text(CONFIG_TEXT)
        self.settings: Settings = load_settings(self.config, check_templates=False)
        self.engine = db.make_engine(self.settings.database.url or "")
        db.upgrade(self.engine)
        self.sessions: sessionmaker[Session] = db.make_sessionmaker(self.engine)
        import_target(self.sessions, str(sample_dir), self.settings, NOW)
        self.build(NOW)

    def build(self, now: datetime) -> int:
        """A full build, as ``publisher build`` runs it; the documents it rendered."""
        key = config_key(self.config)
        self.settings = load_settings(self.config, check_templates=False)
        report = publish_feeds(self.sessions, self.settings, now, stamp_key=key)
        return report.rendered

    def quick(self, now: datetime = NOW) -> bool:
        """Whether the stamp answers "nothing to do"."""
        return check_unchanged(self.config, now) is not None


@pytest.fixture
def site(tmp_path: Path, sample_dir: Path) -> Site:
    return Site(tmp_path, sample_dir)


def test_the_env_variable_is_the_configs(site: Site) -> None:
    assert DATABASE_URL_ENV == config.DATABASE_URL_ENV


# With nothing changed the stamp answers, with the documents the build planned.
def test_nothing_changed_is_known_from_the_stamp(site: Site) -> None:
    unchanged = check_unchanged(site.config, NOW)
    assert unchanged is not None
    assert unchanged.output_dir == site.settings.feeds.output_dir
    report = publish_feeds(site.sessions, site.settings, NOW)
    assert unchanged.documents == report.documents
    assert report.rendered == 0 and not report.written


def _import_one(site: Site, tmp: Path) -> None:
    (tmp / "new.md").write_text(LATER_POST.replace("2026-11-25T15", "2026-11-24T15"))
    import_target(site.sessions, str(tmp / "new.md"), site.settings, NOW)


def _unpublish(site: Site, tmp: Path) -> None:
    with db.transaction(site.sessions) as session:
        session.execute(update(Post).where(Post.id == 1).values(status=PostStatus.DRAFT))


def _rename_tag(site: Site, tmp: Path) -> None:
    with db.transaction(site.sessions) as session:
        session.execute(update(Tag).where(Tag.id == 1).values(name="Renamed"))


def _edit_config(site: Site, tmp: Path) -> None:
    site.config.write_text(CONFIG_TEXT.replace("Test Centre", "Test Centre 2", 1))


def _delete_a_feed(site: Site, tmp: Path) -> None:
    (site.settings.feeds.output_dir / "rss.xml").unlink()


CHANGES: dict[str, Callable[[Site, Path], None]] = {
    "a new post": _import_one,
    "a post unpublished": _unpublish,
    "a tag renamed": _rename_tag,
    "the config edited": _edit_config,
    "a feed file deleted": _delete_a_feed,
}


# Whatever changed, the stamp no longer answers, and the full build has work.
@pytest.mark.parametrize("change", CHANGES)
def test_a_change_sends_the_build_to_the_full_path(site: Site, tmp_path: Path, change: str) -> None:
    CHANGES[change](site, tmp_path)
    assert not site.quick()
    assert site.build(NOW) > 0
    assert site.quick(), "the full build leaves a new stamp"


# A post dated later than the build appears when its time comes, stamp or not.
def test_a_post_coming_due_sends_the_build_to_the_full_path(site: Site, tmp_path: Path) -> None:
    (tmp_path / "later.md").write_text(LATER_POST)
    import_target(site.sessions, str(tmp_path / "later.md"), site.settings, NOW)
    assert site.build(NOW) == 0, "not visible yet: nothing to render"
    assert site.quick(NOW + timedelta(hours=2))
    assert not site.quick(NOW + timedelta(hours=3))
    assert site.build(NOW + timedelta(hours=3)) > 0


def test_another_database_url_from_the_environment(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "sqlite:////elsewhere.db")
    assert not site.quick()


# A build that leaves no stamp (the scheduler's, or one that failed) removes the old one.
def test_a_build_without_a_key_removes_the_stamp(site: Site) -> None:
    publish_feeds(site.sessions, site.settings, NOW)
    assert not stamp_path(site.settings.feeds.output_dir).exists()
    assert not site.quick()


def test_a_failed_build_leaves_no_stamp(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("publisher.feeds.build.save_manifest", fail)
    with pytest.raises(RuntimeError):
        site.build(NOW)
    assert not site.quick()


# While another build holds the lock, only the full path (which waits) answers.
def test_a_running_build_is_waited_for(site: Site) -> None:
    with exclusive_lock(state_dir(site.settings.feeds.output_dir) / "lock"):
        assert not site.quick()
    assert site.quick()


def test_a_stamp_of_another_version_is_not_trusted(site: Site) -> None:
    path = stamp_path(site.settings.feeds.output_dir)
    path.write_text(path.read_text().replace('"version": "1"', '"version": "0"'))
    assert not site.quick()
    path.write_text("not json")
    assert not site.quick()


# The files a build finds in the feed folder are those os.walk lists: links to
# folders are neither files nor followed, links to files are files.
def test_existing_files_lists_what_os_walk_lists(tmp_path: Path) -> None:
    import os

    from publisher.files import existing_files

    for name in ("atom.xml", "tags/a/rss.xml", "tags/a/archive/atom-1.xml", "authors/b/feed.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "linked").symlink_to(tmp_path / "tags", target_is_directory=True)
    (tmp_path / "file-link.xml").symlink_to(tmp_path / "atom.xml")
    (tmp_path / "broken.xml").symlink_to(tmp_path / "missing.xml")
    walked = set()
    for folder, _, files in os.walk(tmp_path):
        prefix = os.path.relpath(folder, tmp_path)
        prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
        walked.update(prefix + name for name in files)
    assert existing_files(tmp_path) == walked
