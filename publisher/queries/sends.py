"""Queries of the send pipeline: digest runs, their deliveries, and scheduled sends.

Callers pass the session in and own the transaction; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    and_,
    cast,
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
    RunEdition,
    ScheduledSend,
    Subscriber,
    SubscriberStatus,
    Subscription,
    Tag,
    subscription_topics,
)


def last_run(session: Session, name: str) -> DigestRun | None:
    """The newest run of this digest, finished or not: the next one starts where it ends."""
    query = select(DigestRun).where(DigestRun.name == name).order_by(DigestRun.period_end.desc())
    return session.scalars(query.limit(1)).first()


def run_ending_at(session: Session, name: str, end: datetime) -> DigestRun | None:
    """The run of digest ``name`` whose period ends at ``end`` (a schedule's send due
    then), finished or not."""
    query = select(DigestRun).where(DigestRun.name == name, DigestRun.period_end == end)
    return session.scalars(query.limit(1)).first()


def unfinished_runs(session: Session, name: str) -> list[DigestRun]:
    """The runs of this digest that have not reached everyone yet, oldest first."""
    query = (
        select(DigestRun)
        .where(DigestRun.name == name, DigestRun.finished_at.is_(None))
        .order_by(DigestRun.period_end)
    )
    return list(session.scalars(query))


def run_at_work(session: Session, run_id: int, now: datetime) -> bool:
    """Has the run a delivery due now (``pending``, any retry fallen due) or in flight
    (``sending``)? A run that only waits for retries later is not at work. (Reads one row.)"""
    d = Delivery
    due = or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now)
    query = select(d.id).where(
        d.run_id == run_id,
        or_(d.status == DeliveryStatus.SENDING, and_(d.status == DeliveryStatus.PENDING, due)),
    )
    return session.scalars(query.limit(1)).first() is not None


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


def _message_ids(subscriber_id: Any, affixes: tuple[str, str]) -> Any:
    """Each delivery's Message-ID, in SQL: the run's prefix, the subscriber id, its suffix
    (:func:`publisher.mail.message.message_id_affixes`)."""
    before, after = affixes
    return literal(before) + cast(subscriber_id, String) + literal(after)


def run_edition(session: Session, run_id: int, topics: str) -> RunEdition | None:
    """The stored edition of the run for ``topics`` (sorted tag names as JSON)."""
    query = select(RunEdition).where(RunEdition.run_id == run_id, RunEdition.topics == topics)
    return session.scalars(query).one_or_none()


def topic_sets(session: Session, run_id: int, newsletter: str) -> set[tuple[str, ...]]:
    """The sets of topics the run's subscribers follow in ``newsletter`` (sorted names
    each; those who follow everything are not listed), read as a stream."""
    query = (
        select(subscription_topics.c.subscriber_id, Tag.name)
        .join(Tag, Tag.id == subscription_topics.c.tag_id)
        .join(
            Delivery,
            and_(
                Delivery.subscriber_id == subscription_topics.c.subscriber_id,
                Delivery.run_id == run_id,
            ),
        )
        .where(subscription_topics.c.newsletter == newsletter)
        .order_by(subscription_topics.c.subscriber_id)
    )
    found: set[tuple[str, ...]] = set()
    current: int | None = None
    names: list[str] = []
    rows = session.connection().execution_options(yield_per=2000).execute(query)
    for subscriber_id, name in rows:
        if subscriber_id != current:
            if names:
                found.add(tuple(sorted(names)))
            current, names = subscriber_id, []
        names.append(name)
    if names:
        found.add(tuple(sorted(names)))
    return found


def add_run_edition(session: Session, edition: RunEdition) -> None:
    """Store an edition of a run; raises IntegrityError (at the flush) when another
    sender stored that run's edition for the same topics first."""
    session.add(edition)
    session.flush()


def insert_pending_deliveries(
    session: Session, run_id: int, newsletter: str, now: datetime, id_affixes: tuple[str, str]
) -> int:
    """One ``pending`` delivery per active subscriber who receives ``newsletter``, with
    its Message-ID, in one statement; the number of rows made. (The suppression list,
    kept as salted hashes, is checked as each group is sent.)"""
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
        _message_ids(Subscriber.id, id_affixes),
    ).where(Subscriber.status == SubscriberStatus.ACTIVE, receives.exists())
    statement = _deliveries.insert().from_select(
        ["run_id", "subscriber_id", "status", "at", "attempts", "message_id"], rows
    )
    return session.connection().execute(statement).rowcount


def analyze_deliveries(session: Session) -> None:
    """PostgreSQL: refresh the planner's statistics of ``deliveries``, after a new run
    added a row per subscriber in one statement. With the statistics of the emptier
    table (none yet, or last run's deleted rows) the planner took a sequential scan for
    the claim of each group: 150 ms a group at 100k. A user without the right is told
    so by a warning, and the send goes on."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("ANALYZE deliveries")


def fill_message_ids(session: Session, run_id: int, id_affixes: tuple[str, str]) -> int:
    """Give the run's deliveries that have none their Message-ID (runs made before
    deliveries were created with theirs); how many."""
    d = _deliveries
    statement = (
        update(d)
        .where(d.c.run_id == run_id, d.c.message_id.is_(None))
        .values(message_id=_message_ids(d.c.subscriber_id, id_affixes))
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


def delivered(session: Session, subscriber_id: int, message_id: str) -> bool:
    """Whether a delivery to ``subscriber_id`` carried ``message_id`` (a bounce's
    original): a look-up by the subscriber's index."""
    found = session.execute(
        select(Delivery.id).where(
            Delivery.subscriber_id == subscriber_id, Delivery.message_id == message_id
        )
    ).first()
    return found is not None
