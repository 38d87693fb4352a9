"""The send loop's statements on delivery rows, run once per group of messages.

Written once, here, as SQL: no statement to build and no cache key to compute
per call (through the ORM, those cost more than the database's own work on
these few rows). Callers pass the session in and own the transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, update
from sqlalchemy.orm import Session

from ..models import Delivery, DeliveryStatus, SubscriberStatus, UTCDateTime

_deliveries = Delivery.metadata.tables["deliveries"]
_status_type = _deliveries.c.status.type

_DUE = "status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
_STALE = "status = 'sending' AND at < :stale_before"
#: PostgreSQL: ``sending`` rows whose sender holds no lock any more (mail/senders), and
#: rows claimed before senders had numbers, by age
_STALE_POSTGRESQL = """status = 'sending' AND (sender IS NULL AND at < :stale_before
        OR sender <> ALL(CAST(:live AS bigint[])))"""
_PICK = """SELECT id FROM deliveries
    WHERE run_id = :run_id AND {due} AND id > :after_id ORDER BY id LIMIT :limit"""
#: who each claimed delivery is for, as they stand now (they may have left since the run
#: was made): each a look-up by primary key, whatever the planner's statistics say (a
#: join over subscriptions planned with stale ones scanned the table for every group)
_WHO = """(SELECT email FROM subscribers s WHERE s.id = {d}.subscriber_id) AS email,
    (SELECT name FROM subscribers s WHERE s.id = {d}.subscriber_id) AS name,
    (SELECT status FROM subscribers s WHERE s.id = {d}.subscriber_id) AS subscriber_status,
    (SELECT 1 FROM subscriptions sub WHERE sub.subscriber_id = {d}.subscriber_id
        AND sub.newsletter = :newsletter AND sub.unsubscribed_at IS NULL) AS receives,
    (SELECT {tags} FROM subscription_topics st JOIN tags t ON t.id = st.tag_id
        WHERE st.subscriber_id = {d}.subscriber_id AND st.newsletter = :newsletter) AS topics"""
#: SQLite: one writer at a time, so a plain subquery
_CLAIM_SQLITE = """UPDATE deliveries SET status = 'sending', at = :at, sender = :sender
    WHERE id IN ({pick})
    RETURNING id, subscriber_id, attempts, retry_until,
    """ + _WHO.format(d="deliveries", tags="json_group_array(t.name)")
#: PostgreSQL: a MATERIALIZED CTE, so the pick runs once. With IN (…) the planner may
#: rerun it per row (and with SKIP LOCKED each run picks anew): a claim of 100 took
#: minutes at 20k.
_CLAIM_POSTGRESQL = (
    """WITH picked AS MATERIALIZED ({pick} FOR UPDATE SKIP LOCKED),
    claimed AS (UPDATE deliveries SET status = 'sending', at = :at, sender = :sender
        FROM picked WHERE deliveries.id = picked.id
        RETURNING deliveries.id, deliveries.subscriber_id, deliveries.attempts,
            deliveries.retry_until)
    SELECT claimed.id, claimed.subscriber_id, claimed.attempts, claimed.retry_until,
    """
    + _WHO.format(d="claimed", tags="json_agg(t.name)")
    + """
    FROM claimed"""
)


#: PostgreSQL, the send loop's usual turn in one statement (so one round trip, in
#: autocommit: a statement is its own transaction): the deliveries the server accepted
#: marked ``sent`` and the next ones claimed, together; and whether the suppression
#: list holds anyone at all (most turns then need no look-up). Data-modifying CTEs
#: all run, whether or not their rows are read.
_RECORD_SENT_CTE = """WITH done AS (UPDATE deliveries
        SET status = 'sent', error = NULL, at = :sent_at, next_attempt_at = NULL,
            retry_until = NULL
        WHERE id = ANY(CAST(:sent AS bigint[]))),
    """
_SENT_AND_CLAIM_POSTGRESQL = _RECORD_SENT_CTE + _CLAIM_POSTGRESQL.removeprefix("WITH ").replace(
    "\n    FROM claimed",
    ",\n    (SELECT 1 FROM suppressions LIMIT 1) AS anyone_suppressed\n    FROM claimed",
)


def _driver_sql(sql: str, dialect: str) -> str:
    """``sql`` with its ``:name`` parameters in the driver's style (psycopg: ``%(name)s``)."""
    if dialect != "postgresql":
        return sql  # sqlite3 takes :name as it is
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


def _claim_sql(dialect: str, stale: bool) -> str:
    template = _CLAIM_POSTGRESQL if dialect == "postgresql" else _CLAIM_SQLITE
    stale_rows = _STALE_POSTGRESQL if dialect == "postgresql" else _STALE
    pick = _PICK.format(due=stale_rows if stale else _DUE)
    return _driver_sql(template.replace("{pick}", pick), dialect)


_SENT_AND_CLAIM = _driver_sql(
    _SENT_AND_CLAIM_POSTGRESQL.replace("{pick}", _PICK.format(due=_DUE)), "postgresql"
)

#: run on the driver's cursor: the statements of each group skip SQLAlchemy's
#: execution (its statement cache, parameter and row processing: more than the
#: database's own work on a group of a dozen rows)
_CLAIMS = {
    (dialect, stale): _claim_sql(dialect, stale)
    for dialect in ("sqlite", "postgresql")
    for stale in (False, True)
}


def _cursor(session: Session) -> Any:
    """A cursor of the driver's on the session's connection, in its transaction."""
    return session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]


def _db_time(session: Session, when: datetime) -> Any:
    """``when`` as the UTCDateTime columns store it (SQLite: SQLAlchemy's text form),
    converted once for a whole statement rather than per row."""
    return _bind_time(session.get_bind().dialect, when)


def _bind_time(dialect: Any, when: datetime) -> Any:
    process = _UTC.dialect_impl(dialect).bind_processor(dialect)
    return process(when) if process else when


_UTC = UTCDateTime()


def _result_time(dialect: Any) -> Any:
    """Reads a UTCDateTime column's value as the driver gives it."""
    process = _UTC.dialect_impl(dialect).result_processor(dialect, None)
    return process or (lambda value: value)


class Claimed(NamedTuple):
    """A delivery claimed for sending, with its subscriber as they stand now."""

    id: int
    subscriber_id: int
    #: 4xx answers so far, and when to give up (after the first)
    attempts: int
    retry_until: datetime | None
    email: str
    name: str | None
    #: they are active and still receive the newsletter
    receiving: bool
    #: the tags they follow in it (sorted; empty: all of them)
    topics: tuple[str, ...]


def claim_deliveries(
    session: Session,
    run_id: int,
    newsletter: str,
    now: datetime,
    limit: int,
    stale_before: datetime | None = None,
    after_id: int = 0,
    sender: int | None = None,
    live: Sequence[int] = (),
) -> list[Claimed]:
    """Mark up to ``limit`` due deliveries of the run ``sending`` and return them, in
    order, each with its subscriber as they stand now (for ``newsletter``).

    Due: ``pending`` and past their ``next_attempt_at``; or, with
    ``stale_before``, left ``sending`` by a sender that died: on PostgreSQL a
    sender not among ``live`` (:func:`~publisher.mail.senders.live_senders`), or
    before then for rows no sender marked; elsewhere before then. On PostgreSQL
    the rows are picked ``FOR UPDATE SKIP LOCKED``, so concurrent senders never
    claim the same row; each is marked with ``sender``. ``after_id``: only rows
    past it (a sender's cursor). ``ix_deliveries_claim`` holds no status (so that
    a status change touches no index): a scan from the start of the run would
    read every row already sent, and a send would slow as it goes; the cursor
    keeps each claim reading only the rows it takes. (From the start only at the
    end of the run: retries, released rows.)
    """
    dialect = session.get_bind().dialect
    params = _claim_params(dialect, run_id, newsletter, now, limit, after_id, sender)
    if stale_before is not None:
        params["stale_before"] = _db_time(session, stale_before)
        params["live"] = "{" + ",".join(map(str, live)) + "}"  # (as record_sent_and_claim)
    kind = "postgresql" if dialect.name == "postgresql" else "sqlite"
    cursor = _cursor(session)
    cursor.execute(_CLAIMS[(kind, stale_before is not None)], params)
    found = cursor.fetchall()
    cursor.close()
    return _claimed(found, dialect)


def _claim_params(
    dialect: Any,
    run_id: int,
    newsletter: str,
    now: datetime,
    limit: int,
    after_id: int,
    sender: int | None,
) -> dict[str, Any]:
    """The parameters every claim statement takes (``now`` is both the claim's time
    and the moment a retry must have fallen due by; ``sender``: who claims)."""
    at = _bind_time(dialect, now)
    return {
        "run_id": run_id,
        "newsletter": newsletter,
        "at": at,
        "now": at,
        "after_id": after_id,
        "limit": limit,
        "sender": sender,
    }


def _claimed(found: Sequence[Any], dialect: Any) -> list[Claimed]:
    """Claimed rows as the claim statements return them, in order."""
    active = SubscriberStatus.ACTIVE.value
    to_time = _result_time(dialect)
    claimed = [
        Claimed(
            id_,
            subscriber_id,
            attempts,
            retry_until if retry_until is None else to_time(retry_until),
            email,
            name,
            receives is not None and status == active,
            _names(topics),
        )
        for id_, subscriber_id, attempts, retry_until, email, name, status, receives, topics in (
            found
        )
    ]
    return sorted(claimed)


def record_sent_and_claim(
    connection: Connection,
    run_id: int,
    newsletter: str,
    now: datetime,
    limit: int,
    after_id: int,
    sent_at: datetime | None,
    sent: Sequence[int],
    sender: int | None = None,
) -> tuple[list[Claimed], bool]:
    """PostgreSQL: mark ``sent`` (the deliveries the server accepted, at ``sent_at``)
    ``sent`` and claim up to ``limit`` due deliveries past ``after_id`` as
    :func:`claim_deliveries` does, in one statement on ``connection`` (in autocommit:
    the statement is its transaction). The claimed rows, and whether anyone at all is
    on the suppression list: said on each claimed row, so False when none was claimed."""
    params = _claim_params(connection.dialect, run_id, newsletter, now, limit, after_id, sender)
    params["sent_at"] = _bind_time(connection.dialect, sent_at or now)
    # the array as text: psycopg adapts a list element by element
    params["sent"] = "{" + ",".join(map(str, sent)) + "}"
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(_SENT_AND_CLAIM, params)
    found = cursor.fetchall()
    cursor.close()
    anyone = any(row[-1] is not None for row in found)
    return _claimed([row[:-1] for row in found], connection.dialect), anyone


def _names(topics: str | list[str | None] | None) -> tuple[str, ...]:
    """An aggregate of tag names, sorted: SQLite's JSON text, PostgreSQL's decoded list
    (None when there is none)."""
    if not topics or topics == "[]":
        return ()
    names = json.loads(topics) if isinstance(topics, str) else topics
    return tuple(sorted(n for n in names if n is not None))


_RECORD_SENT = {
    dialect: _driver_sql(
        """UPDATE deliveries SET status = 'sent', error = NULL, at = :at,
            next_attempt_at = NULL, retry_until = NULL
        WHERE id IN """
        + ids,
        dialect,
    )
    for dialect, ids in (
        ("sqlite", "(SELECT value FROM json_each(:ids))"),
        ("postgresql", "(SELECT unnest(CAST(:ids AS bigint[])))"),
    )
}


def record_sent(session: Session, at: datetime, ids: Sequence[int]) -> None:
    """Deliveries the server accepted, all at ``at``, in one statement (each row has
    its Message-ID from its creation)."""
    if not ids:
        return
    postgresql = session.get_bind().dialect.name == "postgresql"
    cursor = _cursor(session)
    cursor.execute(
        _RECORD_SENT["postgresql" if postgresql else "sqlite"],
        {"at": _db_time(session, at), "ids": list(ids) if postgresql else json.dumps(ids)},
    )
    cursor.close()


def record_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Write what became of deliveries, as one executemany of plain rows.

    Each row: ``b_id``, ``b_status``, ``b_message_id``, ``b_error``, ``b_at``,
    ``b_attempts``, ``b_next``, ``b_until``.
    """
    if not rows:
        return
    d = _deliveries
    statement = (
        update(d)
        .where(d.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status", type_=_status_type),
            message_id=bindparam("b_message_id"),
            error=bindparam("b_error"),
            at=bindparam("b_at", type_=Delivery.at.type),
            attempts=bindparam("b_attempts"),
            next_attempt_at=bindparam("b_next", type_=Delivery.at.type),
            retry_until=bindparam("b_until", type_=Delivery.at.type),
        )
    )
    session.connection().execute(statement, list(rows))


def release_deliveries(session: Session, ids: Sequence[int]) -> None:
    """Put claimed deliveries that were never handed to SMTP back to ``pending``."""
    if ids:
        d = _deliveries
        session.execute(
            update(d)
            .where(d.c.id.in_(ids), d.c.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.PENDING)
        )


def reset_sending(session: Session, run_id: int) -> int:
    """Every ``sending`` delivery of the run back to ``pending`` (only for a sender that
    knows it is the only one: on SQLite, under the send lock)."""
    d = _deliveries
    statement = (
        update(d)
        .where(d.c.run_id == run_id, d.c.status == DeliveryStatus.SENDING)
        .values(status=DeliveryStatus.PENDING)
    )
    return session.connection().execute(statement).rowcount


#: a sender number no sender holds (:func:`publisher.mail.senders.take_number`)
NO_SENDER = 0


def free_claims(connection: Connection) -> int:
    """Mark every ``sending`` delivery that names no sender as a gone sender's, so
    that the next send on PostgreSQL takes it back at once rather than after
    ``stale_after`` (a database copied from SQLite, whose claims name none)."""
    d = _deliveries
    statement = (
        update(d)
        .where(d.c.status == DeliveryStatus.SENDING, d.c.sender.is_(None))
        .values(sender=NO_SENDER)
    )
    return connection.execute(statement).rowcount
