"""One leader per database: the PostgreSQL advisory lock and the SQLite lock file."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from publisher import db
from publisher.config import Settings
from publisher.schedule.leader import FileLeadership, PostgresLeadership, leadership_for
from tests.integration.test_run_processes import pg_url  # noqa: F401


# The lead is exclusive, and a leader whose database session ends (a lost connection, a
# restarted server) knows at its next check that it no longer leads, while a standby
# then gets the lead.
def test_postgres_lead_is_exclusive_and_moves_when_the_session_ends(
    pg_url: str,  # noqa: F811
    settings: Settings,
) -> None:
    engine = db.make_engine(pg_url)
    first, second = leadership_for(engine, settings), leadership_for(engine, settings)
    assert isinstance(first, PostgresLeadership) and first.shared
    try:
        assert first.try_acquire() and first.holds()
        assert not second.try_acquire()
        with engine.begin() as conn:  # what a lost connection does: the server ends the session
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                )
            )
        assert not first.holds()
        assert second.try_acquire() and second.holds()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()
        engine.dispose()


# On SQLite a second process is refused, with a message naming the lock file and what
# the holder wrote about itself; the lock is free again once released.
def test_sqlite_lock_file_refuses_a_second_holder(tmp_path: Path, settings: Settings) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'publisher.db'}")
    first, second = leadership_for(engine, settings), leadership_for(engine, settings)
    assert isinstance(first, FileLeadership) and not first.shared
    assert first.path == tmp_path / "publisher.db.run.lock"
    assert first.try_acquire()
    assert not second.try_acquire()  # flock locks belong to the open file: same process too
    message = str(second.refusal())
    assert "another `publisher run` is already running" in message
    assert str(first.path) in message and "pid " in message
    first.release()
    assert second.try_acquire()
    second.release()
