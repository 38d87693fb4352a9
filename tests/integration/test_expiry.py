"""Unconfirmed subscription requests are forgotten once their links have expired:
the address, name, client address and page of someone who never confirmed are
not kept for good (data minimisation); nothing else is touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from publisher import queries
from publisher.audience import signup, subscribers as store, suppression
from publisher.audience.choices import Choice
from publisher.audience.consent import ConsentGiven
from publisher.audience.expiry import forget_unconfirmed
from publisher.config import Settings
from publisher.models import Consent, ConsentMethod, SubscriberEvent, SubscriberStatus
from publisher.schedule.service import Service

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
WEEKLY = [Choice("weekly")]


def ask(sessions: sessionmaker[Session], settings: Settings, address: str, at: datetime) -> int:
    """A form request for ``address`` made at ``at``; its consent id."""
    form = ConsentGiven(
        ConsentMethod.FORM,
        "Yes, email me.",
        at,
        page="https://x/subscribe",
        client_address="192.0.2.7",
    )
    return signup.request_subscription(
        sessions, settings, address, "Name", WEEKLY, form, at
    ).consent_id


def held(sessions: sessionmaker[Session], address: str) -> tuple[SubscriberStatus | None, int]:
    """The subscriber's status (None: not held) and how many consent rows they have."""
    with sessions() as session:
        found = queries.subscriber_by_email(session, address)
        if found is None:
            return None, 0
        count = select(func.count()).select_from(Consent).where(Consent.subscriber_id == found.id)
        return found.status, int(session.scalar(count) or 0)


# Someone who never clicked their link is forgotten once it has expired, with
# every row about them, and may ask again (their address is not suppressed).
def test_a_request_never_confirmed_is_forgotten_when_its_link_expires(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    days = settings.web.confirm_days
    ask(sessions, settings, "old@example.org", NOW - timedelta(days=days, minutes=1))
    ask(sessions, settings, "fresh@example.org", NOW - timedelta(days=days) + timedelta(minutes=1))
    gone = forget_unconfirmed(sessions, settings, NOW)
    assert (gone.subscribers, gone.requests) == (1, 0)
    assert held(sessions, "old@example.org") == (None, 0)
    assert held(sessions, "fresh@example.org") == (SubscriberStatus.PENDING, 1)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(SubscriberEvent)) == 1
        assert not suppression.is_suppressed(session, "old@example.org")
    ask(sessions, settings, "old@example.org", NOW)
    assert held(sessions, "old@example.org") == (SubscriberStatus.PENDING, 1)


# A newer request keeps a pending subscriber: its link still works.
def test_a_newer_request_keeps_the_subscriber(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    ask(sessions, settings, "twice@example.org", NOW - timedelta(days=30))
    ask(sessions, settings, "twice@example.org", NOW - timedelta(days=1))
    gone = forget_unconfirmed(sessions, settings, NOW)
    assert (gone.subscribers, gone.requests) == (0, 1)  # the expired request alone
    assert held(sessions, "twice@example.org") == (SubscriberStatus.PENDING, 1)


# A subscriber who confirmed stays; only their later request that they never
# confirmed goes, and the consent that proves their opt-in is kept.
def test_a_confirmed_subscriber_loses_only_an_unconfirmed_request(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    first = ask(sessions, settings, "kept@example.org", NOW - timedelta(days=60))
    store.confirm(sessions, first, NOW - timedelta(days=60))
    ask(sessions, settings, "kept@example.org", NOW - timedelta(days=30))
    gone = forget_unconfirmed(sessions, settings, NOW)
    assert (gone.subscribers, gone.requests) == (0, 1)
    assert held(sessions, "kept@example.org") == (SubscriberStatus.ACTIVE, 1)
    with sessions() as session:
        kept = session.scalars(select(Consent)).one()
        assert kept.id == first and kept.confirmed_at is not None


# `publisher run` forgets them with its periodic job (and `--once`).
def test_the_scheduler_forgets_expired_requests(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    ask(sessions, settings, "late@example.org", NOW - timedelta(days=30))
    Service(settings, sessions, lambda: NOW).forget_expired_requests()
    assert held(sessions, "late@example.org") == (None, 0)
