"""The audience's store API, on SQLite and PostgreSQL: double opt-in, newsletters and
topics, unsubscribing, suppression, and the migration that brought them."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from publisher import db, queries
from publisher.audience import signup, subscribers as store, suppression
from publisher.audience.choices import Choice
from publisher.audience.consent import ConsentGiven, consents_of
from publisher.audience.recipients import Recipient, iter_recipients
from publisher.audience.tokens import Purpose, make_token, read_token
from publisher.config import DigestSettings, Settings
from publisher.db import transaction
from publisher.errors import BadToken, DatabaseError, NotFound, SubscriptionError
from publisher.models import ConsentMethod, SubscriberStatus, Tag

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FORM = ConsentGiven(
    ConsentMethod.FORM,
    "Yes, email me the newsletters I ticked.",
    NOW,
    page="https://news.example.org/subscribe",
    client_address="192.0.2.7",
)


@pytest.fixture
def two(settings: Settings) -> Settings:
    """The test config with a second newsletter, ``monthly``."""
    monthly = DigestSettings(name="monthly", schedule="0 9 1 * *")
    return settings.model_copy(update={"digests": (*settings.digests, monthly)})


@pytest.fixture
def tagged(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    with transaction(sessions) as session:
        session.add_all([Tag(slug="sdgs", name="SDGs"), Tag(slug="events", name="Events")])
    return sessions


def recipients(sessions: sessionmaker[Session], newsletter: str | None) -> list[Recipient]:
    return list(iter_recipients(sessions, batch=2, newsletter=newsletter))


def status(sessions: sessionmaker[Session], address: str) -> SubscriberStatus:
    with sessions() as session:
        found = queries.subscriber_by_email(session, address)
        assert found is not None
        return found.status


# A request makes nobody a recipient; only the click on the confirmation does, and
# then only of the newsletters chosen, with the topics chosen in each.
def test_double_opt_in(tagged: sessionmaker[Session], two: Settings) -> None:
    choices = [Choice("weekly", ("sdgs",)), Choice("monthly")]
    asked = signup.request_subscription(tagged, two, "Zoe@Example.org", "Zoë", choices, FORM, NOW)
    assert asked.previous is None
    assert status(tagged, "Zoe@example.org") is SubscriberStatus.PENDING
    assert recipients(tagged, "weekly") == []

    profile = store.confirm(tagged, asked.consent_id, NOW)
    assert profile.status is SubscriberStatus.ACTIVE
    assert recipients(tagged, "weekly") == [
        Recipient("Zoe@example.org", "Zoë", profile.id, ("SDGs",))
    ]
    assert recipients(tagged, "monthly") == [Recipient("Zoe@example.org", "Zoë", profile.id, ())]
    with pytest.raises(BadToken) as used:
        store.confirm(tagged, asked.consent_id, NOW)
    assert used.value.reason == "used"


# The form changes nothing about a known address until its owner clicks: a stranger
# cannot rename, resubscribe or re-topic someone by typing their address.
def test_request_for_a_known_address_changes_nothing_until_confirmed(
    tagged: sessionmaker[Session], two: Settings
) -> None:
    store.add_subscriber(tagged, two, "ann@example.org", "Ann", ["Events"], ["weekly"], NOW)
    with tagged() as session:
        ann = queries.subscriber_by_email(session, "ann@example.org")
        assert ann is not None
    store.unsubscribe(tagged, ann.id, detail="one-click")
    asked = signup.request_subscription(
        tagged, two, "ann@example.org", "Mallory", [Choice("monthly")], FORM, NOW
    )
    assert asked.previous is SubscriberStatus.UNSUBSCRIBED
    assert status(tagged, "ann@example.org") is SubscriberStatus.UNSUBSCRIBED
    profile = store.confirm(tagged, asked.consent_id, NOW + timedelta(minutes=5))
    assert profile.status is SubscriberStatus.ACTIVE and profile.name == "Ann"
    assert profile.choices == (Choice("monthly"),), "a resubscription is exactly what was asked"


# Until the click, the latest request is what a pending address will receive: a second
# request replaces the first one's newsletters and topics, and the click confirms it.
def test_a_pending_address_takes_its_latest_request(
    tagged: sessionmaker[Session], two: Settings
) -> None:
    first = [Choice("weekly", ("sdgs", "events")), Choice("monthly")]
    signup.request_subscription(tagged, two, "pat@example.org", "Pat", first, FORM, NOW)
    later = NOW + timedelta(minutes=1)
    asked = signup.request_subscription(
        tagged, two, "PAT@example.org", "Pat Q", [Choice("weekly", ("events",))], FORM, later
    )
    assert asked is not None and asked.previous is SubscriberStatus.PENDING
    assert asked.email == "pat@example.org", "the address as first stored"
    profile = store.confirm(tagged, asked.consent_id, later)
    assert profile.name == "Pat Q"
    assert profile.choices == (Choice("weekly", ("events",)),)


# Anyone may send the form for any address: a stranger's request for a pending
# address does not rename it; the name is the one of the request whose link is
# clicked, set as it is confirmed (here, the owner's own, which gave none).
def test_a_stranger_cannot_rename_a_pending_address(
    tagged: sessionmaker[Session], two: Settings
) -> None:
    own = signup.request_subscription(
        tagged, two, "zoe@example.org", None, [Choice("weekly")], FORM, NOW
    )
    assert own is not None
    later = NOW + timedelta(minutes=1)
    signup.request_subscription(
        tagged, two, "zoe@example.org", "Visit evil.example", [Choice("weekly")], FORM, later
    )
    with tagged() as session:
        pending = queries.subscriber_by_email(session, "zoe@example.org")
        assert pending is not None and pending.name is None
    profile = store.confirm(tagged, own.consent_id, later)
    assert profile.name is None
    # nor does a first request name the new pending subscriber: staff who activate
    # that address without a name do not take a stranger's text with it
    signup.request_subscription(
        tagged, two, "amy@example.org", "Visit evil", [Choice("weekly")], FORM, NOW
    )
    store.add_subscriber(tagged, two, "amy@example.org", None, now=NOW)
    with tagged() as session:
        amy = queries.subscriber_by_email(session, "amy@example.org")
        assert amy is not None and amy.name is None


# Two requests at once for one new address, in two cases of its local part (several
# server threads on PostgreSQL): each answers as usual, and the address is one
# subscriber (before, both inserted one and the mailbox got every digest twice, or one
# request failed on the unique key).
def test_requests_at_once_for_one_address_make_one_subscriber(
    tagged: sessionmaker[Session], two: Settings
) -> None:
    import threading

    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def ask(n: int) -> None:
        start.wait()
        try:
            address = "Race@example.org" if n % 2 else "race@example.org"
            signup.request_subscription(tagged, two, address, None, [Choice("weekly")], FORM, NOW)
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with tagged() as session:
        found = session.execute(
            text("SELECT count(*) FROM subscribers WHERE lower(email) = 'race@example.org'")
        ).scalar_one()
        assert found == 1
        consents = session.execute(text("SELECT count(*) FROM consents")).scalar_one()
        assert consents == 8


# The per-address limit is counted in the store: past it, a request records nothing.
def test_requests_past_the_limit_record_nothing(
    tagged: sessionmaker[Session], two: Settings
) -> None:
    limit = (2, NOW - timedelta(hours=1))
    choice = [Choice("weekly")]
    answers = [
        signup.request_subscription(tagged, two, "lee@example.org", None, choice, FORM, NOW, limit)
        for _ in range(4)
    ]
    assert [a is not None for a in answers] == [True, True, False, False]
    with tagged() as session:
        lee = queries.subscriber_by_email(session, "lee@example.org")
        assert lee is not None
        assert len(consents_of(session, lee.id)) == 2


# Staff cannot bring back someone who left; the suppression list outlives the person.
def test_staff_add_never_reactivates(tagged: sessionmaker[Session], two: Settings) -> None:
    store.add_subscriber(tagged, two, "bo@example.org", now=NOW)
    with tagged() as session:
        bo = queries.subscriber_by_email(session, "bo@example.org")
        assert bo is not None
    store.unsubscribe(tagged, bo.id)
    with pytest.raises(SubscriptionError, match="reactivate"):
        store.add_subscriber(tagged, two, "bo@example.org", now=NOW)
    with transaction(tagged) as session:
        suppression.suppress(session, "gone@example.org", "erased", NOW)
    with pytest.raises(SubscriptionError, match="erased"):
        store.add_subscriber(tagged, two, "GONE@example.org", now=NOW)


def test_preferences_and_unsubscribing_one_newsletter(
    tagged: sessionmaker[Session], two: Settings
) -> None:
    store.add_subscriber(tagged, two, "cy@example.org", now=NOW)
    with tagged() as session:
        cy = queries.subscriber_by_email(session, "cy@example.org")
        assert cy is not None
    profile = store.set_preferences(tagged, two, cy.id, [Choice("weekly", ("events",))], NOW)
    assert profile.choices == (Choice("weekly", ("events",)),)
    assert [r.topics for r in recipients(tagged, "weekly")] == [("Events",)]
    assert recipients(tagged, "monthly") == []
    with pytest.raises(NotFound, match="the newsletters are: weekly, monthly"):
        store.set_preferences(tagged, two, cy.id, [Choice("daily")], NOW)

    store.unsubscribe(tagged, cy.id, "weekly")
    assert status(tagged, "cy@example.org") is SubscriberStatus.UNSUBSCRIBED, "left the last one"
    with pytest.raises(SubscriptionError):
        store.set_preferences(tagged, two, cy.id, [Choice("weekly")], NOW)


# A suppressed address gets nothing, whatever its status says.
def test_suppressed_addresses_are_not_recipients(
    tagged: sessionmaker[Session], two: Settings
) -> None:
    for n in range(5):
        store.add_subscriber(tagged, two, f"r{n}@example.org", now=NOW)
    with transaction(tagged) as session:
        suppression.suppress(session, "r3@example.org", "staff", NOW)
    assert [r.email for r in recipients(tagged, "weekly")] == [
        "r0@example.org",
        "r1@example.org",
        "r2@example.org",
        "r4@example.org",
    ]


def test_tokens_say_why_they_are_refused(tagged: sessionmaker[Session], two: Settings) -> None:
    token = make_token("k", Purpose.UNSUBSCRIBE, "7")
    assert read_token("k", Purpose.UNSUBSCRIBE, token) == "7"
    for bad, reason in [
        (make_token("k", Purpose.PREFERENCES, "7"), "purpose"),
        (token[:-3], "invalid"),
        (make_token("other key", Purpose.UNSUBSCRIBE, "7"), "invalid"),
    ]:
        with pytest.raises(BadToken) as refused:
            read_token("k", Purpose.UNSUBSCRIBE, bad)
        assert refused.value.reason == reason
    # only confirmation links expire; unsubscribe links work as long as the subscription
    assert read_token("k", Purpose.UNSUBSCRIBE, token, max_age=-1) == "7"
    confirm = make_token("k", Purpose.CONFIRM, "9")
    with pytest.raises(BadToken) as refused:
        read_token("k", Purpose.CONFIRM, confirm, max_age=-1)
    assert refused.value.reason == "expired"


# Schema 0005 keeps every subscriber of schema 0004 on every newsletter, with their topics,
# and the way back down keeps who may be mailed and what they follow.
def test_migration_keeps_todays_subscribers(engine: Engine) -> None:
    db.downgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tags (id, slug, name) VALUES (1, 'sdgs', 'SDGs')"))
        for sid, status_ in [(1, "active"), (2, "unsubscribed")]:
            conn.execute(
                text(
                    "INSERT INTO subscribers (id, email, name, status, created_at) "
                    "VALUES (:id, :email, NULL, :status, :at)"
                ),
                {"id": sid, "email": f"s{sid}@example.org", "status": status_, "at": NOW},
            )
        conn.execute(text("INSERT INTO subscriber_tags (subscriber_id, tag_id) VALUES (1, 1)"))
    db.upgrade(engine, newsletters=["weekly", "monthly"])
    factory = db.make_sessionmaker(engine)
    for newsletter in ("weekly", "monthly"):
        assert recipients(factory, newsletter) == [Recipient("s1@example.org", None, 1, ("SDGs",))]
    with engine.connect() as conn:
        consents = conn.execute(text("SELECT subscriber_id, method FROM consents")).all()
    assert sorted(consents) == [(1, "staff"), (2, "staff")]

    db.downgrade(engine, "0004")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT subscriber_id, tag_id FROM subscriber_tags")).all() == [
            (1, 1)
        ]
    db.upgrade(engine, newsletters=["weekly"])


def test_migration_refuses_to_guess_newsletters(engine: Engine) -> None:
    db.downgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscribers (email, status, created_at) "
                "VALUES ('a@example.org', 'active', :at)"
            ),
            {"at": NOW},
        )
    with pytest.raises(DatabaseError, match="no newsletter is known"):
        db.upgrade(engine)


# `subscribers list` walks the list a batch at a time: every subscriber comes once, in
# id order, with their newsletters and topics, and the filters are applied in SQL.
def test_subscribers_are_streamed_in_batches(tagged: sessionmaker[Session], two: Settings) -> None:
    for n in range(7):
        newsletters = ["weekly"] if n % 2 else ["weekly", "monthly"]
        store.add_subscriber(tagged, two, f"s{n}@example.org", None, ["sdgs"], newsletters, NOW)
    with tagged() as session:
        s3 = queries.subscriber_by_email(session, "s3@example.org")
        assert s3 is not None
    store.unsubscribe(tagged, s3.id)
    with tagged() as session:
        every = list(queries.iter_subscribers(session, batch=2))
        assert [s.email for s in every] == [f"s{n}@example.org" for n in range(7)]
        assert [t.slug for t in every[0].subscriptions[0].topics] == ["sdgs"]
        active = queries.iter_subscribers(session, SubscriberStatus.ACTIVE, batch=2)
        assert "s3@example.org" not in [s.email for s in active]
        monthly = queries.iter_subscribers(session, newsletter="monthly", batch=2)
        assert [s.email for s in monthly] == [
            "s0@example.org",
            "s2@example.org",
            "s4@example.org",
            "s6@example.org",
        ]


# No address enumeration by timing: the form's store call does the same kind of work
# whoever the address belongs to, so its time says nothing about who is subscribed.
# (Medians of interleaved calls; a factor of three leaves room for a busy machine, and
# the gaps measured are a fraction of a millisecond on SQLite, about 2 ms on PostgreSQL,
# where each statement is a round trip. A synchronous email for one kind of address
# would be ten times the rest.)
def test_a_request_takes_as_long_for_any_address(
    tagged: sessionmaker[Session], two: Settings
) -> None:
    store.add_subscriber(tagged, two, "active@example.org", now=NOW)
    store.add_subscriber(tagged, two, "gone@example.org", now=NOW)
    with tagged() as session:
        gone = queries.subscriber_by_email(session, "gone@example.org")
        assert gone is not None
    store.unsubscribe(tagged, gone.id)
    choices = [Choice("weekly", ("sdgs",)), Choice("monthly")]
    times: dict[str, list[float]] = {"new": [], "pending": [], "active": [], "gone": []}
    for n in range(40):
        for kind, address in [
            ("new", f"new.{n}@example.org"),
            ("pending", f"new.{n}@example.org"),
            ("active", "active@example.org"),
            ("gone", "gone@example.org"),
        ]:
            started = time.perf_counter()
            signup.request_subscription(tagged, two, address, None, choices, FORM, NOW)
            times[kind].append(time.perf_counter() - started)
    medians = {kind: statistics.median(seconds) for kind, seconds in times.items()}
    assert max(medians.values()) < 3 * min(medians.values()), medians
