"""The send loop's statements on delivery rows, run once per group of messages.

Written once, here, as SQL: no statement to build and no cache key to compute
per call (through the ORM, those cost more than the database's own work on
these few rows). Callers pass the session in and own the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, column, text, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import TextualSelect

from ..models import Delivery, DeliveryStatus, UTCDateTime

_deliveries = Delivery.metadata.tables["deliveries"]
_status_type = _deliveries.c.status.type

_DUE = "status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
_STALE = "status = 'sending' AND at < :stale_before"
_PICK = """SELECT id FROM deliveries
    WHERE run_id = :run_id AND {due} AND id > :after_id ORDER BY id LIMIT :limit"""
#: SQLite: one writer at a time, so a plain subquery
_CLAIM_SQLITE = """UPDATE deliveries SET status = 'sending', at = :at
    WHERE id IN ({pick})
    RETURNING id, subscriber_id, attempts, retry_until"""
#: PostgreSQL: a MATERIALIZED CTE, so the pick runs once. With IN (…) the planner may
#: rerun it per row (and with SKIP LOCKED each run picks anew): a claim of 100 took
#: minutes at 20k.
_CLAIM_POSTGRESQL = """WITH picked AS MATERIALIZED ({pick} FOR UPDATE SKIP LOCKED)
    UPDATE deliveries SET status = 'sending', at = :at
    FROM picked WHERE deliveries.id = picked.id
    RETURNING deliveries.id, deliveries.subscriber_id, deliveries.attempts,
        deliveries.retry_until"""


def _claim_statement(dialect: str, stale: bool) -> TextualSelect:
    template = _CLAIM_POSTGRESQL if dialect == "postgresql" else _CLAIM_SQLITE
    pick = _PICK.format(due=_STALE if stale else _DUE)
    return text(template.format(pick=pick)).columns(
        column("id", Integer),
        column("subscriber_id", Integer),
        column("attempts", Integer),
        column("retry_until", UTCDateTime()),
    )


_CLAIMS = {
    (dialect, stale): _claim_statement(dialect, stale)
    for dialect in ("sqlite", "postgresql")
    for stale in (False, True)
}


def _db_time(session: Session, when: datetime) -> Any:
    """``when`` as the UTCDateTime columns store it (SQLite: SQLAlchemy's text form),
    converted once for a whole statement rather than per row."""
    dialect = session.get_bind().dialect
    process = _UTC.dialect_impl(dialect).bind_processor(dialect)
    return process(when) if process else when


_UTC = UTCDateTime()


def claim_deliveries(
    session: Session,
    run_id: int,
    now: datetime,
    limit: int,
    stale_before: datetime | None = None,
    after_id: int = 0,
) -> list[Any]:
    """Mark up to ``limit`` due deliveries of the run ``sending`` and return them.

    Due: ``pending`` and past their ``next_attempt_at``; or, with
    ``stale_before``, left ``sending`` before then by a sender that died. On
    PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``, so concurrent
    senders never claim the same row. ``after_id``: only rows past it (a sender's
    cursor). An index scan from the start of the run would step over the entries of
    every row already sent (an update leaves its old index entry until VACUUM, longer
    while any transaction is open), so a send would slow as it goes; the cursor keeps
    each claim reading only the rows it takes (``ix_deliveries_claim``).
    Columns: id, subscriber_id, attempts, retry_until.
    """
    dialect = session.get_bind().dialect.name
    at = _db_time(session, now)
    params = {"run_id": run_id, "at": at, "now": at, "after_id": after_id, "limit": limit}
    if stale_before is not None:
        params["stale_before"] = _db_time(session, stale_before)
    statement = _CLAIMS[("postgresql" if dialect == "postgresql" else "sqlite", bool(stale_before))]
    rows = session.connection().execute(statement, params).all()
    return sorted(rows, key=lambda row: row.id)


_RECIPIENTS = text(
    """SELECT subscribers.id, subscribers.email, subscribers.name, subscribers.status,
        subscriptions.newsletter AS receives, tags.name AS topic
    FROM subscribers
    LEFT OUTER JOIN subscriptions ON subscriptions.subscriber_id = subscribers.id
        AND subscriptions.newsletter = :newsletter AND subscriptions.unsubscribed_at IS NULL
    LEFT OUTER JOIN subscription_topics
        ON subscription_topics.subscriber_id = subscriptions.subscriber_id
        AND subscription_topics.newsletter = subscriptions.newsletter
    LEFT OUTER JOIN tags ON tags.id = subscription_topics.tag_id
    WHERE subscribers.id IN :ids"""
).bindparams(bindparam("ids", expanding=True))


def delivery_recipients(session: Session, ids: Sequence[int], newsletter: str) -> list[Any]:
    """The subscribers ``ids`` as a send of ``newsletter`` needs them, in one query.

    Columns: id, email, name, status, receives (the newsletter's name if they still
    receive it, else None), topic (a tag they follow in it; one row per tag, None
    where they follow all).
    """
    params = {"ids": list(ids), "newsletter": newsletter}
    return list(session.connection().execute(_RECIPIENTS, params).all())


_RECORD_SENT = text(
    """UPDATE deliveries SET status = 'sent', error = NULL, at = :at,
        next_attempt_at = NULL, retry_until = NULL
    WHERE id IN :ids"""
).bindparams(bindparam("ids", expanding=True))


def record_sent(session: Session, at: datetime, ids: Sequence[int]) -> None:
    """Deliveries the server accepted, all at ``at``, in one statement (each row has
    its Message-ID from its creation)."""
    if ids:
        params = {"ids": list(ids), "at": _db_time(session, at)}
        session.connection().execute(_RECORD_SENT, params)


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
