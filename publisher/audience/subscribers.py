"""Subscribers in the store: the life of a subscription, for the web pages and the CLI.

States (:class:`~publisher.models.SubscriberStatus`)::

    (new) --request--> pending --confirm--> active --unsubscribe--> unsubscribed
                                              |--hard bounce / soft bounces--> bounced
                                              '--complaint (ARF)-----------> complained

Only ``active`` subscribers are mailed, and only the newsletters they have
not left. Nothing here makes an ``unsubscribed``, ``bounced`` or
``complained`` person (nor an erased one, whose address survives only as a
hash on the suppression list) active again, except :func:`confirm`: the
person's own click on a confirmation link, which is a new double opt-in.
Staff can do it knowingly with ``publisher subscribers reactivate``.

The API (each call is one transaction; values, not ORM objects, come back):

- :func:`.signup.request_subscription` (its own module: the public form's
  one cheap transaction) — the subscribe form was sent: makes or finds the
  subscriber, records the consent as asked (unconfirmed) and returns a
  :class:`~.signup.Requested` whose ``consent_id`` the confirmation link signs
  (``tokens.make_token(secret, Purpose.CONFIRM, str(consent_id))``). A new
  address becomes ``pending`` with the chosen newsletters; a known one is
  left exactly as it is until the click. It answers the same for every
  address, so the form cannot reveal who is subscribed.
- :func:`confirm` — the confirmation link was clicked: the consent's choices
  apply, the subscriber becomes ``active``. A second click raises
  :class:`~publisher.errors.BadToken` (``used``).
- :func:`set_preferences` — the preferences page: newsletters and topics
  (choosing none unsubscribes).
- :func:`unsubscribe` — from one newsletter or from all (idempotent).
- :func:`profile`, :func:`profile_by_token` — what a page shows about a
  subscriber, by id or by a signed link.
- :func:`add_subscriber` — staff add someone who agreed elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..addresses import normalise_address
from ..config import Settings
from ..db import transaction
from ..errors import BadToken, ContentError, NameRefused, NotFound, SubscriptionError
from ..models import Consent, ConsentMethod, EventKind, Subscriber, SubscriberStatus
from . import suppression
from .choices import Catalogue, Choice, apply_choices, as_json, choices_of
from .consent import ConsentGiven, record_consent
from .events import record_event
from .names import tidy_name
from .tokens import Purpose, read_token

#: statuses only the person's own new opt-in (or staff's reactivate) may leave
STOPPED = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)


@dataclass(frozen=True)
class Profile:
    """A subscriber as a page shows them. ``choices``: the newsletters they receive now."""

    id: int
    email: str
    name: str | None
    status: SubscriberStatus
    created_at: datetime
    choices: tuple[Choice, ...]


def profile_of(subscriber: Subscriber) -> Profile:
    return Profile(
        subscriber.id,
        subscriber.email,
        subscriber.name,
        subscriber.status,
        subscriber.created_at,
        choices_of(subscriber),
    )


def _tidy(name: str | None) -> str | None:
    """The name given (see :mod:`.names`).

    :raises ContentError: a name the store cannot keep, naming the field.
    """
    try:
        return tidy_name(name)
    except NameRefused as e:
        raise ContentError("name", e.why) from e


def check_unused(session: Session, consent: Consent) -> None:
    """:raises BadToken: ``used``: this request, or a later one, was confirmed already."""
    if consent.confirmed_at is not None:
        raise BadToken("used", "This confirmation link has been used already.")
    if queries.confirmed_later(session, consent):
        raise BadToken(
            "used",
            "A newer confirmation link for this address has been used already: this one "
            "no longer counts (the newer request is the one that holds).",
        )


def confirm(factory: sessionmaker[Session], consent_id: int, now: datetime) -> Profile:
    """The confirmation link of consent ``consent_id`` was clicked: the subscriber is active.

    This is the one way back for someone who unsubscribed, bounced,
    complained or was erased: their own, new double opt-in.

    :raises NotFound: the request is gone (the person was erased meanwhile).
    :raises BadToken: ``used``: this link, or a later one, was confirmed already.
    """
    with transaction(factory) as session:
        consent = session.get(Consent, consent_id)
        if consent is None:
            raise NotFound("there is no such subscription request any more")
        check_unused(session, consent)
        subscriber = session.get(Subscriber, consent.subscriber_id)
        assert subscriber is not None  # the consent would be gone with them (cascade)
        tags = queries.tags_by_slug(session)
        resolved = {
            name: [tags[s] for s in slugs if s in tags] for name, slugs in consent.choices.items()
        }
        previous = subscriber.status
        apply_choices(subscriber, resolved, now, replace=previous is not SubscriberStatus.ACTIVE)
        # a pending subscriber's name came from a request nobody confirmed (anyone may
        # send the form): it becomes the confirmed request's, which the confirmation page
        # showed; a known subscriber keeps theirs (and the page promises no other)
        if previous is SubscriberStatus.PENDING:
            subscriber.name = consent.name
        subscriber.status = SubscriberStatus.ACTIVE
        consent.confirmed_at = now
        suppression.lift(session, subscriber.email)
        detail = "double opt-in confirmed"
        if previous in STOPPED:
            detail += f"; subscribed again (was {previous.value})"
        record_event(session, subscriber.id, EventKind.CONFIRM, now, detail=detail)
        session.flush()
        return profile_of(subscriber)


def set_preferences(
    factory: sessionmaker[Session],
    settings: Settings,
    subscriber_id: int,
    choices: Sequence[Choice],
    now: datetime,
) -> Profile:
    """Receive exactly ``choices`` from now on; none chosen unsubscribes from everything.

    :raises NotFound: no such subscriber, or an unknown newsletter or topic.
    :raises SubscriptionError: the subscriber is not active (a preferences
        page never subscribes anyone again: the subscribe form does, with a
        confirmation).
    """
    with transaction(factory) as session:
        subscriber = _get(session, subscriber_id)
        if subscriber.status is not SubscriberStatus.ACTIVE:
            raise SubscriptionError(
                subscriber.email,
                subscriber.status.value,
                "receives no newsletter now; to subscribe again, use the subscribe page "
                "(a confirmation link is emailed)",
            )
        resolved = Catalogue.load(session, settings).resolve(choices)
        apply_choices(subscriber, resolved, now, replace=True)
        if resolved:
            detail = "; ".join(
                f"{name}: {', '.join(t.name for t in tags) or 'all topics'}"
                for name, tags in sorted(resolved.items())
            )
            record_event(session, subscriber.id, EventKind.PREFERENCES, now, detail=detail)
        else:
            subscriber.status = SubscriberStatus.UNSUBSCRIBED
            record_event(
                session, subscriber.id, EventKind.UNSUBSCRIBE, now, detail="chose no newsletter"
            )
        session.flush()
        return profile_of(subscriber)


def unsubscribe(
    factory: sessionmaker[Session],
    subscriber_id: int,
    newsletter: str | None = None,
    now: datetime | None = None,
    detail: str | None = None,
) -> str | None:
    """Stop one newsletter, or all (``newsletter=None``). Idempotent.

    Leaving the last newsletter makes the subscriber ``unsubscribed``. A
    bounced or complained subscriber stays so (they get nothing either way).

    :param detail: how they asked (``one-click``, ``mailto``, ``staff`` …), for the event.
    :returns: their address, or None if there is no such subscriber.
    """
    when = now or datetime.now(UTC)
    with transaction(factory) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return None
        changed = False
        for row in subscriber.subscriptions:
            if row.unsubscribed_at is None and newsletter in (None, row.newsletter):
                row.unsubscribed_at = when
                changed = True
        left = [s for s in subscriber.subscriptions if s.unsubscribed_at is None]
        if subscriber.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING) and (
            newsletter is None or not left
        ):
            subscriber.status = SubscriberStatus.UNSUBSCRIBED
            changed = True
        if changed:
            record_event(
                session, subscriber.id, EventKind.UNSUBSCRIBE, when, newsletter, detail=detail
            )
        return subscriber.email


def set_topics(
    factory: sessionmaker[Session], subscriber_id: int, slugs: Iterable[str]
) -> str | None:
    """Follow these tags (unknown slugs ignored) in every newsletter received. None if unknown."""
    with transaction(factory) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return None
        wanted = set(slugs)
        tags = [t for t in queries.all_tags(session) if t.slug in wanted]
        for row in subscriber.subscriptions:
            if row.unsubscribed_at is None:
                row.topics = list(tags)
        return subscriber.email


def profile(factory: sessionmaker[Session], subscriber_id: int) -> Profile | None:
    with factory() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        return profile_of(subscriber) if subscriber else None


def profile_by_token(
    factory: sessionmaker[Session],
    secret: str,
    purpose: Purpose,
    token: str,
    max_age: int | None = None,
) -> Profile:
    """The subscriber a signed link (made by ``tokens.make_token``) is for.

    :raises BadToken: forged, expired, made for another purpose, or from a test message.
    :raises NotFound: the subscriber is gone (erased).
    """
    value = read_token(secret, purpose, token, max_age)
    if not value.isdigit():
        raise BadToken("test", "This link came in a test message: there is no subscription.")
    found = profile(factory, int(value))
    if found is None:
        raise NotFound("There is no such subscription any more.")
    return found


def add_subscriber(
    factory: sessionmaker[Session],
    settings: Settings,
    address: str,
    name: str | None = None,
    topics: Iterable[str] = (),
    newsletters: Iterable[str] | None = None,
    now: datetime | None = None,
    consent_text: str = "Added by staff, who hold their consent.",
) -> str:
    """Staff subscribe an address to ``newsletters`` (default: all), following ``topics``.

    An active or pending subscriber is updated (name, the newsletters added).

    :raises AddressError: for an address no server would take.
    :raises NotFound: for an unknown newsletter or topic.
    :raises SubscriptionError: the person unsubscribed, bounced, complained or
        was erased: only ``reactivate`` (knowingly) or their own opt-in bring
        them back.
    """
    when = now or datetime.now(UTC)
    email = normalise_address(address)
    with transaction(factory) as session:
        catalogue = Catalogue.load(session, settings)
        topic_list = list(topics)
        names = list(newsletters) if newsletters is not None else catalogue.newsletters
        resolved = catalogue.resolve(Choice(n, tuple(topic_list)) for n in names)
        if not resolved:
            raise NotFound("no newsletter to subscribe to: config.yaml has no digests")
        subscriber = queries.subscriber_by_email(session, email)
        if subscriber is None:
            if suppression.is_suppressed(session, email):
                raise SubscriptionError(
                    email,
                    "erased",
                    "was erased at their request; only they can subscribe again, "
                    "on the subscribe page",
                )
            subscriber = Subscriber(email=email, created_at=when)
            session.add(subscriber)
            session.flush()
        elif subscriber.status in STOPPED:
            raise SubscriptionError(
                email,
                subscriber.status.value,
                "not changed; if they asked to come back, run "
                f"`publisher subscribers reactivate {email}`",
            )
        subscriber.name = _tidy(name) or subscriber.name
        subscriber.status = SubscriberStatus.ACTIVE
        apply_choices(subscriber, resolved, when, replace=False)
        given = ConsentGiven(ConsentMethod.STAFF, consent_text, when)
        record_consent(session, subscriber.id, given, as_json(resolved), when)
        record_event(
            session, subscriber.id, EventKind.ADD, when, detail=", ".join(sorted(resolved))
        )
        return email


def _get(session: Session, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound("There is no such subscription any more.")
    return subscriber
