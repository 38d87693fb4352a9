"""Sending the digest to every subscriber through a real SMTP server (aiosmtpd).

The send invariant: a delivery row is never handed to SMTP while the database
says ``pending``, and never marked ``sent`` before the server answered; a
transport failure never fails a subscriber; every delivery ends recorded.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from publisher.audience.subscribers import add_subscriber, unsubscribe
from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.errors import EmptyDigest
from publisher.mail.runs import claim_run
from publisher.mail.send import send_digest
from publisher.models import Delivery, DeliveryStatus, DigestRun, Subscriber, Subscription
from publisher.queries import subscriber_by_email
from tests.integration.smtp_recorder import Recorder, RecordingServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]

NOW = datetime(2019, 12, 6, 9, 0, tzinfo=UTC)  # the Friday after the three posts of 5 December
READERS = [f"reader{n}@example.org" for n in range(5)]


class FakeClock:
    """Time that moves only when the sender waits: no test sleeps for real."""

    def __init__(self, start: datetime) -> None:
        self.time = start
        self.waited = timedelta()

    def now(self) -> datetime:
        return self.time

    def wait(self, seconds: float, stop: threading.Event) -> None:
        step = timedelta(seconds=max(seconds, 0.001))
        self.time += step
        self.waited += step


def with_smtp(settings: Settings, port: int, **smtp: Any) -> Settings:
    changed = settings.email.smtp.model_copy(
        update={"host": "127.0.0.1", "port": port, "security": "none", **smtp}
    )
    return settings.model_copy(
        update={"email": settings.email.model_copy(update={"smtp": changed})}
    )


def with_limit(settings: Settings, max_send_errors: int) -> Settings:
    """``settings`` pausing a send after ``max_send_errors`` refusals in a row."""
    email = settings.email.model_copy(update={"max_send_errors": max_send_errors})
    return settings.model_copy(update={"email": email})


@pytest.fixture
def subscribed(
    sessions: sessionmaker[Session],
    settings: Settings,
    sample_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "test-secret")
    import_target(sessions, str(sample_dir), settings, NOW)
    for address in READERS:
        add_subscriber(sessions, settings, address, address.split("@")[0].title(), now=NOW)
    add_subscriber(sessions, settings, "sdgs@example.org", "SDG fan", ["SDGs"], now=NOW)
    add_subscriber(sessions, settings, "chain@example.org", None, ["Blockchain"], now=NOW)
    add_subscriber(sessions, settings, "gone@example.org", None, [], now=NOW)
    with sessions() as session:
        gone = subscriber_by_email(session, "gone@example.org")
        assert gone is not None
    unsubscribe(sessions, gone.id)
    return settings


@pytest.fixture
def server() -> Iterator[Recorder]:
    with RecordingServer(Recorder()) as recorder:
        yield recorder


def add_readers(sessions: sessionmaker[Session], count: int) -> None:
    """``count`` more active subscribers of the weekly digest, in bulk."""
    readers = [f"bulk{n:03d}@example.org" for n in range(count)]
    with sessions.begin() as session:
        session.execute(
            insert(Subscriber),
            [{"email": a, "status": "active", "created_at": NOW} for a in readers],
        )
        ids = session.scalars(select(Subscriber.id).where(Subscriber.email.in_(readers)))
        session.execute(
            insert(Subscription),
            [{"subscriber_id": i, "newsletter": "weekly", "created_at": NOW} for i in ids],
        )


def statuses(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions() as session:
        rows = session.execute(
            select(Delivery.subscriber_id, Delivery.status, Delivery.error)
        ).all()
        emails = {s.id: s.email for s in subscriber_rows(session)}
    return {emails[r.subscriber_id]: r.status.value for r in rows}


def subscriber_rows(session: Session) -> list[Any]:
    from publisher.models import Subscriber

    return list(session.scalars(select(Subscriber)))


# Everyone active gets their own edition once; an unsubscribed reader nothing; a
# reader whose topics have no post this week is skipped; the next send has nothing new.
def test_everyone_active_gets_their_edition_once(
    subscribed: Settings, sessions: sessionmaker[Session], server: Recorder
) -> None:
    settings = with_smtp(subscribed, server.port)
    (report,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
    assert report.finished and report.created
    assert (report.sent, report.skipped, report.failed) == (6, 1, 0)
    got = server.by_recipient()
    assert sorted(got) == sorted([*READERS, "sdgs@example.org"])
    assert all(len(m) == 1 for m in got.values())
    fan = email.message_from_bytes(got["sdgs@example.org"][0].data, policy=email.policy.default)
    text = fan.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Leave No One Behind news round-up" in text
    assert "Innovation Report, get involved!" not in text
    assert report.period_start == datetime(2019, 12, 2, 8, 0, tzinfo=UTC)
    assert statuses(sessions)["chain@example.org"] == "skipped"
    with pytest.raises(EmptyDigest):
        send_digest(sessions, settings, NOW.replace(hour=10))


# One send finishes the run, however the connections take their groups; and after
# every commit of the send, no more rows are `sending` than the connections hold
# (connections × batch): the bound on what a crash leaves uncertain.
@pytest.mark.parametrize(("connections", "batch"), [(1, 2), (3, 5), (2, 25)])
def test_one_send_finishes_and_holds_the_bound(
    subscribed: Settings, sessions: sessionmaker[Session], connections: int, batch: int
) -> None:
    add_readers(sessions, 150)
    most = [0]

    def count_sending(report: object) -> None:
        with sessions() as session:
            sending = session.scalar(
                select(func.count()).where(Delivery.status == DeliveryStatus.SENDING)
            )
        most[0] = max(most[0], sending or 0)

    recorder = Recorder()
    with RecordingServer(recorder):
        settings = with_smtp(subscribed, recorder.port, connections=connections, batch=batch)
        (report,) = send_digest(
            sessions, settings, NOW, clock=FakeClock(NOW), progress=count_sending
        )
    assert report.finished and report.sent == 156 and report.stopped is None
    got = recorder.by_recipient()
    assert len(got) == 156 and all(len(m) == 1 for m in got.values())
    assert 0 < most[0] <= connections * batch


# The send invariant, seen from the mail server: when a recipient reaches it, the
# database already says `sending` for their delivery (never `pending`, never `sent`),
# however the turns of the loop overlap (the messages of one group are made while the
# next is claimed). Many small groups on two connections, so that turns interleave.
def test_the_server_sees_only_sending_rows(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    add_readers(sessions, 120)
    seen: dict[str, DeliveryStatus] = {}

    def check(step: str, address: str, times: int) -> None:
        if step == "RCPT":
            with sessions() as session:
                seen[address] = session.execute(
                    select(Delivery.status)
                    .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                    .where(Subscriber.email == address)
                ).scalar_one()

    recorder = Recorder(script=check)
    with RecordingServer(recorder):
        settings = with_smtp(subscribed, recorder.port, connections=2, batch=4)
        (report,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
    assert report.finished and report.sent == 126
    assert len(seen) == 126
    assert set(seen.values()) == {DeliveryStatus.SENDING}


# A run is claimed once per digest and period: a second claim joins it, and it holds
# one pending delivery per active subscriber from the start.
def test_a_second_claim_joins_the_run(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    first = claim_run(sessions, subscribed, None, NOW)
    second = claim_run(sessions, subscribed, None, NOW + timedelta(minutes=5))
    assert first.created and not second.created and first.run_id == second.run_id
    assert set(statuses(sessions).values()) == {"pending"}
    assert len(statuses(sessions)) == 7  # active subscribers only
    assert len(first.post_ids) == 3


# A refused login is the server's trouble, not the subscribers': the run stays open,
# nobody is failed, and the send after the fix reaches everyone once.
def test_login_refused_leaves_the_run_open(
    subscribed: Settings, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", "wrong")
    recorder = Recorder(refuse_login=True)
    with RecordingServer(recorder, auth=True):
        settings = with_smtp(subscribed, recorder.port, username="news")
        (report,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
        assert report.stopped and "login refused for news" in report.stopped
        assert "fix email.smtp.username" in report.stopped
        assert not report.finished and report.failed == 0
        assert set(statuses(sessions).values()) == {"pending", "skipped"}
        recorder.refuse_login = False
        (again,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
    assert again.finished and not again.created and again.sent == 6
    assert all(len(m) == 1 for m in recorder.by_recipient().values())


# A server that is down (nothing listens) stops the send before anyone is charged,
# the run open; the message asks whether the server is up before blaming the config.
def test_a_server_that_is_down_leaves_the_run_open(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    import socket

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    (report,) = send_digest(sessions, with_smtp(subscribed, port), NOW, clock=FakeClock(NOW))
    assert report.stopped and "cannot connect" in report.stopped
    assert "is the server up? If so, check email.smtp" in report.stopped
    assert not report.finished and report.failed == 0
    assert set(statuses(sessions).values()) == {"pending", "skipped"}


# A login that cannot be made says why, before anyone is charged: the password's
# environment variable unset, or a server that offers no login at all (no AUTH: the
# message was "login refused … (250 2.0.0 Ok)").
def test_a_login_that_cannot_be_made_says_why(
    subscribed: Settings, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    with RecordingServer(recorder):  # offers no AUTH
        settings = with_smtp(subscribed, recorder.port, username="news")
        monkeypatch.delenv("PUBLISHER_SMTP_PASSWORD", raising=False)
        (unset,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
        assert unset.stopped and "PUBLISHER_SMTP_PASSWORD" in unset.stopped
        assert "is not set" in unset.stopped
        monkeypatch.setenv("PUBLISHER_SMTP_PASSWORD", "secret")
        (no_auth,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
        assert no_auth.stopped and "offers no login" in no_auth.stopped
        assert "email.smtp.security" in no_auth.stopped
    assert recorder.count() == 0
    assert set(statuses(sessions).values()) == {"pending", "skipped"}


# A 421 and a dropped connection are the server's: the message goes again on a new
# connection, and the next subscriber is not charged with it.
@pytest.mark.parametrize("pipelining", [True, False])
def test_421_and_a_dropped_connection_are_retried(
    subscribed: Settings, sessions: sessionmaker[Session], pipelining: bool
) -> None:
    def script(step: str, address: str, n: int) -> str | None:
        if step == "DATA" and address == "reader1@example.org" and n == 1:
            return "421 4.3.2 shutting down"
        if step == "RCPT" and address == "reader3@example.org" and n == 1:
            return "drop"
        return None

    recorder = Recorder(script=script, pipelining=pipelining)
    with RecordingServer(recorder):
        settings = with_smtp(subscribed, recorder.port, connections=1)
        (report,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
    assert report.finished and report.sent == 6 and report.failed == report.deferred == 0
    assert all(len(m) == 1 for m in recorder.by_recipient().values())
    assert set(statuses(sessions).values()) == {"sent", "skipped"}


# A server that allows N messages per connection: the sender reconnects before the
# cap (and a 421 at the cap is retried, not charged to anyone).
@pytest.mark.parametrize("client_cap", [2, 100])
def test_a_per_connection_cap(
    subscribed: Settings, sessions: sessionmaker[Session], client_cap: int
) -> None:
    recorder = Recorder(cap=2)
    with RecordingServer(recorder):
        settings = with_smtp(
            subscribed, recorder.port, connections=1, max_messages_per_connection=client_cap
        )
        (report,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
    assert report.finished and report.sent == 6 and report.failed == 0
    assert all(len(m) == 1 for m in recorder.by_recipient().values())


# A 4xx then a success: delivered once, after a backoff that cost no real time.
def test_a_4xx_then_success_is_delivered_once(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    def script(step: str, address: str, n: int) -> str | None:
        if step == "RCPT" and address == "reader2@example.org" and n <= 2:
            return "451 4.7.1 greylisted, try later"
        return None

    recorder = Recorder(script=script)
    clock = FakeClock(NOW)
    waits: list[datetime] = []  # what the progress said while the send waited (the CLI shows it)

    def progress(report: Any) -> None:
        if report.waiting_until is not None:
            waits.append(report.waiting_until)

    with RecordingServer(recorder):
        settings = with_smtp(subscribed, recorder.port)
        (report,) = send_digest(sessions, settings, NOW, clock=clock, progress=progress)
    assert report.finished and report.sent == 6 and report.deferred == 2
    assert len(recorder.by_recipient()["reader2@example.org"]) == 1
    assert timedelta(minutes=3) <= clock.waited < timedelta(minutes=10)
    assert len(waits) == 2 and all(NOW < when <= NOW + clock.waited for when in waits)
    assert report.waiting_until is None


# An address put on the suppression list while its delivery waits for a retry gets
# nothing when the retry falls due (a claim from the start of the run, at its end).
def test_suppressed_before_the_retry_is_skipped(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    from publisher.audience import suppression

    def script(step: str, address: str, n: int) -> str | None:
        if step == "RCPT" and address == "reader2@example.org":
            if n == 1:
                with sessions.begin() as session:
                    suppression.suppress(session, address, "complaint", NOW)
            return "451 4.7.1 greylisted, try later"
        return None

    recorder = Recorder(script=script)
    with RecordingServer(recorder):
        settings = with_smtp(subscribed, recorder.port)
        (report,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
    assert report.finished and report.sent == 5 and report.deferred == 1
    assert "reader2@example.org" not in recorder.by_recipient()
    assert recorder.seen[("RCPT", "reader2@example.org")] == 1
    assert statuses(sessions)["reader2@example.org"] == "skipped"


# An address that always answers 451 is given up after email.retry_hours (a controlled
# clock), the run finishes, and the next period's digest goes out.
def test_always_451_is_given_up_and_the_next_period_goes_out(
    subscribed: Settings, sessions: sessionmaker[Session], sample_dir: Path
) -> None:
    def script(step: str, address: str, n: int) -> str | None:
        return "451 4.4.1 mailbox busy" if address == "reader4@example.org" else None

    recorder = Recorder(script=script)
    clock = FakeClock(NOW)
    with RecordingServer(recorder):
        settings = with_smtp(subscribed, recorder.port)
        (report,) = send_digest(sessions, settings, NOW, clock=clock)
        assert report.finished and report.sent == 5 and report.failed == 1
        assert timedelta(hours=4) <= clock.waited < timedelta(hours=5)
        with sessions() as session:
            (failed,) = session.scalars(select(Delivery).where(Delivery.error.like("gave up%")))
            assert "451 4.4.1 mailbox busy" in (failed.error or "") and failed.attempts > 3
        # the next week: a new post, a new run, everyone (reader4 too) gets it
        later = NOW + timedelta(days=7)
        recorder.script = None
        _publish_one_post(sessions, settings, NOW + timedelta(days=3))
        (next_week,) = send_digest(sessions, settings, later, clock=FakeClock(later))
    assert next_week.created and next_week.finished and next_week.sent == 5  # all but topics
    assert len(recorder.by_recipient()["reader4@example.org"]) == 1
    with sessions() as session:
        assert len(session.scalars(select(DigestRun)).all()) == 2


def _publish_one_post(sessions: sessionmaker[Session], settings: Settings, when: datetime) -> None:
    from publisher.content.values import PostStatus
    from publisher.models import Post

    with sessions.begin() as session:
        session.add(
            Post(
                uid="tag:news.example.org,2019:next-week",
                slug="next-week",
                title="Next week",
                body_source="News.",
                body_html="<p>News.</p>",
                status=PostStatus.PUBLISHED,
                published_at=when,
                updated_at=when,
            )
        )


# A server that refuses everyone (a relay that does not know us answers "550 5.1.1
# user unknown" to each address) is the server's fault, not the subscribers': the send
# stops after email.max_send_errors refusals in a row, the refused deliveries (those
# in flight after the limit too) are kept to send again rather than failed, nobody is
# suppressed, and once the server is fixed the next send delivers to everyone once.
def test_a_server_refusing_everyone_fails_and_suppresses_nobody(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    add_readers(sessions, 60)
    refusing = True

    def script(step: str, address: str, n: int) -> str | None:
        return "550 5.1.1 user unknown in local recipient table" if refusing else None

    recorder = Recorder(script=script)
    with RecordingServer(recorder):
        settings = with_limit(with_smtp(subscribed, recorder.port, connections=2, batch=4), 5)
        (report,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
        assert report.stopped and "may be refusing everyone" in report.stopped
        assert report.failed == 0 and report.reopened >= 5
        assert set(statuses(sessions).values()) <= {"pending", "skipped"}  # skipped: no post
        with sessions() as session:
            bounced = session.scalar(select(func.count()).where(Subscriber.status == "bounced"))
        assert bounced == 0
        refusing = False
        (again,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
    assert again.finished and again.failed == 0
    got = recorder.by_recipient()
    assert len(got) == 66 and all(len(m) == 1 for m in got.values())


# A refusal stands once the server has accepted a message after it: refusals answered
# before an acceptance still in flight when the limit stopped the send are failed
# (and a missing mailbox suppressed), not kept, and nothing is doubled.
def test_refusals_before_an_acceptance_stand(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    add_readers(sessions, 20)
    bad = {f"reader{n}@example.org" for n in range(4)}

    def script(step: str, address: str, n: int) -> str | None:
        return "550 5.1.1 user unknown" if address in bad else None

    recorder = Recorder(script=script)
    with RecordingServer(recorder):
        settings = with_limit(with_smtp(subscribed, recorder.port, connections=2, batch=8), 3)
        reports = []
        while not (reports and reports[-1].finished):
            (report,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
            reports.append(report)
            assert len(reports) < 10
    got = statuses(sessions)
    assert sorted(a for a, s in got.items() if s == "failed") == sorted(bad)
    with sessions() as session:
        bounced = {
            s.email
            for s in session.scalars(select(Subscriber).where(Subscriber.status == "bounced"))
        }
    assert bounced == bad
    assert all(len(m) == 1 for m in recorder.by_recipient().values())


# Two senders on PostgreSQL, one given a server that refuses everyone: its refusals are
# held `sending` until it stops, so the other sender, going on meanwhile, cannot finish
# the run over them; once it has stopped they are `pending` again, and the next send
# delivers them. Every reader gets the digest once, and nobody is failed.
def test_a_refusing_sender_s_rows_are_sent_by_the_next_one(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    from publisher.mail.send import send_run

    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("several senders share a run on PostgreSQL")
    add_readers(sessions, 10)
    refusing = Recorder(script=lambda step, address, n: "550 5.1.1 user unknown")
    accepting = Recorder()
    with RecordingServer(refusing), RecordingServer(accepting):
        a, b = (
            with_limit(with_smtp(subscribed, r.port, connections=1, batch=2), 3)
            for r in (refusing, accepting)
        )
        claim = claim_run(sessions, a, None, NOW)
        others: list[Any] = []

        def meanwhile(report: Any) -> None:
            if report.stopped and not others:  # A has stopped claiming: B goes on
                others.append(send_digest(sessions, b, NOW, clock=FakeClock(NOW)))

        first = send_run(sessions, a, claim, clock=FakeClock(NOW), progress=meanwhile)
        assert first.stopped and first.failed == 0 and first.reopened >= 3
        ((during,),) = others
        assert not during.finished, "B finished the run over A's held refusals"
        (last,) = send_digest(sessions, b, NOW, clock=FakeClock(NOW))
    assert last.finished
    assert "failed" not in statuses(sessions).values()
    got = accepting.by_recipient()
    assert len(got) == 16 and all(len(m) == 1 for m in got.values())


# Refusals at the very end of a send, with no acceptance after them to show that the
# server takes mail, still count once the send ends on its own: a "no such mailbox"
# there suppresses as anywhere.
def test_a_refusal_at_the_end_of_a_send_still_suppresses(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    add_readers(sessions, 3)

    def script(step: str, address: str, n: int) -> str | None:
        return "550 5.1.1 no such user here" if address == "bulk002@example.org" else None

    recorder = Recorder(script=script)
    with RecordingServer(recorder):
        settings = with_smtp(subscribed, recorder.port, connections=1, batch=2)
        (report,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
    assert report.finished and report.failed == 1
    assert statuses(sessions)["bulk002@example.org"] == "failed"
    with sessions() as session:
        bounced = [
            s.email
            for s in session.scalars(select(Subscriber).where(Subscriber.status == "bounced"))
        ]
    assert bounced == ["bulk002@example.org"]


# A 5xx is recorded with the server's reply; a "no such mailbox" reply also keeps
# that address out of later runs.
def test_5xx_is_recorded_and_suppresses(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    def script(step: str, address: str, n: int) -> str | None:
        if address == "reader0@example.org":
            return "550 5.1.1 no such user here"
        if address == "reader1@example.org":
            return "554 5.7.1 message refused as spam"
        return None

    recorder = Recorder(script=script)
    with RecordingServer(recorder):
        (report,) = send_digest(
            sessions, with_smtp(subscribed, recorder.port), NOW, clock=FakeClock(NOW)
        )
    assert report.finished and report.failed == 2 and report.sent == 4
    with sessions() as session:
        errors = {
            e for e in session.scalars(select(Delivery.error).where(Delivery.error.is_not(None)))
        }
        assert "550 5.1.1 no such user here" in errors
        assert "554 5.7.1 message refused as spam" in errors
        bounced = [
            s.email
            for s in session.scalars(select(Subscriber).where(Subscriber.status == "bounced"))
        ]
    assert bounced == ["reader0@example.org"], "only the mailbox reply suppresses"
    _publish_one_post(sessions, subscribed, NOW + timedelta(days=3))
    claim = claim_run(sessions, subscribed, None, NOW + timedelta(days=7))
    with sessions() as session:
        rows = session.scalars(select(Delivery).where(Delivery.run_id == claim.run_id)).all()
    assert len(rows) == 6, "the bounced address has no delivery in the next run"


# An address the encoder cannot write (a non-ASCII local part) fails that one delivery,
# with the reason, and the send goes on.
def test_a_non_ascii_local_part_fails_one_delivery(
    subscribed: Settings, sessions: sessionmaker[Session], server: Recorder
) -> None:
    from publisher.models import Subscriber, Subscription

    # stored before the address check refused such addresses (or written by hand)
    with sessions.begin() as session:
        zoe = Subscriber(email="zoë@example.org", name="Zoë", created_at=NOW)
        session.add(zoe)
        session.flush()
        session.add(Subscription(subscriber_id=zoe.id, newsletter="weekly", created_at=NOW))
    (report,) = send_digest(sessions, with_smtp(subscribed, server.port), NOW, clock=FakeClock(NOW))
    assert report.finished and report.sent == 6 and report.failed == 1
    with sessions() as session:
        (failed,) = session.scalars(select(Delivery).where(Delivery.status == "failed"))
    assert failed.error and "not ASCII" in failed.error and "SMTPUTF8" in failed.error
    assert "zoë@example.org" not in server.by_recipient()


# The dry run writes nothing and says who would get which edition; the status shows a
# run's counts, its uncertain deliveries and its last errors.
def test_dry_run_and_status(
    subscribed: Settings, sessions: sessionmaker[Session], server: Recorder
) -> None:
    from publisher.mail.plan import plan_send
    from publisher.mail.runs import run_statuses
    from publisher.models import DeliveryStatus

    what, plan = plan_send(sessions, subscribed, NOW)
    assert what.startswith("Would create a new run of 'weekly'") and "(3 posts)" in what
    assert {(e.topics, e.subscribers, e.posts) for e in plan} == {
        ((), 5, 3),
        (("SDGs",), 1, 1),
        (("Blockchain",), 1, 0),
    }
    with sessions() as session:
        assert session.scalars(select(DigestRun)).all() == [], "a dry run writes nothing"
    claim = claim_run(sessions, subscribed, None, NOW)
    with sessions.begin() as session:  # as a crashed sender leaves it
        row = session.scalars(select(Delivery).where(Delivery.run_id == claim.run_id)).first()
        assert row is not None
        row.status = DeliveryStatus.SENDING
        row.message_id = "<digest.weekly.x@news.example.org>"
    (status,) = run_statuses(sessions, "weekly", None)
    assert status.finished_at is None and status.counts == {"pending": 6, "sending": 1}
    assert [u.message_id for u in status.uncertain] == ["<digest.weekly.x@news.example.org>"]


# A run's editions are rendered once and stored with it: a message resent after a
# crash is byte for byte the first (same MIME boundary, same Date, same links), even
# when a post was edited in between; the sender that resumes renders nothing.
def test_a_resend_is_the_first_message_byte_for_byte(
    subscribed: Settings, sessions: sessionmaker[Session], server: Recorder
) -> None:
    from publisher.mail.send import send_run
    from publisher.models import Post, RunEdition

    settings = with_smtp(subscribed, server.port, connections=1, batch=2)
    claim = claim_run(sessions, settings, None, NOW)
    stop = threading.Event()

    def stop_after_three(report: object) -> None:
        if server.count() >= 3:
            stop.set()

    first = send_run(
        sessions, settings, claim, clock=FakeClock(NOW), stop=stop, progress=stop_after_three
    )
    assert first.stopped and not first.finished
    sent_before = {r.recipient: r.data for r in server.received}
    with sessions.begin() as session:  # a post edited, and a sender that died mid-message
        for post in session.scalars(select(Post)):
            post.title = "Edited after the run began"
        some = session.scalars(
            select(Delivery).where(Delivery.status == DeliveryStatus.SENT)
        ).first()
        assert some is not None
        some.status = DeliveryStatus.SENDING
        resent_to = session.get(Subscriber, some.subscriber_id)
        assert resent_to is not None
        address = resent_to.email
    with sessions() as session:
        stored = session.scalar(select(func.count()).select_from(RunEdition))
    again = send_run(sessions, settings, claim, clock=FakeClock(NOW), alone=True)
    assert again.finished and again.retaken == 1
    copies = server.by_recipient()[address]
    assert len(copies) == 2 and copies[0].data == copies[1].data == sent_before[address]
    assert not any(b"Edited after the run began" in r.data for r in server.received)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(RunEdition)) >= stored


# PostgreSQL's usual turn is one statement: the accepted deliveries marked `sent` and
# the next ones claimed together; it also says whether anyone is suppressed at all.
def test_sent_and_claimed_in_one_statement(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    from publisher.audience import suppression
    from publisher.queries import record_sent_and_claim

    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's statement")
    claim = claim_run(sessions, subscribed, None, NOW)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as fast:
        first, anyone = record_sent_and_claim(fast, claim.run_id, claim.name, NOW, 3, 0, None, [])
        assert len(first) == 3 and not anyone
        later = NOW + timedelta(minutes=1)
        ids = [r.id for r in first]
        with sessions.begin() as session:
            suppression.suppress(session, "someone@example.org", "complaint", NOW)
        second, anyone = record_sent_and_claim(
            fast, claim.run_id, claim.name, NOW, 3, ids[-1], later, ids
        )
        assert len(second) == 3 and anyone
        assert min(r.id for r in second) > ids[-1]
    with sessions() as session:
        rows = {d.id: d for d in session.scalars(select(Delivery))}
    assert all(rows[i].status == DeliveryStatus.SENT and rows[i].at == later for i in ids)
    assert all(rows[r.id].status == DeliveryStatus.SENDING for r in second)


# A turn whose statement fails loses no answer: the deliveries the server accepted
# before it are recorded `sent` when the send ends on the error, so the next send
# does not mail them again.
def test_a_failed_turn_keeps_the_answers(
    subscribed: Settings,
    sessions: sessionmaker[Session],
    server: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from publisher import queries

    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("PostgreSQL's one-statement turn")
    real = queries.record_sent_and_claim
    calls = [0]

    def fail_the_third(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(queries, "record_sent_and_claim", fail_the_third)
    settings = with_smtp(subscribed, server.port, connections=1, batch=2)
    with pytest.raises(RuntimeError):
        send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
    delivered = set(server.by_recipient())
    assert delivered
    got = statuses(sessions)
    assert all(got[address] == "sent" for address in delivered)
    monkeypatch.setattr(queries, "record_sent_and_claim", real)
    (report,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
    assert report.finished
    assert all(len(m) == 1 for m in server.by_recipient().values())
    assert sorted(server.by_recipient()) == sorted([*READERS, "sdgs@example.org"])


def _children() -> list[int]:
    """This process's child processes (Linux)."""
    found = []
    for task in Path("/proc/self/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


# The process that makes the messages dies mid-send: the send stops with an error
# that says so, nothing is left `sending` (the deliveries it was making a message for
# go back to `pending`, the connections' answers are recorded), and the next send
# finishes with no duplicate.
def test_a_dead_renderer_leaves_nothing_uncertain(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    import os
    import signal
    import sys

    from publisher.errors import PublisherError

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    add_readers(sessions, 60)
    before = set(_children())
    killed: list[int] = []

    def kill_the_renderer(report: Any) -> None:
        if report.sent >= 10 and not killed:
            for pid in set(_children()) - before:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    recorder = Recorder()
    with RecordingServer(recorder):
        settings = with_smtp(subscribed, recorder.port, connections=2, batch=4)
        with pytest.raises(PublisherError, match="makes the messages stopped"):
            send_digest(sessions, settings, NOW, clock=FakeClock(NOW), progress=kill_the_renderer)
        assert killed
        with sessions() as session:
            sending = session.scalar(
                select(func.count()).where(Delivery.status == DeliveryStatus.SENDING)
            )
        assert sending == 0
        (report,) = send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
    assert report.finished
    got = recorder.by_recipient()
    assert len(got) == 66 and all(len(m) == 1 for m in got.values())
