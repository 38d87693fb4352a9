"""The scheduler with a controlled clock: no test sleeps for real time.

The service takes the time from a clock the test moves; the crontab and date
jobs are called as APScheduler would call them at those times.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from publisher.audience.subscribers import add_subscriber
from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.errors import EmptyDigest
from publisher.models import DigestRun, ScheduledSend
from publisher.schedule.newsletters import SendResult
from publisher.schedule.service import Service, post_job_id
from publisher.schedule.status import newsletter_states, next_runs
from tests.integration.smtp_recorder import Recorder, RecordingServer

BERLIN = ZoneInfo("Europe/Berlin")
SUNDAY = datetime(2026, 1, 4, 12, 0, tzinfo=UTC)


def monday(week: int) -> datetime:
    """09:00 in Berlin on the ``week``-th Monday after 5 January 2026, in UTC."""
    return datetime(2026, 1, 5, 9, 0, tzinfo=BERLIN).astimezone(UTC) + timedelta(weeks=week)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


class Outbox:
    """What a real SMTP server (aiosmtpd) received, grouped by digest run (the Message-ID
    names the run's time: ``<digest.weekly.202601050800.1@…>``)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    @property
    def delivered(self) -> list[dict[str, bytes]]:
        """One dict per digest sent (recipient → message), in the order they arrived."""
        runs: dict[str, dict[str, bytes]] = {}
        with self.recorder.lock:
            for received in self.recorder.received:
                run = received.message_id.split(".")[2]
                sent = runs.setdefault(run, {})
                assert received.recipient not in sent, f"{received.recipient} got a digest twice"
                sent[received.recipient] = received.data
        return list(runs.values())

    def titles(self, index: int, recipient: str = "reader@example.org") -> set[str]:
        """The titles of the posts in the ``index``-th digest delivered."""
        message = email.message_from_bytes(
            self.delivered[index][recipient], policy=email.policy.default
        )
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        return {title for title in TITLES if title in text}


TITLES = ("Alpha news", "Beta news", "Gamma news", "Delta news")


def write_post(folder: Path, title: str, when: datetime) -> None:
    slug = title.lower().replace(" ", "-")
    folder.mkdir(exist_ok=True)
    (folder / f"{slug}.md").write_text(
        f"---\ntitle: {title}\ndate: {when.isoformat()}\nstatus: published\n---\n"
        f"What happened: {title}.\n"
    )


@pytest.fixture
def smtp() -> Iterator[Recorder]:
    with RecordingServer(Recorder()) as recorder:
        yield recorder


@pytest.fixture
def settings(settings: Settings, smtp: Recorder) -> Settings:
    """The test settings, sending to the recording SMTP server."""
    server = settings.email.smtp.model_copy(
        update={"host": "127.0.0.1", "port": smtp.port, "security": "none"}
    )
    return settings.model_copy(update={"email": settings.email.model_copy(update={"smtp": server})})


@pytest.fixture
def service(
    sessions: sessionmaker[Session],
    settings: Settings,
    smtp: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Service, Clock, Outbox]:
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "test-secret")
    add_subscriber(sessions, settings, "reader@example.org", "Reader", [], now=SUNDAY)
    clock = Clock(SUNDAY)
    return Service(settings, sessions, clock), clock, Outbox(smtp)


def records(sessions: sessionmaker[Session]) -> list[tuple[datetime, str]]:
    with sessions() as session:
        rows = session.scalars(select(ScheduledSend).order_by(ScheduledSend.due_at))
        return [(row.due_at, row.outcome) for row in rows]


# Every week's send is due at 09:00 on the Berlin wall clock, winter and summer: checks
# made at each Monday 09:00 local (computed apart from the scheduler) each find exactly
# that send due, across the spring and the autumn change.
def test_weekly_newsletter_is_due_at_nine_local_across_both_dst_changes(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    due_at: list[datetime] = []

    def send(config: object, due: datetime, stop: object) -> SendResult:
        due_at.append(due)
        raise EmptyDigest("no posts in this test")

    clock = Clock(datetime(2026, 3, 1, tzinfo=UTC))
    service = Service(settings, sessions, clock, send)  # type: ignore[arg-type]
    config = settings.digests[0]
    service.check(config)  # first seen: from now on
    mondays = [datetime(2026, 3, 2, 9, tzinfo=BERLIN) + timedelta(weeks=n) for n in range(36)]
    for week in mondays:  # 2 March to 2 November 2026
        clock.now = week.astimezone(UTC)
        service.check(config)
        clock.now += timedelta(minutes=5)
        service.check(config)  # nothing more is due
    assert due_at == [week.astimezone(UTC) for week in mondays]
    assert {d.astimezone(BERLIN).hour for d in due_at} == {9}
    assert {d.hour for d in due_at} == {7, 8}  # UTC: the offset changed twice
    assert [outcome for _, outcome in records(sessions)] == ["watching"] + ["empty"] * 36


# A send the SMTP server stopped (down, login refused) is left open, resumed at the
# next check, and counted as a failure, so `run --once` exits non-zero and cron's
# monitoring sees the outage; a send stopped on request is not a failure.
def test_a_send_the_server_stopped_is_a_failure_of_the_check(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    import threading

    def send(config: object, due: datetime, stop: threading.Event) -> SendResult:
        return SendResult(due - timedelta(weeks=1), due, False, stopped="cannot connect")

    clock = Clock(datetime(2026, 3, 1, tzinfo=UTC))
    service = Service(settings, sessions, clock, send)  # type: ignore[arg-type]
    config = settings.digests[0]
    service.check(config)  # first seen: from now on
    clock.now = datetime(2026, 3, 2, 9, tzinfo=BERLIN).astimezone(UTC)
    service.check(config)
    assert service.failures == 1
    assert [outcome for _, outcome in records(sessions)] == ["watching", "open"]

    def stopped(config: object, due: datetime, stop: threading.Event) -> SendResult:
        stop.set()  # SIGTERM during the send: it finishes what is in flight and returns
        return SendResult(due - timedelta(weeks=1), due, False, stopped="stopped on request")

    stopping = Service(settings, sessions, clock, stopped)  # type: ignore[arg-type]
    stopping.check(config)  # resumes the open send, which the stop ends again
    assert stopping.failures == 0
    assert [outcome for _, outcome in records(sessions)] == ["watching", "open"]


# A send missed while the process was down goes out at start-up when within its grace,
# is recorded skipped (with the reason) past it, and the posts of a skipped send go out
# with the next one: each post in exactly one digest, none lost, windows contiguous.
def test_downtime_within_and_past_the_grace_and_each_post_in_one_digest(
    service: tuple[Service, Clock, Outbox],
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
) -> None:
    run, clock, outbox = service
    config = settings.digests[0]
    posts = tmp_path / "posts"
    run.check(config)  # Sunday: the scheduler takes the newsletter on

    write_post(posts, "Alpha news", SUNDAY + timedelta(hours=2))
    write_post(posts, "Beta news", SUNDAY + timedelta(hours=3))
    import_target(sessions, str(posts), settings, SUNDAY)
    # down over Monday 09:00; back at 11:00, within the 6h grace: sent at start-up
    clock.now = monday(0) + timedelta(hours=2)
    run.check(config)
    assert len(outbox.delivered) == 1 and outbox.titles(0) == {"Alpha news", "Beta news"}
    (sent,) = [row for row in newsletter_states(settings, sessions)]
    assert sent.outcome == "sent" and sent.window_end == monday(0)
    assert sent.reason is not None and sent.reason.startswith("2h late")

    write_post(posts, "Gamma news", monday(0) + timedelta(days=1))
    import_target(sessions, str(posts), settings, clock.now)
    # down over the next Monday; back 10 hours late: past the grace, skipped, nothing sent
    clock.now = monday(1) + timedelta(hours=10)
    run.check(config)
    assert len(outbox.delivered) == 1
    (skipped,) = newsletter_states(settings, sessions)
    assert skipped.outcome == "skipped" and skipped.reason is not None
    assert "past misfire_grace 6h" in skipped.reason

    write_post(posts, "Delta news", monday(1) + timedelta(days=2))
    import_target(sessions, str(posts), settings, clock.now)
    clock.now = monday(2)  # on time
    run.check(config)
    assert outbox.titles(1) == {"Gamma news", "Delta news"}, "the skipped week's post is carried"
    # down for two weeks: the two missed sends coalesce into one (within grace of the last)
    clock.now = monday(4) + timedelta(minutes=30)
    run.check(config)
    assert len(outbox.delivered) == 2, "an empty window sends nothing"
    assert records(sessions)[-1] == (monday(4), "empty")

    with sessions() as session:
        windows = [
            (r.period_start, r.period_end)
            for r in session.scalars(select(DigestRun).order_by(DigestRun.period_start))
        ]
    assert windows[0][1] == windows[1][0], "contiguous: the next window starts where one ended"
    assert [outcome for _, outcome in records(sessions)] == [
        "watching",
        "sent",
        "skipped",
        "sent",
        "empty",
    ]
    assert sum(len(outbox.titles(i)) for i in range(len(outbox.delivered))) == len(TITLES)


# A send is claimed once per newsletter and due time: a second check, or a second
# scheduler's check at the same moment, finds it recorded and sends nothing.
def test_a_due_send_is_made_once_however_often_it_is_checked(
    service: tuple[Service, Clock, Outbox],
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
) -> None:
    run, clock, outbox = service
    config = settings.digests[0]
    run.check(config)
    write_post(tmp_path / "posts", "Alpha news", SUNDAY + timedelta(hours=1))
    import_target(sessions, str(tmp_path / "posts"), settings, SUNDAY)
    clock.now = monday(0)
    other = Service(settings, sessions, clock)
    for scheduler in (run, other, run):
        scheduler.check(config)
    assert len(outbox.delivered) == 1


# A post scheduled for 10:00 is in the feeds at 10:00: the scheduler plans a date trigger at
# that moment, and the build it runs then has the post (the periodic build would be later).
def test_a_post_scheduled_for_ten_is_in_the_feeds_at_ten(
    service: tuple[Service, Clock, Outbox],
    sessions: sessionmaker[Session],
    settings: Settings,
    tmp_path: Path,
) -> None:
    run, clock, _ = service
    ten = datetime(2026, 1, 7, 10, 0, tzinfo=BERLIN).astimezone(UTC)
    clock.now = ten - timedelta(hours=2, minutes=7)
    write_post(tmp_path / "posts", "Alpha news", ten)
    import_target(sessions, str(tmp_path / "posts"), settings, clock.now)
    scheduler = run.build_scheduler(BackgroundScheduler(timezone=BERLIN))
    run.build_feeds()  # the start-up build plans the triggers
    atom = settings.feeds.output_dir / "atom.xml"
    assert "Alpha news" not in atom.read_text()
    job = scheduler.get_job(post_job_id(ten))
    assert job is not None, [j.id for j in scheduler.get_jobs()]
    assert job.trigger.get_next_fire_time(None, clock.now) == ten.astimezone(BERLIN)
    periodic = scheduler.get_job("build-feeds").trigger.get_next_fire_time(None, clock.now)
    assert periodic != ten
    clock.now = ten  # APScheduler runs the job at its time
    job.func()
    assert "Alpha news" in atom.read_text()
    assert scheduler.get_job(post_job_id(ten)) is None or clock.now >= ten
    assert [r.job for r in next_runs(settings, sessions, ten - timedelta(hours=1), 1)][0] == (
        post_job_id(ten)
    )


# The wiring: fixed ids, coalesce, one instance at a time, the site's zone, and no
# reliance on APScheduler's one-second misfire grace (lateness is judged by misfire_grace).
def test_the_scheduler_wires_each_job_once(
    service: tuple[Service, Clock, Outbox], settings: Settings
) -> None:
    run, _, _ = service
    scheduler = run.build_scheduler(BackgroundScheduler(timezone="UTC"))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"build-feeds", "tick", "digest-weekly"}
    for job in jobs.values():
        assert job.coalesce and job.max_instances == 1 and job.misfire_grace_time is None
    assert str(jobs["digest-weekly"].trigger) == "cron[0 9 * * MON Europe/Berlin]"
    assert str(jobs["build-feeds"].trigger).startswith("interval[0:15:00]")


# `publisher run --once` (what cron users run) builds the feeds and takes the newsletters
# on, logging one JSON line per event; `publisher schedule` then shows the next sends in
# site time and UTC and the newsletter's last record, as one JSON document.
def test_run_once_then_schedule_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from publisher.cli import cli
    from tests.conftest import CONFIG_TEXT

    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    root = logging.getLogger()  # `run` points the log at its stderr: give pytest its own back
    monkeypatch.setattr(root, "handlers", root.handlers[:])
    monkeypatch.setattr(root, "level", root.level)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT + "scheduler:\n  health_file: run/health\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config), "init", "--sample"]).exit_code == 0
    once = runner.invoke(cli, ["--config", str(config), "run", "--once", "--log-format", "json"])
    assert once.exit_code == 0, once.output
    assert (tmp_path / "run" / "health").exists(), "the health file is touched"
    shown = runner.invoke(cli, ["--config", str(config), "schedule", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    listing = json.loads(shown.output)
    weekly = [job for job in listing["jobs"] if job["job"] == "digest-weekly"]
    assert len(weekly) == 3
    assert weekly[0]["next (Europe/Berlin)"].endswith("09:00 CET") or weekly[0][
        "next (Europe/Berlin)"
    ].endswith("09:00 CEST")
    assert weekly[0]["next (UTC)"].endswith("UTC")
    (newsletter,) = listing["newsletters"]
    assert newsletter["outcome"] == "watching" and newsletter["grace"] == "6h"


# Invariant: a scheduler whose newsletter's subject cannot be made refuses to start,
# naming the newsletter and the key, before it touches anything.
def test_run_refuses_to_start_with_a_subject_that_cannot_be_made(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from publisher.cli import cli
    from tests.conftest import CONFIG_TEXT

    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT + '    subject: "{{ site.titel }} weekly"\n')
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config), "init"]).exit_code == 0
    started = runner.invoke(cli, ["--config", str(config), "run", "--once"])
    assert started.exit_code == 1
    assert (
        "config.yaml:" in started.output
        and "digests.0.subject: site has no attribute 'titel'" in started.output
    )
    assert not (tmp_path / "feeds").exists()
