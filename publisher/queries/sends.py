"""Queries of the send pipeline: digest runs, their deliveries, and scheduled sends.

Callers pass the session in and own the transaction; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..models import (
    Delivery,
    DeliveryStatus,
    DigestRun,
    ScheduledSend,
    Subscriber,
    SubscriberStatus,
    Subscription,
    Tag,
    subscription_topics,
)


def last_finished_run(session: Session, name: str) -> DigestRun | None:
    """The most recent digest of this schedule that went out to everyone."""
    query = (
        select(DigestRun)
        .where(DigestRun.name == name, DigestRun.finished_at.is_not(None))
        .order_by(DigestRun.period_end.desc())
    )
    return session.scalars(query.limit(1)).first()


def unfinished_run(session: Session, name: str) -> DigestRun | None:
    """A send of this schedule that stopped part way, to resume."""
    query = (
        select(DigestRun)
        .where(DigestRun.name == name, DigestRun.finished_at.is_(None))
        .order_by(DigestRun.id.desc())
    )
    return session.scalars(query.limit(1)).first()


def settled_subscriber_ids(session: Session, run_id: int, ids: Sequence[int]) -> set[int]:
    """Which of ``ids`` already have a delivery (sent, failed for good, skipped) in the run."""
    query = select(Delivery.subscriber_id).where(
        Delivery.run_id == run_id, Delivery.subscriber_id.in_(ids)
    )
    return set(session.scalars(query))


# -- the send pipeline: runs and their deliveries ------------------------------------------

_deliveries = Delivery.metadata.tables["deliveries"]
_status_type = _deliveries.c.status.type


def run_by_period(session: Session, name: str, period_start: datetime) -> DigestRun | None:
    """The run of digest ``name`` for the period starting at ``period_start`` (unique)."""
    query = select(DigestRun).where(DigestRun.name == name, DigestRun.period_start == period_start)
    return session.scalars(query).one_or_none()


def runs_of(session: Session, name: str | None, limit: int) -> list[DigestRun]:
    """The latest runs (of digest ``name``, or of every digest), newest first."""
    query = select(DigestRun).order_by(DigestRun.id.desc()).limit(limit)
    if name is not None:
        query = query.where(DigestRun.name == name)
    return list(session.scalars(query))


def insert_pending_deliveries(session: Session, run_id: int, newsletter: str, now: datetime) -> int:
    """One ``pending`` delivery per active subscriber who receives ``newsletter``, in one
    statement; the number of rows made. (The suppression list, kept as salted hashes,
    is checked as each batch is sent.)"""
    receives = select(Subscription.subscriber_id).where(
        Subscription.subscriber_id == Subscriber.id,
        Subscription.unsubscribed_at.is_(None),
        Subscription.newsletter == newsletter,
    )
    rows = select(
        literal(run_id),
        Subscriber.id,
        literal(DeliveryStatus.PENDING, _status_type),
        literal(now, Delivery.at.type),
        literal(0),
    ).where(Subscriber.status == SubscriberStatus.ACTIVE, receives.exists())
    statement = _deliveries.insert().from_select(
        ["run_id", "subscriber_id", "status", "at", "attempts"], rows
    )
    return session.connection().execute(statement).rowcount


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
    d = _deliveries
    if stale_before is None:
        due = and_(
            d.c.status == DeliveryStatus.PENDING,
            or_(d.c.next_attempt_at.is_(None), d.c.next_attempt_at <= now),
        )
    else:
        due = and_(d.c.status == DeliveryStatus.SENDING, d.c.at < stale_before)
    pick = (
        select(d.c.id)
        .where(d.c.run_id == run_id, due, d.c.id > after_id)
        .order_by(d.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # a MATERIALIZED CTE: the pick runs once. With IN (…) the planner may rerun it per
        # row (and with SKIP LOCKED each run picks anew): a claim of 100 took minutes at 20k.
        cte = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        which = d.c.id == cte.c.id
    else:
        which = d.c.id.in_(pick.scalar_subquery())
    statement = (
        update(d)
        .where(which)
        .values(status=DeliveryStatus.SENDING, at=now)
        .returning(d.c.id, d.c.subscriber_id, d.c.attempts, d.c.retry_until)
    )
    return sorted(session.execute(statement).all(), key=lambda row: row.id)


def delivery_recipients(session: Session, ids: Sequence[int], newsletter: str) -> list[Any]:
    """The subscribers ``ids`` as a send of ``newsletter`` needs them, in one query.

    Columns: id, email, name, status, receives (the newsletter's name if they still
    receive it, else None), topic (a tag they follow in it; one row per tag, None
    where they follow all).
    """
    sub, topic = Subscription, subscription_topics.c
    query = (
        select(
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.status,
            sub.newsletter.label("receives"),
            Tag.name.label("topic"),
        )
        .outerjoin(
            sub,
            and_(
                sub.subscriber_id == Subscriber.id,
                sub.newsletter == newsletter,
                sub.unsubscribed_at.is_(None),
            ),
        )
        .outerjoin(
            subscription_topics,
            and_(topic.subscriber_id == sub.subscriber_id, topic.newsletter == sub.newsletter),
        )
        .outerjoin(Tag, Tag.id == topic.tag_id)
        .where(Subscriber.id.in_(ids))
    )
    return list(session.execute(query).all())


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


def next_retry_at(session: Session, run_id: int) -> datetime | None:
    """When the earliest deferred (4xx) delivery of the run is due again."""
    d = Delivery
    query = select(func.min(d.next_attempt_at)).where(
        d.run_id == run_id, d.status == DeliveryStatus.PENDING
    )
    return session.scalars(query).one()


def has_unsettled(session: Session, run_id: int) -> bool:
    """Is any delivery of the run still ``pending`` or ``sending``? (Reads one row.)"""
    query = select(Delivery.id).where(
        Delivery.run_id == run_id,
        Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
    )
    return session.scalars(query.limit(1)).first() is not None


def finish_run(session: Session, run_id: int, now: datetime) -> bool:
    """Mark the run finished if no delivery is left unsettled; whether it is finished."""
    if has_unsettled(session, run_id):
        return False
    session.execute(
        update(DigestRun)
        .where(DigestRun.id == run_id, DigestRun.finished_at.is_(None))
        .values(finished_at=now)
    )
    return True


def delivery_counts(session: Session, run_id: int) -> dict[str, int]:
    """How many deliveries of the run are in each state (reads the whole run: for
    reports, never per batch)."""
    query = (
        select(Delivery.status, func.count())
        .where(Delivery.run_id == run_id)
        .group_by(Delivery.status)
    )
    return {DeliveryStatus(status).value: count for status, count in session.execute(query)}


def deliveries_in(
    session: Session, run_id: int, statuses: Sequence[DeliveryStatus], limit: int
) -> list[Any]:
    """Deliveries of the run in ``statuses``, the latest first, with the address.

    Columns: id, email, status, message_id, error, at, attempts.
    """
    query = (
        select(
            Delivery.id,
            Subscriber.email,
            Delivery.status,
            Delivery.message_id,
            Delivery.error,
            Delivery.at,
            Delivery.attempts,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.run_id == run_id, Delivery.status.in_(statuses))
        .order_by(Delivery.at.desc(), Delivery.id.desc())
        .limit(limit)
    )
    return list(session.execute(query).all())


def mark_bounced(session: Session, ids: Sequence[int]) -> list[int]:
    """Make the active subscribers among ``ids`` ``bounced`` (their mailbox does not
    exist); the ids that changed."""
    if not ids:
        return []
    statement = (
        update(Subscriber)
        .where(Subscriber.id.in_(ids), Subscriber.status == SubscriberStatus.ACTIVE)
        .values(status=SubscriberStatus.BOUNCED)
        .returning(Subscriber.id)
    )
    return list(session.scalars(statement))


def last_scheduled_send(session: Session, name: str) -> ScheduledSend | None:
    """The newest record of the scheduler for this newsletter (its ``due_at`` is the
    baseline: no send due before it can be missed)."""
    query = (
        select(ScheduledSend)
        .where(ScheduledSend.name == name)
        .order_by(ScheduledSend.due_at.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def first_scheduled_due(session: Session, name: str) -> datetime | None:
    """When the first send of this newsletter the scheduler dealt with was due (whatever
    came of it; not the ``watching`` record): until a digest goes out, windows start at
    the fire time before it, so a skipped or empty first send loses no post."""
    query = (
        select(ScheduledSend.due_at)
        .where(ScheduledSend.name == name, ScheduledSend.outcome != "watching")
        .order_by(ScheduledSend.due_at)
        .limit(1)
    )
    return session.scalars(query).first()


def scheduled_send(session: Session, name: str, due_at: datetime) -> ScheduledSend | None:
    """The record of this newsletter's send due at ``due_at``."""
    query = select(ScheduledSend).where(ScheduledSend.name == name, ScheduledSend.due_at == due_at)
    return session.scalars(query).one_or_none()


def unsettled_scheduled_sends(session: Session, name: str) -> list[ScheduledSend]:
    """Sends of this newsletter claimed but not finished (``sending`` or ``open``), oldest
    first: what a new leader resumes."""
    query = (
        select(ScheduledSend)
        .where(ScheduledSend.name == name, ScheduledSend.outcome.in_(["sending", "open"]))
        .order_by(ScheduledSend.due_at)
    )
    return list(session.scalars(query))


def scheduled_sends_of(session: Session, name: str, limit: int) -> list[ScheduledSend]:
    """The newest records of this newsletter's sends, newest first."""
    query = (
        select(ScheduledSend)
        .where(ScheduledSend.name == name)
        .order_by(ScheduledSend.due_at.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
