"""The subscribe form's request in the store: one transaction of plain SQL statements.

This is the write a public form makes for anyone who sends it, so it is the
store call that must be cheap: the address is found through the index on
``lower(email)`` (migration 0008), the per-address limit is counted in the
same transaction, and the rows are written with SQLAlchemy Core (no ORM
unit of work, no loading of the subscriber's relationships): a lookup, then
four or five inserts and one commit.

It does the same work, in the same statements, whoever the address belongs
to (new, pending, active, unsubscribed, bounced or complained): a consent
record (with the newsletters, topics and name asked for) and a ``request``
event. Only a new or still pending address also gets its newsletters and
topics written (a pending one's are replaced by the latest request); a known
address is otherwise left exactly as it is until its owner clicks, and the
click applies the request it confirms, name included.

Two requests at once for one address (PostgreSQL, several server threads or
machines): the subscriber's row is locked for the transaction, so they take
turns; for a new address one insert wins (one subscriber per address, whatever
its case: migration 0010) and the other request is made again, and finds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..addresses import normalise_address
from ..config import Settings
from ..db import transaction
from ..errors import NameRefused, NotFound
from ..models import Base, EventKind, SubscriberStatus, subscription_topics
from .choices import Catalogue, Choice, TagRef, as_json
from .consent import ConsentGiven
from .names import tidy_name

SUBSCRIBERS = Base.metadata.tables["subscribers"]
SUBSCRIPTIONS = Base.metadata.tables["subscriptions"]
CONSENTS = Base.metadata.tables["consents"]
EVENTS = Base.metadata.tables["subscriber_events"]
TOPICS = subscription_topics

# The statements, built once (a statement built per call costs more than running it).
# Parameters are named in each; "subscriber" is always a subscriber's id.

#: the subscriber an address belongs to, whatever the case of its local part
#: (``address``: lower-cased; found through the index on lower(email))
#: (locked for the transaction on PostgreSQL, so that requests for it take turns)
BY_ADDRESS = (
    select(SUBSCRIBERS.c.id, SUBSCRIBERS.c.email, SUBSCRIBERS.c.status)
    .where(func.lower(SUBSCRIBERS.c.email) == bindparam("address"))
    .with_for_update()
)
#: a subscriber's requests of ``kind`` at or after ``since``
ASKED = select(func.count(EVENTS.c.id)).where(
    EVENTS.c.subscriber_id == bindparam("subscriber"),
    EVENTS.c.kind == bindparam("kind"),
    EVENTS.c.at >= bindparam("since"),
)
NEW_SUBSCRIBER = insert(SUBSCRIBERS).returning(SUBSCRIBERS.c.id)
NEW_CONSENT = insert(CONSENTS).returning(CONSENTS.c.id)
NEW_EVENT = insert(EVENTS)
NEW_SUBSCRIPTION = insert(SUBSCRIPTIONS)
NEW_TOPIC = insert(TOPICS)
#: every newsletter row of a (pending) subscriber, and the topics in them
FORGET_TOPICS = delete(TOPICS).where(TOPICS.c.subscriber_id == bindparam("subscriber"))
FORGET_SUBSCRIPTIONS = delete(SUBSCRIPTIONS).where(
    SUBSCRIPTIONS.c.subscriber_id == bindparam("subscriber")
)


@dataclass(frozen=True)
class Requested:
    """What a subscription request did.

    :param consent_id: the consent record the confirmation link must sign.
    :param previous: the status before the request, None for a new address
        (for logs and tests: the form must answer the same whatever it is).
    """

    subscriber_id: int
    consent_id: int
    email: str
    previous: SubscriberStatus | None


def _tidy(name: str | None) -> str | None:
    """The name given, as the form checked it (:func:`.names.tidy_name`); a name it
    would refuse is dropped rather than break the request."""
    try:
        return tidy_name(name)
    except NameRefused:
        return None


def request_subscription(
    factory: sessionmaker[Session],
    settings: Settings,
    address: str,
    name: str | None,
    choices: Sequence[Choice],
    consent: ConsentGiven,
    now: datetime,
    limit: tuple[int, datetime] | None = None,
) -> Requested | None:
    """Someone asked (on the form) to receive ``choices``; nothing is sent to them yet.

    :param limit: (requests allowed, since when): when the address has made
        that many requests since then, nothing is recorded and None comes
        back (the caller sends no email; the form answers as usual).
    :raises AddressError: an address no server would take.
    :raises NotFound: an unknown newsletter or topic, or no newsletter chosen.
    """
    email = normalise_address(address)
    try:
        return _request(factory, settings, email, name, choices, consent, now, limit)
    except IntegrityError:
        # a request for the same new address committed first: this one finds it now
        return _request(factory, settings, email, name, choices, consent, now, limit)


def _request(
    factory: sessionmaker[Session],
    settings: Settings,
    email: str,
    name: str | None,
    choices: Sequence[Choice],
    consent: ConsentGiven,
    now: datetime,
    limit: tuple[int, datetime] | None,
) -> Requested | None:
    with transaction(factory) as session:
        catalogue = Catalogue.read(session, settings)
        resolved = catalogue.resolve(choices)
        if not resolved:
            raise NotFound(
                "no newsletter chosen; the newsletters are: " + ", ".join(catalogue.newsletters)
            )
        connection = session.connection()
        found = connection.execute(BY_ADDRESS, {"address": email.lower()}).first()
        if found is None:
            subscriber_id = connection.execute(
                NEW_SUBSCRIBER,
                {
                    "email": email,
                    "name": None,  # the name comes with the request whose link is clicked
                    "status": SubscriberStatus.PENDING,
                    "created_at": now,
                },
            ).scalar_one()
            previous = None
            _choose(connection, subscriber_id, resolved, now, fresh=True)
        else:
            subscriber_id, email, previous = found.id, found.email, found.status
            if limit is not None and _asked(connection, subscriber_id, limit[1]) >= limit[0]:
                return None
            if previous is SubscriberStatus.PENDING:
                # not confirmed yet: the latest request's choices stand meanwhile (the
                # click applies those of the request it confirms, and its name)
                _choose(connection, subscriber_id, resolved, now, fresh=False)
        consent_id = connection.execute(
            NEW_CONSENT,
            {
                "subscriber_id": subscriber_id,
                "method": consent.method,
                "at": consent.at,
                "page": consent.page,
                "client_address": consent.client_address,
                "text": consent.text,
                "choices": as_json(resolved),
                "name": _tidy(name),
                "confirmed_at": None,
            },
        ).scalar_one()
        connection.execute(
            NEW_EVENT,
            {
                "subscriber_id": subscriber_id,
                "kind": EventKind.REQUEST,
                "at": now,
                "detail": f"{consent.method.value} request",
            },
        )
        return Requested(int(subscriber_id), int(consent_id), email, previous)


def _asked(connection: Connection, subscriber_id: int, since: datetime) -> int:
    """Subscription requests a subscriber made at or after ``since``."""
    params = {"subscriber": subscriber_id, "kind": EventKind.REQUEST, "since": since}
    return int(connection.scalar(ASKED, params) or 0)


def _choose(
    connection: Connection,
    subscriber_id: int,
    resolved: dict[str, list[TagRef]],
    now: datetime,
    fresh: bool,
) -> None:
    """Exactly ``resolved`` from now on, for a new or a pending subscriber.

    A pending subscriber has only ever asked, never received anything: the newsletters
    of their earlier requests are replaced as a whole (two deletes), not left one by
    one, so their request costs a new address's statements and two more.
    """
    if not fresh:
        mine = {"subscriber": subscriber_id}
        connection.execute(FORGET_TOPICS, mine)
        connection.execute(FORGET_SUBSCRIPTIONS, mine)
    joined = [
        {"subscriber_id": subscriber_id, "newsletter": n, "created_at": now} for n in resolved
    ]
    connection.execute(NEW_SUBSCRIPTION, joined)
    followed = [
        {"subscriber_id": subscriber_id, "newsletter": n, "tag_id": t.id}
        for n, tags in resolved.items()
        for t in tags
    ]
    if followed:
        connection.execute(NEW_TOPIC, followed)
