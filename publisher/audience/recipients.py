"""Who a message is for: :class:`Recipient`, made in one place from the store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..models import Subscriber
from . import suppression


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


def recipient_of(subscriber: Subscriber, newsletter: str | None = None) -> Recipient:
    """The recipient a stored subscriber is (for ``newsletter``: with its topics)."""
    rows = [
        s
        for s in subscriber.subscriptions
        if s.unsubscribed_at is None and newsletter in (None, s.newsletter)
    ]
    return Recipient(
        subscriber.email,
        subscriber.name,
        subscriber.id,
        _topics([[t.name for t in s.topics] for s in rows]),
    )


def recipient_for(session: Session, address: str, newsletter: str | None = None) -> Recipient:
    """The subscriber with ``address`` as a recipient, or a bare one if there is none."""
    subscriber = queries.subscriber_by_email(session, address)
    return recipient_of(subscriber, newsletter) if subscriber else Recipient(address)


def _topics(per_newsletter: list[list[str]]) -> tuple[str, ...]:
    """One newsletter's topics; over several, their union, or all if any follows all."""
    if not per_newsletter or any(not topics for topics in per_newsletter):
        return ()
    return tuple(sorted({t for topics in per_newsletter for t in topics}))


def iter_recipients(
    factory: sessionmaker[Session], batch: int = 1000, newsletter: str | None = None
) -> Iterator[Recipient]:
    """Who gets ``newsletter``: every active subscriber who has not left it, with the
    topics they follow in it, in id order, a batch at a time (keyset paging), so memory
    stays flat. Addresses on the suppression list are skipped whatever their status.

    ``newsletter=None`` (older callers): everyone active who receives any newsletter,
    following the union of their topics (all, if any newsletter follows all).
    """
    after = 0
    while True:
        with factory() as session:
            rows = queries.recipient_rows(session, after, batch, newsletter)
            if not rows:
                return
            ids = [row.id for row in rows]
            topics: dict[int, dict[str, list[str]]] = {}
            for t in queries.subscription_topic_rows(session, ids, newsletter):
                names = topics.setdefault(t.subscriber_id, {}).setdefault(t.newsletter, [])
                if t.topic is not None:
                    names.append(t.topic)
            salt = suppression.load_salt(session)
            blocked = suppression.suppressed(session, salt, [row.email for row in rows])
        for row in rows:
            if row.email not in blocked:
                chosen = list(topics.get(row.id, {}).values())
                yield Recipient(row.email, row.name, row.id, _topics(chosen))
        after = rows[-1].id
