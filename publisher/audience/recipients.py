"""Who a message is for: :class:`Recipient`, made in one place from the store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..models import Subscriber


@dataclass(frozen=True)
class Recipient:
    """Who a message is for. ``id`` is the subscriber's (0 for a test send)."""

    email: str
    name: str | None = None
    id: int = 0
    topics: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Stable per recipient: the subscriber id, or a hash of a test address."""
        if self.id:
            return str(self.id)
        return "t" + hashlib.sha256(self.email.lower().encode()).hexdigest()[:12]


#: who a rendering is for when no subscriber is named
SAMPLE_RECIPIENT = Recipient("reader@example.org", "Alex Reader")


def recipient_of(subscriber: Subscriber) -> Recipient:
    """The recipient a stored subscriber is."""
    return Recipient(
        subscriber.email, subscriber.name, subscriber.id, tuple(t.name for t in subscriber.topics)
    )


def recipient_for(session: Session, address: str) -> Recipient:
    """The subscriber with ``address`` as a recipient, or a bare one if there is none."""
    subscriber = queries.subscriber_by_email(session, address)
    return recipient_of(subscriber) if subscriber else Recipient(address)


def iter_recipients(factory: sessionmaker[Session], batch: int = 1000) -> Iterator[Recipient]:
    """Every active subscriber, a batch at a time (keyset paging), so memory stays flat."""
    after = 0
    while True:
        with factory() as session:
            rows = queries.active_subscriber_rows(session, after, batch)
        if not rows:
            return
        for row in rows:
            topics = tuple(row.topics.split(queries.TOPIC_SEPARATOR)) if row.topics else ()
            yield Recipient(row.email, row.name, row.id, topics)
        after = rows[-1].id
