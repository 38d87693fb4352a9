"""What staff do to one subscriber: look, remove, reactivate, and the data-protection pair.

- :func:`subscriber_details` — everything ``subscribers show`` prints.
- :func:`remove_subscriber` — stop their mail (from one newsletter or all),
  keeping the record, so no import brings them back.
- :func:`reactivate` — staff knowingly undo an unsubscribe, bounce or
  complaint (the person asked, the mailbox works again); recorded as an event.
- :func:`export_person` — everything held about an address, for a subject
  access request: every row of every table that refers to the subscriber
  (tables added later included), as JSON-ready values.
- :func:`erase_person` — delete the person and everything that refers to
  them, keeping only a salted hash of the address on the suppression list.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..addresses import normalise_address
from ..db import transaction
from ..errors import NotFound, SubscriptionError
from ..models import (
    Base,
    EventKind,
    Subscriber,
    SubscriberStatus,
)
from . import suppression
from .choices import Choice, choices_of
from .consent import consents_of
from .events import events_of, record_event
from .subscribers import STOPPED, unsubscribe


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str
    newsletter: str | None
    detail: str | None


@dataclass(frozen=True)
class ConsentView:
    at: datetime
    method: str
    confirmed_at: datetime | None
    page: str | None
    client_address: str | None
    text: str


@dataclass(frozen=True)
class Details:
    """One subscriber as staff see them."""

    id: int
    email: str
    name: str | None
    status: SubscriberStatus
    created_at: datetime
    choices: tuple[Choice, ...]
    #: newsletters they left, with when
    left: tuple[tuple[str, datetime], ...]
    consents: tuple[ConsentView, ...]
    events: tuple[Event, ...]


def _find(session: Session, address: str) -> Subscriber:
    email = normalise_address(address)
    subscriber = queries.subscriber_by_email(session, email)
    if subscriber is None:
        raise NotFound(f"no subscriber {email}; `publisher subscribers list` shows them")
    return subscriber


def subscriber_details(factory: sessionmaker[Session], address: str) -> Details:
    """:raises NotFound: no subscriber has this address."""
    with factory() as session:
        subscriber = _find(session, address)
        return Details(
            subscriber.id,
            subscriber.email,
            subscriber.name,
            subscriber.status,
            subscriber.created_at,
            choices_of(subscriber),
            tuple(
                (s.newsletter, s.unsubscribed_at)
                for s in subscriber.subscriptions
                if s.unsubscribed_at is not None
            ),
            tuple(
                ConsentView(c.at, c.method.value, c.confirmed_at, c.page, c.client_address, c.text)
                for c in consents_of(session, subscriber.id)
            ),
            tuple(
                Event(e.at, e.kind.value, e.newsletter, e.detail)
                for e in events_of(session, subscriber.id)
            ),
        )


def remove_subscriber(
    factory: sessionmaker[Session], address: str, newsletter: str | None, now: datetime
) -> str:
    """Unsubscribe ``address`` from ``newsletter`` (None: all) on their behalf.

    :raises NotFound: no subscriber has this address.
    """
    with factory() as session:
        subscriber_id = _find(session, address).id
    email = unsubscribe(factory, subscriber_id, newsletter, now, detail="removed by staff")
    assert email is not None
    return email


def reactivate(
    factory: sessionmaker[Session], address: str, now: datetime, note: str | None = None
) -> str:
    """Make an unsubscribed, bounced or complained subscriber active again, knowingly.

    They get back the newsletters they had when they stopped (all they ever
    had, if they had left each one).

    :raises NotFound: no subscriber has this address (an erased person cannot
        be reactivated: only their own opt-in on the subscribe page brings them back).
    :raises SubscriptionError: they are active already, or pending (their
        confirmation click is what makes them active).
    """
    with transaction(factory) as session:
        subscriber = _find(session, address)
        if subscriber.status not in STOPPED:
            raise SubscriptionError(
                subscriber.email,
                subscriber.status.value,
                "only unsubscribed, bounced or complained subscribers can be reactivated",
            )
        previous = subscriber.status
        if not any(s.unsubscribed_at is None for s in subscriber.subscriptions):
            for row in subscriber.subscriptions:
                row.unsubscribed_at = None
        subscriber.status = SubscriberStatus.ACTIVE
        detail = f"by staff (was {previous.value})" + (f": {note}" if note else "")
        record_event(session, subscriber.id, EventKind.REACTIVATE, now, detail=detail)
        return subscriber.email


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a column value."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _referring_tables() -> list[Table]:
    """Every table with a foreign key to ``subscribers``: what a person's data spans."""
    return [
        table
        for table in Base.metadata.sorted_tables
        if any(fk.column.table.name == "subscribers" for fk in table.foreign_keys)
    ]


def export_person(factory: sessionmaker[Session], address: str) -> dict[str, Any]:
    """Everything held about ``address``: the subscriber row and every row referring to it.

    :raises NotFound: nothing is held (if the address was erased, says so).
    """
    email = normalise_address(address)
    with factory() as session:
        subscriber = queries.subscriber_by_email(session, email)
        if subscriber is None:
            if suppression.is_suppressed(session, email):
                raise NotFound(
                    f"nothing is held about {email}: it was erased; only a salted hash of the "
                    "address is kept, on the suppression list"
                )
            raise NotFound(f"nothing is held about {email}")
        held: dict[str, Any] = {
            "exported_at": datetime.now(UTC).isoformat(),
            "subscriber": _row(session, Base.metadata.tables["subscribers"], subscriber.id, "id"),
        }
        for table in _referring_tables():
            column = next(
                fk.parent.name for fk in table.foreign_keys if fk.column.table.name == "subscribers"
            )
            held[table.name] = _rows(session, table, subscriber.id, column)
        return held


def _rows(session: Session, table: Table, subscriber_id: int, column: str) -> list[Any]:
    query = select(table).where(table.c[column] == subscriber_id).order_by(*table.primary_key)
    return [
        {key: _plain(value) for key, value in row._mapping.items()}
        for row in session.execute(query)
    ]


def _row(session: Session, table: Table, subscriber_id: int, column: str) -> Any:
    rows = _rows(session, table, subscriber_id, column)
    return rows[0] if rows else None


def erase_person(factory: sessionmaker[Session], address: str, now: datetime) -> bool:
    """Delete everything held about ``address``; keep its salted hash on the suppression list.

    Every row referring to the subscriber goes with them (:func:`delete_subscribers`).

    :returns: whether there was a subscriber to delete (the hash is kept either way,
        so an import cannot add them later).
    """
    email = normalise_address(address)
    with transaction(factory) as session:
        suppression.suppress(session, email, "erased", now)
        subscriber = queries.subscriber_by_email(session, email)
        if subscriber is None:
            return False
        session.expunge(subscriber)
        delete_subscribers(session, [subscriber.id])
        return True


def delete_subscribers(session: Session, ids: list[int]) -> None:
    """Delete the subscribers ``ids`` and every row that refers to them.

    The foreign keys cascade; the rows are deleted explicitly too, so a table
    added later without a cascade is not left holding them.
    """
    for table in reversed(_referring_tables()):
        for fk in table.foreign_keys:
            if fk.column.table.name == "subscribers":
                session.execute(delete(table).where(fk.parent.in_(ids)))
    session.execute(delete(Subscriber).where(Subscriber.id.in_(ids)))
