"""Subscription requests nobody confirmed, forgotten once their link has expired.

A request on the subscribe form stores the address, the name, the client's
address and the page (the consent record) before anyone knows the address
is theirs. If the link in the confirmation email is never clicked, none of
it is consent, and keeping it would hold personal data for no purpose (GDPR
art. 5(1)(c) and (e)). So once ``web.confirm_days`` have passed since a
request (its link no longer works), :func:`forget_unconfirmed` deletes:

- a subscriber who never confirmed anything (still ``pending``, no request
  younger than that), with every row about them; their address is not put
  on the suppression list: they may ask again;
- of every other subscriber, the form requests they never confirmed (consent
  rows without ``confirmed_at``); the rest of their record stays.

``publisher run`` does it with each periodic build (:mod:`publisher.schedule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from ..config import Settings
from ..db import transaction
from ..models import Consent, ConsentMethod, Subscriber, SubscriberStatus
from .staff import delete_subscribers


@dataclass(frozen=True)
class Forgotten:
    """What :func:`forget_unconfirmed` deleted."""

    #: pending subscribers, with everything about them
    subscribers: int
    #: unconfirmed requests of the subscribers who stay
    requests: int


def forget_unconfirmed(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> Forgotten:
    """Delete what unconfirmed requests left, once their links have expired."""
    expired = now - timedelta(days=settings.web.confirm_days)
    with transaction(factory) as session:
        still_good = (
            select(Consent.id)
            .where(
                Consent.subscriber_id == Subscriber.id,
                or_(Consent.at >= expired, Consent.confirmed_at.is_not(None)),
            )
            .exists()
        )
        pending = select(Subscriber.id).where(
            Subscriber.status == SubscriberStatus.PENDING,
            Subscriber.created_at < expired,
            ~still_good,
        )
        ids = list(session.scalars(pending))
        if ids:
            delete_subscribers(session, ids)
        unconfirmed = delete(Consent).where(
            Consent.method == ConsentMethod.FORM,
            Consent.confirmed_at.is_(None),
            Consent.at < expired,
        )
        requests = session.connection().execute(unconfirmed).rowcount
    return Forgotten(len(ids), requests)
