"""Sending the digest to every subscriber: once each, resumable, honest about failures.

Invariant (as listmonk's pipe_test puts it): a subscriber's delivery is recorded
only after the server answered for their message, and a subscriber with a
delivery in a run is never sent that run's message again.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from publisher.audience.subscribers import add_subscriber, unsubscribe
from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.errors import DeliveryError, EmptyDigest
from publisher.mail.send import send_digest
from publisher.mail.smtp import SmtpMailer
from publisher.models import Delivery, DeliveryStatus, DigestRun
from publisher.queries import subscriber_by_email
from publisher.scheduler import build_scheduler
from tests.integration.test_messages import smtp_server, smtp_settings  # noqa: F401

NOW = datetime(2019, 12, 6, 9, 0, tzinfo=UTC)  # the Friday after the three posts of 5 December


@pytest.fixture
def subscribed(
    sessions: sessionmaker[Session],
    settings: Settings,
    sample_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "test-secret")
    import_target(sessions, str(sample_dir), settings, NOW)
    for n in range(5):
        add_subscriber(sessions, settings, f"reader{n}@example.org", f"Reader {n}", [], now=NOW)
    add_subscriber(sessions, settings, "sdgs@example.org", "SDG fan", ["SDGs"], now=NOW)
    add_subscriber(sessions, settings, "chain@example.org", None, ["Blockchain"], now=NOW)
    add_subscriber(sessions, settings, "gone@example.org", None, [], now=NOW)
    with sessions() as session:
        gone = subscriber_by_email(session, "gone@example.org")
        assert gone is not None
    unsubscribe(sessions, gone.id)
    return settings


class Recorder:
    """A mailer that keeps messages, failing on the addresses it is told to."""

    def __init__(self, temporary: set[str] | None = None, permanent: set[str] | None = None):
        self.sent: dict[str, bytes] = {}
        self.temporary, self.permanent = temporary or set(), permanent or set()

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        if recipient in self.permanent:
            raise DeliveryError(recipient, "550 no such user", permanent=True)
        if recipient in self.temporary:
            raise DeliveryError(recipient, "451 try again later")
        assert recipient not in self.sent, f"{recipient} got the digest twice"
        self.sent[recipient] = message

    def close(self) -> None:
        pass


def statuses(sessions: sessionmaker[Session]) -> dict[int, str]:
    with sessions() as session:
        return {d.subscriber_id: d.status.value for d in session.scalars(select(Delivery))}


def test_everyone_active_gets_their_edition_once(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    mailer = Recorder()
    report = send_digest(sessions, subscribed, mailer, NOW)
    assert report.finished and not report.resumed
    assert (report.sent, report.skipped, report.failed) == (6, 1, 0)
    assert "gone@example.org" not in mailer.sent, "unsubscribed: no email"
    assert "chain@example.org" not in mailer.sent, "no post about their topic this week"
    fan = email.message_from_bytes(mailer.sent["sdgs@example.org"], policy=email.policy.default)
    text = fan.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Leave No One Behind news round-up" in text  # tagged SDGs
    assert "Innovation Report, get involved!" not in text  # not about SDGs
    everyone = email.message_from_bytes(
        mailer.sent["reader0@example.org"], policy=email.policy.default
    )
    assert "Innovation Report, get involved!" in everyone.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # the window began at the schedule's previous run (Monday 09:00 Berlin)
    assert report.period_start == datetime(2019, 12, 2, 8, 0, tzinfo=UTC)
    # the next send has a new, empty window: nothing twice
    with pytest.raises(EmptyDigest):
        send_digest(sessions, subscribed, Recorder(), NOW.replace(hour=10))


def test_an_interrupted_send_resumes_without_sending_twice(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    flaky = {"reader1@example.org", "reader3@example.org"}
    first = Recorder(temporary=flaky, permanent={"reader4@example.org"})
    report = send_digest(sessions, subscribed, first, NOW)
    assert not report.finished, "temporary failures leave the run open"
    assert len(report.errors) == 2 and report.failed == 1
    recorded = statuses(sessions)
    assert list(recorded.values()).count("sent") == len(first.sent) == 3
    assert "failed" in recorded.values()

    second = Recorder()
    again = send_digest(sessions, subscribed, second, NOW.replace(minute=30))
    assert again.resumed, "the same run, not a new one"
    assert set(second.sent) == flaky, "only those the first attempt could not reach"
    assert again.earlier == 5 and again.finished
    with sessions() as session:
        assert len(session.scalars(select(DigestRun)).all()) == 1
    # a retried message is the same message
    ids = {email.message_from_bytes(m)["Message-ID"] for m in second.sent.values()}
    assert all(i.startswith("<digest.weekly.") for i in ids)


def test_too_many_temporary_errors_stop_the_send(
    subscribed: Settings, sessions: sessionmaker[Session]
) -> None:
    strict = subscribed.model_copy(
        update={"email": subscribed.email.model_copy(update={"max_send_errors": 2})}
    )
    everyone = {f"reader{n}@example.org" for n in range(5)} | {"sdgs@example.org"}
    report = send_digest(sessions, strict, Recorder(temporary=everyone), NOW)
    assert not report.finished and len(report.errors) == 2
    assert statuses(sessions) == {}, "nothing was accepted, nothing is recorded"


def test_a_real_smtp_server_receives_every_message(
    subscribed: Settings,
    sessions: sessionmaker[Session],
    smtp_server: tuple[int, list[Any]],  # noqa: F811
) -> None:
    port, received = smtp_server
    settings = smtp_settings(subscribed, port)
    with SmtpMailer(settings.email.smtp) as mailer:
        report = send_digest(sessions, settings, mailer, NOW)
    assert report.sent == len(received) == 6
    assert sorted(r for e in received for r in e.rcpt_tos) == sorted(
        [f"reader{n}@example.org" for n in range(5)] + ["sdgs@example.org"]
    )
    assert all(
        s == DeliveryStatus.SENT.value for s in statuses(sessions).values() if s != "skipped"
    )


def test_the_scheduler_wires_each_job_once(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    scheduler = build_scheduler(settings, sessions, BackgroundScheduler(timezone="UTC"))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"build-feeds", "digest-weekly"}
    for job in jobs.values():
        assert job.coalesce and job.max_instances == 1
    assert "day_of_week='mon', hour='9', minute='0'" in str(jobs["digest-weekly"].trigger)
    assert str(jobs["build-feeds"].trigger).startswith("interval[0:15:00]")
