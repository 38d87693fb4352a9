"""Senders that share a run on PostgreSQL know which of them are alive.

Each sender holds a session advisory lock of its own, ``(namespace, number)``,
on its connection to the store for as long as it sends, and marks the rows it
claims with its number (``deliveries.sender``). PostgreSQL frees the lock when
the session ends, however the process ended (SIGKILL, a crash, a lost network,
or stopping on a transport error), so a ``sending`` row whose sender holds no
lock is a dead sender's: another sender takes it back and resends it (the same
Message-ID) at once, and never a live one's in flight (a scheduler taking the
lead took those back too, and they went out twice). The namespace is one per
database and schema (tests share one server), as the scheduler's own lock.

SQLite needs none of this: one sender at a time, under a file lock, takes back
every ``sending`` row when it starts.
"""

from __future__ import annotations

import secrets

from sqlalchemy import Connection, text

#: the locks' first key: one per database and schema, as an int4 PostgreSQL shows
#: again, unsigned, in ``pg_locks.classid``
_NAMESPACE = (
    "(hashtext(current_database() || '.' || coalesce(current_schema(), '') "
    "|| '.publisher-sender') & 2147483647)"
)
_TAKE = text(f"SELECT pg_try_advisory_lock({_NAMESPACE}, :number)")
_GIVE_UP = text(f"SELECT pg_advisory_unlock({_NAMESPACE}, :number)")
_LIVE = text(
    f"""SELECT objid::bigint FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 2 AND granted
        AND classid::bigint = {_NAMESPACE}
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""
)


def take_number(connection: Connection) -> int:
    """A sender's number, its lock taken on ``connection`` (which must stay open, out
    of any pool, while the sender sends; :func:`give_up_number` at the end)."""
    while True:
        number = 1 + secrets.randbelow(2**31 - 1)  # never 0 (queries.deliveries.NO_SENDER)
        if connection.execute(_TAKE, {"number": number}).scalar():
            return number


def give_up_number(connection: Connection, number: int) -> None:
    """Release the sender's lock (its rows are then anyone's to take back)."""
    connection.execute(_GIVE_UP, {"number": number})


def live_senders(connection: Connection) -> list[int]:
    """The numbers of the senders alive now, on this database and schema."""
    return [number for (number,) in connection.execute(_LIVE)]
