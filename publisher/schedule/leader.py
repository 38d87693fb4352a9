"""Exactly one scheduling process per database: the leader.

APScheduler's job stores cannot be shared between processes (its FAQ), so
only the leader schedules; another ``publisher run`` either waits to take
over (PostgreSQL) or refuses to start (SQLite).

- PostgreSQL: a session advisory lock, taken with ``pg_try_advisory_lock``
  on a connection of its own that is held for as long as the process leads.
  The lock is the session's: when the leader dies (SIGKILL, a crash, a lost
  network), PostgreSQL ends the session and frees the lock, and a standby's
  next try (every ``scheduler.leader_poll_seconds``) gets it. TCP keepalives on
  that connection, on both ends, make a silent network loss end the session
  within ``scheduler.leader_timeout_seconds``; the leader checks its connection
  at every poll and steps down as soon as it fails, before a standby can lead.
- SQLite: an exclusive ``flock`` on a file beside the database. The kernel
  drops it when the process dies, however it dies; the pid written in the file
  is only shown to people, never trusted.
"""

from __future__ import annotations

import fcntl
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ..config import Settings
from ..errors import AlreadyRunning

#: the advisory lock's key: one per database and schema (tests share one server)
LOCK_KEY = (
    "hashtext(current_database() || '.' || coalesce(current_schema(), '') || '.publisher-run')"
)


class Leadership(Protocol):
    #: what the lock is, for log lines
    description: str
    #: whether a second process waits for the lead (True) or must not start (False)
    shared: bool

    def try_acquire(self) -> bool:
        """Take the lead if nobody holds it; True when this process now leads."""
        ...

    def holds(self) -> bool:
        """Whether this process still leads (checked at every poll)."""
        ...

    def release(self) -> None: ...

    def refusal(self) -> AlreadyRunning:
        """Why a second process may not start (for those that are not ``shared``)."""
        ...


def leadership_for(engine: Engine, settings: Settings) -> Leadership:
    """The lead for the database ``engine`` points at."""
    if engine.dialect.name == "postgresql":
        return PostgresLeadership(engine, settings.scheduler.leader_timeout_seconds)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        return FileLeadership(Path(database + ".run.lock"))
    return FileLeadership(Path(settings.source).resolve().with_suffix(".run.lock"))


def _whoami() -> str:
    started = datetime.now(UTC).isoformat(timespec="seconds")
    return f"pid {os.getpid()} on {socket.gethostname()}, since {started}"


class FileLeadership:
    """An exclusive ``flock`` on ``path``, held while the process lives."""

    shared = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"the lock file {path}"
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, (_whoami() + "\n").encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """What the current holder wrote about itself (for people only)."""
        try:
            return self.path.read_text(encoding="utf-8").strip() or "unknown"
        except OSError:
            return "unknown"

    def refusal(self) -> AlreadyRunning:
        holder = self.holder()
        return AlreadyRunning(
            str(self.path),
            holder,
            f"another `publisher run` is already running on this database: it holds "
            f"{self.path} ({holder}). Stop it first; to run several schedulers (standbys "
            "that take over), use PostgreSQL.",
        )

    def holds(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class PostgresLeadership:
    """A PostgreSQL session advisory lock on a dedicated connection."""

    shared = True

    def __init__(self, engine: Engine, timeout: int) -> None:
        interval = max(1, timeout // 4)
        count = 3
        idle = max(1, timeout - interval * count)
        # libpq's keepalives (this end) and the session's (the server's end): a silent
        # network loss ends the session, and frees the lock, within ``timeout`` seconds
        self._engine = create_engine(
            engine.url,
            poolclass=NullPool,
            connect_args={
                "keepalives": 1,
                "keepalives_idle": idle,
                "keepalives_interval": interval,
                "keepalives_count": count,
                "connect_timeout": max(2, timeout // 2),
            },
        )
        self._session_settings = {
            "tcp_keepalives_idle": idle,
            "tcp_keepalives_interval": interval,
            "tcp_keepalives_count": count,
            "statement_timeout": f"{timeout}s",
        }
        self.description = f"a PostgreSQL advisory lock on {engine.url.render_as_string()}"
        self._connection: Connection | None = None

    def try_acquire(self) -> bool:
        try:
            connection = self._engine.connect()
        except DBAPIError:
            return False
        try:
            for name, value in self._session_settings.items():
                connection.execute(text(f"SET {name} = '{value}'"))
            got = connection.execute(text(f"SELECT pg_try_advisory_lock({LOCK_KEY})")).scalar()
            connection.commit()
        except DBAPIError:
            connection.close()
            return False
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def holds(self) -> bool:
        if self._connection is None:
            return False
        try:
            held = self._connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = pg_backend_pid() AND granted"
                )
            ).scalar()
            self._connection.commit()
        except DBAPIError:
            self._drop()
            return False
        if not held:
            self._drop()
        return bool(held)

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except DBAPIError:
                pass
            self._connection = None

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text(f"SELECT pg_advisory_unlock({LOCK_KEY})"))
                self._connection.commit()
            except DBAPIError:
                pass
        self._drop()

    def refusal(self) -> AlreadyRunning:
        return AlreadyRunning(self.description, "", "another `publisher run` leads")
