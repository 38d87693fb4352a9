"""Subscribers in the store: add, unsubscribe, choose topics."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..addresses import normalise_address
from ..db import transaction
from ..errors import NotFound
from ..models import Subscriber, SubscriberStatus


def add_subscriber(
    factory: sessionmaker[Session],
    address: str,
    name: str | None,
    topics: Iterable[str],
    now: datetime,
) -> str:
    """Subscribe an address (or update an existing subscriber's name and topics).

    :raises AddressError: for an address no server would take.
    :raises NotFound: for a topic that is not a tag.
    """
    email_address = normalise_address(address)
    with transaction(factory) as session:
        tags = {t.slug: t for t in queries.all_tags(session)}
        by_name = {t.name.lower(): t for t in tags.values()}
        chosen = []
        for topic in topics:
            tag = tags.get(topic) or by_name.get(topic.lower())
            if tag is None:
                known = ", ".join(sorted(t.name for t in tags.values())) or "none yet"
                raise NotFound(f"no tag {topic!r} to follow; the tags are: {known}")
            chosen.append(tag)
        subscriber = queries.subscriber_by_email(session, email_address)
        if subscriber is None:
            subscriber = Subscriber(email=email_address, created_at=now)
            session.add(subscriber)
        subscriber.name = " ".join(name.split()) if name else subscriber.name
        subscriber.status = SubscriberStatus.ACTIVE
        subscriber.topics = chosen
    return email_address


def unsubscribe(factory: sessionmaker[Session], subscriber_id: int) -> str | None:
    """Stop a subscriber's emails (idempotent). Their address, or None if unknown."""
    with transaction(factory) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return None
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        return subscriber.email


def set_topics(
    factory: sessionmaker[Session], subscriber_id: int, slugs: Iterable[str]
) -> str | None:
    """Set the tags a subscriber follows (unknown slugs are ignored). None if unknown."""
    with transaction(factory) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return None
        wanted = set(slugs)
        subscriber.topics = [t for t in queries.all_tags(session) if t.slug in wanted]
        return subscriber.email
