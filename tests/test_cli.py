"""The command line: what staff type, and what they see when it goes wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from publisher.cli import cli
from tests.conftest import CONFIG_TEXT


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_TEXT)
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def test_init_sample_then_list_show_publish(config: Path) -> None:
    first = run(config, "init", "--sample")
    assert first.exit_code == 0, first.output
    assert "10 new" in first.output
    assert (config.parent / "publisher.db").exists()

    again = run(config, "init", "--sample")
    assert "0 new, 0 updated, 10 unchanged" in again.output

    listing = run(config, "posts", "list", "--author", "Miriam Niehaus")
    assert listing.exit_code == 0
    # not a terminal: CSV, one post a line, so `publisher posts list | grep` finds titles
    lines = listing.output.splitlines()
    assert lines[0] == "status,date,slug,title,author" and len(lines) == 2
    assert "a-new-playbook" in lines[1] and "put into action solidarity,Miriam" in lines[1]
    as_json = run(config, "posts", "list", "--format", "json")
    assert len(json.loads(as_json.output)) == 10
    table = run(config, "posts", "list", "--author", "Miriam Niehaus", "--format", "table")
    # the table itself (its header and the row), then the count
    assert "status" in table.output and "Miriam" in table.output
    assert table.output.rstrip().endswith("1 post")
    assert len(run(config, "posts", "list", "--tag", "publications").output.splitlines()) == 5
    # a filter that matches nothing says so, not only a header
    assert "No post with tag 'nosuch'" in run(config, "posts", "list", "--tag", "nosuch").output

    shown = run(config, "posts", "show", "our-strategy-2019-2021")
    assert "Our strategy 2019 – 2021" in shown.output
    assert "application/pdf" in shown.output
    # the author as stored: role and organisation, then the bio
    assert "Thomas Howie, Communications Manager, International Civil Society" in shown.output
    assert "Thomas joined the Centre in June 2017" in shown.output
    # the body as it goes out: stored as rendered, shown sanitised (nh3 marks links)
    slug = "a-new-playbook-for-international-civil-society-to-put-into-action-solidarity"
    links = run(config, "posts", "show", slug).output
    assert 'rel="noopener noreferrer"' in links

    taken_down = run(config, "posts", "unpublish", "our-strategy-2019-2021").output
    # the post's file decides again at its next import: the command says so
    assert "draft" in taken_down and "Write `status: draft` in it" in taken_down
    assert len(run(config, "posts", "list", "--status", "published").output.splitlines()) == 10
    put_back = run(config, "posts", "publish", "our-strategy-2019-2021").output
    assert "published" in put_back and "Note: the post comes from" in put_back
    # nothing changed: nothing for the file to undo, nothing said about it
    unchanged = run(config, "posts", "publish", "our-strategy-2019-2021").output
    assert "published" in unchanged and "Note:" not in unchanged
    scheduled = run(config, "posts", "publish", "our-strategy-2019-2021", "--at", "2099-01-01")
    assert "scheduled" in scheduled.output
    listed = run(config, "posts", "list", "--status", "scheduled", "--format", "csv").output
    assert listed.splitlines()[1].startswith("scheduled,2099-01-01")
    # publish, without --at, publishes a scheduled post now (it stayed scheduled, for 2099)
    assert "published, dated 20" in run(config, "posts", "publish", "our-strategy-2019-2021").output
    assert "2099" not in run(config, "posts", "list", "--format", "csv").output


# `posts list` shows a post as readers see it now: one scheduled whose date has come is
# published (it is in the feeds), and `--status` selects by that too.
def test_posts_list_shows_a_scheduled_post_whose_date_has_come_as_published(
    config: Path,
) -> None:
    import sqlite3

    assert run(config, "init", "--sample").exit_code == 0
    slug = "our-strategy-2019-2021"
    assert "scheduled" in run(config, "posts", "publish", slug, "--at", "2099-01-01").output
    database = sqlite3.connect(config.parent / "publisher.db")  # as if 2099 had come
    with database:
        database.execute(
            "UPDATE posts SET published_at = '2020-01-01 00:00:00.000000' WHERE slug = ?", (slug,)
        )
    database.close()
    listed = run(config, "posts", "list", "--format", "csv").output
    assert f"published,2020-01-01 01:00,{slug}," in listed
    assert slug in run(config, "posts", "list", "--status", "published").output
    assert slug not in run(config, "posts", "list", "--status", "scheduled").output


# import --build is import, then build: the same reports, the same feeds, and the
# build's stamp, so that a build right after has nothing to do.
# A command leaves everything in the SQLite database file itself: its connections
# closed as it ends, the write-ahead log is merged back, so a copy (a backup) of the
# file alone holds every post.
def test_the_database_file_alone_holds_what_a_command_wrote(config: Path) -> None:
    import contextlib
    import shutil
    import sqlite3

    assert run(config, "init", "--sample").exit_code == 0
    assert not (config.parent / "publisher.db-wal").exists()
    shutil.copy(config.parent / "publisher.db", config.parent / "copy.db")
    with contextlib.closing(sqlite3.connect(config.parent / "copy.db")) as copy:
        (count,) = copy.execute("SELECT count(*) FROM posts").fetchone()
    assert count == 10


def test_import_then_build_in_one_command(config: Path, sample_dir: Path) -> None:
    run(config, "init")
    both = run(config, "import", str(sample_dir), "--build")
    assert both.exit_code == 0, both.output
    assert "10 new" in both.output
    assert "files written" in both.output and " 0 files written" not in both.output
    again = run(config, "build")
    assert ", 0 rendered, 0 files written, 0 removed." in again.output


# Migrating a feed whose entries embed players: the posts are imported, and the
# editor is told which entry lost what, by name.
def test_a_feed_migration_names_the_entries_that_lost_an_embed(
    config: Path, tmp_path: Path
) -> None:
    run(config, "init")
    feed = tmp_path / "old.xml"
    feed.write_text(
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Old</title>'
        "<id>urn:old</id><updated>2019-12-05T12:00:00Z</updated>"
        '<entry><id>urn:e1</id><title>Talk</title><link href="https://old.example.org/talk"/>'
        '<updated>2019-01-01T00:00:00Z</updated><content type="html">&lt;p&gt;Watch&lt;/p&gt;'
        '&lt;iframe src="https://player.example/1"&gt;&lt;/iframe&gt;</content></entry></feed>'
    )
    result = run(config, "import", str(feed))
    assert result.exit_code == 0, result.output
    assert "1 new" in result.output
    assert f"{feed}#entry-1: <iframe> removed" in result.output.replace("\n", "")


def test_errors_are_one_line_without_traceback(config: Path, tmp_path: Path) -> None:
    run(config, "init")
    bad = tmp_path / "bad.md"
    bad.write_text("---\ntitle: T\ndate: soon\nstatus: published\n---\n")
    result = run(config, "import", str(bad))
    assert result.exit_code == 1
    assert "bad.md:3: date: cannot read 'soon'" in result.output
    assert "Traceback" not in result.output

    missing = run(config, "posts", "show", "nope")
    assert missing.exit_code == 1
    assert "no post with slug 'nope'" in missing.output


# What goes wrong around a command (the database locked by another, a file that is no
# database, a driver not installed, a folder that does not exist, a port taken) is one
# line that says what and where, exit status 1, no traceback.
def test_the_machine_s_errors_are_one_line_too(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import socket
    import sqlite3

    assert run(config, "init").exit_code == 0

    def one_line(result: Result, *words: str) -> None:
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and result.exception is not None
        assert all(w in result.output for w in words), result.output

    from publisher import db

    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 100)
    with contextlib.closing(sqlite3.connect(config.parent / "publisher.db")) as other:
        other.execute("BEGIN EXCLUSIVE")
        one_line(
            run(config, "subscribers", "add", "q@example.org"), "database is locked", "try again"
        )
    garbage = tmp_path / "garbage.db"
    garbage.write_text("not a database")
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", f"sqlite:///{garbage}")
    one_line(run(config, "posts", "list"), "file is not a database")
    monkeypatch.setenv("PUBLISHER_DATABASE_URL", "mysql+pymysql://x@127.0.0.1/x")
    one_line(run(config, "posts", "list"), "driver that is not installed", "pymysql")
    monkeypatch.delenv("PUBLISHER_DATABASE_URL")
    one_line(run(config, "subscribers", "export", "/nonexistent/x.csv"), "/nonexistent/x.csv")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line(run(config, "serve", "--port", str(port)), f"127.0.0.1:{port}", "in use")


# A date on the command line is held to the years a post's date may have: year 1 or
# 9999 was an OverflowError traceback (and 1800 was taken).
def test_dates_on_the_command_line_keep_to_the_years_posts_have(config: Path) -> None:
    assert run(config, "init", "--sample").exit_code == 0
    slug = "our-strategy-2019-2021"
    for args in (
        ["digest", "render", "--since", "0001-01-01"],
        ["posts", "publish", slug, "--at", "9999-12-31T23:59:59-05:00"],
        ["posts", "publish", slug, "--at", "1800-01-01"],
    ):
        result = run(config, *args)
        assert result.exit_code == 2 and "outside 1900–2200" in result.output, result.output
    assert "scheduled" in run(config, "posts", "publish", slug, "--at", "2199-01-01").output


def test_digest_status_names_an_unknown_digest(config: Path) -> None:
    assert run(config, "init").exit_code == 0
    result = run(config, "digest", "status", "nope")
    assert result.exit_code == 2 and "no digest 'nope'" in result.output
    assert "the digests are: weekly" in result.output


def test_debug_shows_the_exception(config: Path) -> None:
    run(config, "init")
    result = CliRunner().invoke(cli, ["--config", str(config), "--debug", "posts", "show", "x"])
    assert result.exit_code == 1
    assert result.exception is not None and "no post with slug" in str(result.exception)


def test_config_error_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_TEXT.replace("Europe/Berlin", "Berlin/Nowhere"))
    result = run(path, "init")
    assert result.exit_code == 1
    assert "config.yaml:4: site.timezone: is not an IANA time zone" in result.output


# A config error is one line whichever part of a command loads the config first: a
# date option reads the site's time zone while the arguments are parsed.
def test_a_config_error_is_one_line_when_a_date_option_loads_it(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_TEXT.replace("Europe/Berlin", "Berlin/Nowhere"))
    for args in (
        ["digest", "render", "--since", "2019-01-01"],
        ["posts", "publish", "x", "--at", "2020-01-01"],
    ):
        result = run(path, *args)
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit), "a traceback"
        assert "config.yaml:4: site.timezone: is not an IANA time zone" in result.output


# `subscribers list` names a status or a newsletter that does not exist (a typo
# listed nobody, or ended in a traceback).
def test_subscribers_list_names_an_unknown_status_or_newsletter(config: Path) -> None:
    from publisher.cli.subscribers import STATUSES
    from publisher.models import SubscriberStatus

    assert STATUSES == tuple(s.value for s in SubscriberStatus)
    assert run(config, "init").exit_code == 0
    status = run(config, "subscribers", "list", "--status", "activ")
    assert status.exit_code == 2 and "'activ' is not one of" in status.output
    newsletter = run(config, "subscribers", "list", "--newsletter", "weeklyy")
    assert newsletter.exit_code == 1
    assert "no newsletter 'weeklyy' in the config; it has: weekly" in newsletter.output


# On SQLite, `posts list` reads the file without SQLAlchemy (publisher.sqlitereads);
# whichever path reads it, every format prints the same bytes.
def test_posts_list_prints_the_same_on_both_paths(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections.abc import Iterator
    from contextlib import contextmanager

    from publisher import sqlitereads

    assert run(config, "init", "--sample").exit_code == 0
    run(config, "posts", "unpublish", "our-strategy-2019-2021")
    cases = [
        ("--format", fmt, *extra)
        for fmt in ("csv", "json", "table")
        for extra in ((), ("--status", "draft"), ("--tag", "publications"), ("--author", "x"))
    ]
    shortcut = [run(config, "posts", "list", *case).output for case in cases]

    @contextmanager
    def no_shortcut(url: str) -> Iterator[None]:
        yield None

    monkeypatch.setattr(sqlitereads, "open_store", no_shortcut)
    assert [run(config, "posts", "list", *case).output for case in cases] == shortcut
    assert "1 post\n" in shortcut[cases.index(("--format", "table", "--status", "draft"))]


def test_commands_refuse_an_unmigrated_database(config: Path) -> None:
    result = run(config, "posts", "list")
    assert result.exit_code == 1
    assert "run `publisher db upgrade`" in result.output


def test_db_upgrade_is_repeatable(config: Path) -> None:
    assert "Upgraded the database from empty" in run(config, "db", "upgrade").output
    assert "Already at the newest schema" in run(config, "db", "upgrade").output


# What is turned into one line is what the user can act on; a statement the database
# refuses (a bug: a bad query, a broken constraint) keeps its traceback.
def test_only_the_database_s_state_is_one_line() -> None:
    import sqlite3

    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, StatementError

    from publisher.cli.app import describe

    locked = sqlite3.OperationalError("database is locked")
    assert "database is locked" in (describe(locked, None) or "")
    assert "try again" in (describe(OperationalError("UPDATE", {}, locked), None) or "")
    assert (
        describe(ProgrammingError("SELECT", {}, sqlite3.ProgrammingError("no column")), None)
        is None
    )
    assert describe(IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE")), None) is None
    assert describe(StatementError("bind", "SELECT", {}, TypeError("x")), None) is None
    assert describe(TimeoutError(), None) == "TimeoutError"
