"""Subscriber events: what happened to whom, when, and the report that said so.

Confirmations, unsubscribes, preference changes, bounces, complaints and
reactivations are each kept as a row; ``subscribers show`` lists them and
``subscribers export-person`` includes them. A report (a DSN or an ARF
complaint) is identified by its own Message-ID, so ingesting the same
mailbox twice records it once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import EventKind, SubscriberEvent


def record_event(
    session: Session,
    subscriber_id: int,
    kind: EventKind,
    at: datetime,
    newsletter: str | None = None,
    detail: str | None = None,
    report_id: str | None = None,
    report: str | None = None,
) -> bool:
    """Keep an event. False (and nothing kept) if this report was recorded for them before."""
    if report_id is not None:
        seen = select(SubscriberEvent.id).where(
            SubscriberEvent.subscriber_id == subscriber_id, SubscriberEvent.report_id == report_id
        )
        if session.scalars(seen).first() is not None:
            return False
    session.add(
        SubscriberEvent(
            subscriber_id=subscriber_id,
            kind=kind,
            at=at,
            newsletter=newsletter,
            detail=detail,
            report_id=report_id,
            report=report,
        )
    )
    return True


def events_of(session: Session, subscriber_id: int) -> list[SubscriberEvent]:
    """A subscriber's events, oldest first."""
    query = select(SubscriberEvent).where(SubscriberEvent.subscriber_id == subscriber_id)
    return list(session.scalars(query.order_by(SubscriberEvent.at, SubscriberEvent.id)))


def count_since(session: Session, subscriber_id: int, kind: EventKind, since: datetime) -> int:
    """How many ``kind`` events a subscriber had at or after ``since``."""
    query = select(func.count(SubscriberEvent.id)).where(
        SubscriberEvent.subscriber_id == subscriber_id,
        SubscriberEvent.kind == kind,
        SubscriberEvent.at >= since,
    )
    return int(session.scalar(query) or 0)
