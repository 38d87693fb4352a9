"""Copying a deployment's database into another (SQLite to PostgreSQL, or SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select, text

from publisher import db
from publisher.audience import suppression
from publisher.audience.staff import erase_person
from publisher.audience.subscribers import add_subscriber
from publisher.cli import cli
from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.dbcopy import absolute_url, copy_database
from publisher.errors import DatabaseError
from publisher.mail.send import send_digest
from publisher.models import Base, Subscriber
from tests.integration.smtp_recorder import Recorder, RecordingServer
from tests.integration.test_send import FakeClock, with_smtp

NOW = datetime(2019, 12, 9, 8, 0, tzinfo=UTC)


@dataclass
class Lived:
    engine: Engine
    #: the newest subscriber's id, erased: no one may get it again
    erased_id: int


@pytest.fixture
def lived(
    tmp_path: Path, settings: Settings, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Lived]:
    """A SQLite deployment that has lived: posts, readers, one erased, a digest sent."""
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "test-secret")
    engine = db.make_engine(f"sqlite:///{tmp_path / 'source.db'}")
    db.upgrade(engine)
    sessions = db.make_sessionmaker(engine)
    import_target(sessions, str(sample_dir), settings, NOW)
    for name in ("ada", "bob", "cy", "gone"):
        add_subscriber(sessions, settings, f"{name}@example.org", name.title(), now=NOW)
    with sessions() as session:
        gone = session.scalar(select(Subscriber.id).where(Subscriber.email == "gone@example.org"))
    assert gone is not None
    erase_person(sessions, "gone@example.org", NOW)
    with RecordingServer(Recorder()) as server:
        send_digest(sessions, with_smtp(settings, server.port), NOW, clock=FakeClock(NOW))
        assert len(server.received) == 3
    yield Lived(engine, gone)
    engine.dispose()


@pytest.fixture
def source(lived: Lived) -> Engine:
    return lived.engine


def rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, in the order of their keys."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
        }


# Invariant: the copy holds every row of every table as the source has it (ids, times,
# states, the suppression salt), and the target goes on from there: a new subscriber
# takes an id after every id the source handed out (the erased newest subscriber's
# included), and an erased address stays suppressed.
def test_every_row_is_copied_and_the_target_goes_on_from_there(
    lived: Lived, engine: Engine, settings: Settings
) -> None:
    source = lived.engine
    report = copy_database(source, engine, newsletters=["weekly"])
    assert rows(engine) == rows(source)
    assert report.rows["deliveries"] == 3 and report.rows["posts"] == 10
    sessions = db.make_sessionmaker(engine)
    with sessions() as session:
        assert suppression.is_suppressed(session, "gone@example.org")
    add_subscriber(sessions, settings, "dee@example.org", "Dee", now=NOW)
    with sessions() as session:
        dee = session.scalar(select(Subscriber).where(Subscriber.email == "dee@example.org"))
        assert dee is not None and dee.id > lived.erased_id


# Invariant: a target that holds rows is refused and left as it was.
def test_a_target_with_rows_is_refused_and_left_alone(source: Engine, engine: Engine) -> None:
    copy_database(source, engine, newsletters=["weekly"])
    before = rows(engine)
    with pytest.raises(DatabaseError, match="is not empty"):
        copy_database(source, engine, newsletters=["weekly"])
    assert rows(engine) == before


# Invariant: a copy that fails part way keeps nothing: the target is as empty as before.
def test_a_copy_that_fails_part_way_keeps_nothing(source: Engine, engine: Engine) -> None:
    before = counts(engine)

    def fail_at_posts(table: str, copied: int) -> None:
        if table == "posts":
            raise RuntimeError("the line to the new server dropped")

    with pytest.raises(RuntimeError):
        copy_database(source, engine, newsletters=["weekly"], progress=fail_at_posts)
    assert counts(engine) == before
    copy_database(source, engine, newsletters=["weekly"])  # and it can be tried again
    assert rows(engine) == rows(source)


# Invariant: the command copies into a database named by URL, says how many rows,
# and refuses the database it reads from, by whatever path it is named.
def test_the_command_copies_into_a_new_database(
    source: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "site: {title: T, base_url: 'https://news.example.org/', postal_address: x}\n"
        "email: {sender: news@example.org}\n"
        f"database: {{url: 'sqlite:///{tmp_path / 'source.db'}'}}\n"
        "digests: [{name: weekly, schedule: '0 9 * * MON'}]\n"
    )
    target = tmp_path / "new" / "target.db"
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "db", "copy", f"sqlite:///{target}"])
    assert result.exit_code == 0, result.output
    assert "Copied" in result.output and "deliveries" in result.output
    copied = db.make_engine(f"sqlite:///{target}")
    assert rows(copied) == rows(source)
    copied.dispose()
    again = runner.invoke(
        cli, ["--config", str(config), "db", "copy", f"sqlite:///{tmp_path}/new/../source.db"]
    )
    assert again.exit_code == 1
    assert "is the database being copied" in again.output


# Invariant: a send stopped part way before the move goes on at once on the target:
# the delivery left `sending` (its fate unknown) is sent again with its Message-ID by
# the next send, without waiting for it to go stale; nothing else is sent twice.
def test_a_send_stopped_part_way_goes_on_at_once_after_the_copy(
    source: Engine, engine: Engine, settings: Settings
) -> None:
    with source.begin() as connection:
        first = connection.execute(text("SELECT min(id) FROM deliveries")).scalar_one()
        message_id = connection.execute(
            text("SELECT message_id FROM deliveries WHERE id = :id"), {"id": first}
        ).scalar_one()
        connection.execute(
            text("UPDATE deliveries SET status = 'sending', sender = NULL WHERE id = :id"),
            {"id": first},
        )
        connection.execute(text("UPDATE digest_runs SET finished_at = NULL"))
    copy_database(source, engine, newsletters=["weekly"])
    later = NOW + timedelta(seconds=30)  # well inside any stale_after
    with RecordingServer(Recorder()) as server:
        (report,) = send_digest(
            db.make_sessionmaker(engine),
            with_smtp(settings, server.port),
            later,
            clock=FakeClock(later),
        )
        assert [m.message_id for m in server.received] == [message_id]
    assert report.finished


# A relative SQLite path on the command line is the working directory's, and is shown
# absolute (so database.url can be set to it from anywhere); other URLs are as given.
def test_a_relative_sqlite_target_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_url("sqlite:///moved.db") == f"sqlite:///{tmp_path / 'moved.db'}"
    for url in ("sqlite:////srv/x.db", "sqlite:///:memory:", "postgresql+psycopg://h/db"):
        assert absolute_url(url) == url
