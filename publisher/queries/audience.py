"""Queries of the audience: subscribers by address, lists of them, a send's recipients.

Callers pass the session in and own the transaction; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from ..models import Consent, Subscriber, SubscriberStatus, Subscription, Tag, subscription_topics


def subscriber_by_email(session: Session, email: str) -> Subscriber | None:
    return session.scalars(
        select(Subscriber).where(func.lower(Subscriber.email) == email.lower())
    ).one_or_none()


def all_subscribers(session: Session) -> list[Subscriber]:
    return list(session.scalars(select(Subscriber).order_by(Subscriber.id)))


def iter_subscribers(
    session: Session,
    status: SubscriberStatus | None = None,
    newsletter: str | None = None,
    batch: int = 1000,
) -> Iterator[Subscriber]:
    """Subscribers by id, ``batch`` rows at a time (their subscriptions and topics loaded
    per batch), so a list of any length is walked in constant memory.

    :param status: only those with this status.
    :param newsletter: only those who receive it now (have not left it).
    """
    query = select(Subscriber).order_by(Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == status)
    if newsletter is not None:
        query = query.where(
            select(Subscription.subscriber_id)
            .where(
                Subscription.subscriber_id == Subscriber.id,
                Subscription.newsletter == newsletter,
                Subscription.unsubscribed_at.is_(None),
            )
            .exists()
        )
    yield from session.scalars(query.execution_options(yield_per=batch))


def recipient_rows(
    session: Session, after_id: int, limit: int, newsletter: str | None
) -> list[Any]:
    """A batch of active subscribers after ``after_id`` who receive ``newsletter`` (any
    newsletter, if None): keyset paging, so any number streams. Columns: id, email, name.
    """
    receives = select(Subscription.subscriber_id).where(
        Subscription.subscriber_id == Subscriber.id, Subscription.unsubscribed_at.is_(None)
    )
    if newsletter is not None:
        receives = receives.where(Subscription.newsletter == newsletter)
    query = (
        select(Subscriber.id, Subscriber.email, Subscriber.name)
        .where(
            Subscriber.status == SubscriberStatus.ACTIVE,
            Subscriber.id > after_id,
            receives.exists(),
        )
        .order_by(Subscriber.id)
        .limit(limit)
    )
    return list(session.connection().execute(query).all())


def subscription_topic_rows(
    session: Session, ids: Sequence[int], newsletter: str | None
) -> list[Any]:
    """The newsletters the subscribers ``ids`` receive, with the tags followed in each.

    Columns: subscriber_id, newsletter, topic (a tag name; None where a
    subscription follows no tag: all topics). One row per tag.
    """
    query = (
        select(Subscription.subscriber_id, Subscription.newsletter, Tag.name.label("topic"))
        .outerjoin(
            subscription_topics,
            and_(
                subscription_topics.c.subscriber_id == Subscription.subscriber_id,
                subscription_topics.c.newsletter == Subscription.newsletter,
            ),
        )
        .outerjoin(Tag, Tag.id == subscription_topics.c.tag_id)
        .where(Subscription.subscriber_id.in_(ids), Subscription.unsubscribed_at.is_(None))
        .order_by(Subscription.subscriber_id, Subscription.newsletter, Tag.name)
    )
    if newsletter is not None:
        query = query.where(Subscription.newsletter == newsletter)
    return list(session.connection().execute(query).all())


def confirmed_later(session: Session, consent: Consent) -> bool:
    """Was a later request of the same subscriber confirmed? (Its link supersedes
    this one's: a confirmation link works once, and not after a newer one.)"""
    later = select(Consent.id).where(
        Consent.subscriber_id == consent.subscriber_id,
        Consent.id > consent.id,
        Consent.confirmed_at.is_not(None),
    )
    return session.scalars(later.limit(1)).first() is not None
