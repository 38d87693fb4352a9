"""APScheduler 3 wiring of the jobs, the leader loop, ``--once``, SIGTERM and the health file.

Jobs (fixed ids, ``coalesce=True``, ``max_instances=1``, the site's zone):

- ``build-feeds``: every ``feeds.build_every_minutes`` (and at start): build the
  feeds, forget subscription requests whose link expired unconfirmed
  (:mod:`publisher.audience.expiry`), then check every newsletter (resume open
  sends, catch up).
- ``post-due-<time>``: a date trigger at each moment an upcoming post becomes
  visible, so it is in the feeds then, not at the next periodic build.
  Re-planned every minute (``tick``, which catches posts imported or
  published by other processes) and after every build.
- ``digest-<name>``: each newsletter on its crontab line (and at start, to
  resume a send a dead leader left and to catch up on one missed while down).
- ``tick``: every minute: touch the health file, re-plan the post triggers.

A job that fails logs why and waits for its next turn: the scheduler never
dies of it. Everything takes the time from ``clock``, so tests drive it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..audience.expiry import forget_unconfirmed
from ..config import DigestSettings, Settings
from ..errors import PublisherError
from ..feeds.build import publish_feeds
from .events import emit
from .leader import Leadership
from .newsletters import SendFunction, check_newsletter
from .sending import make_send_function
from .times import cron_trigger, local

FEEDS_JOB = "build-feeds"
TICK_JOB = "tick"
POST_JOB_PREFIX = "post-due-"
#: upcoming post times planned as date triggers at once (the rest at a later re-plan)
POST_TRIGGERS = 100
#: every job: missed runs collapse into one, a slow run is never overlapped by the next
COMMON: dict[str, Any] = {"coalesce": True, "max_instances": 1, "replace_existing": True}


def digest_job_id(name: str) -> str:
    return f"digest-{name}"


def post_job_id(when: datetime) -> str:
    return POST_JOB_PREFIX + when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Service:
    """The jobs of ``publisher run``, over one database.

    :param clock: the current time (UTC); tests pass a controlled one.
    :param send: the send path; default: the pipeline, over ``email.smtp``.
    """

    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        clock: Callable[[], datetime] = utcnow,
        send: SendFunction | None = None,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.clock = clock
        self.send = send or make_send_function(factory, settings)
        #: set by SIGTERM/SIGINT: the process ends
        self.stop = threading.Event()
        #: set when sends must stop (the process ends, or it lost the lead)
        self.halt = threading.Event()
        #: one check of a newsletter at a time (the crontab job and the periodic one)
        self._locks = {d.name: threading.Lock() for d in settings.digests}
        self.scheduler: BaseScheduler | None = None
        self.failures = 0

    # -- the jobs ------------------------------------------------------------

    def build_feeds(self) -> None:
        """Build the feeds as of now, then plan the next post triggers."""
        now = self.clock()
        try:
            report = publish_feeds(self.factory, self.settings, now)
        except PublisherError as e:
            self.failures += 1
            emit("feeds-failed", f"feeds: build failed: {e}", logging.ERROR, error=str(e))
        else:
            emit(
                "feeds",
                f"feeds: {report.rendered} of {report.documents} documents rendered, "
                f"{len(report.written)} files written, {len(report.removed)} removed",
                documents=report.documents,
                rendered=report.rendered,
                written=len(report.written),
                removed=len(report.removed),
            )
        self.plan_posts()

    def forget_expired_requests(self) -> None:
        """Delete what subscription requests left once their links expired unconfirmed."""
        try:
            gone = forget_unconfirmed(self.factory, self.settings, self.clock())
        except Exception as e:  # never in the way of the newsletters: again next time
            emit("forget-failed", f"subscribers: forgetting failed: {e}", logging.ERROR)
            return
        if gone.subscribers or gone.requests:
            emit(
                "forgotten",
                f"subscribers: forgot {gone.subscribers} never confirmed, and "
                f"{gone.requests} unconfirmed requests of others (their links expired)",
                subscribers=gone.subscribers,
                requests=gone.requests,
            )

    def check(self, config: DigestSettings) -> None:
        """Deal with whatever of this newsletter is due or unfinished."""
        lock = self._locks[config.name]
        if not lock.acquire(blocking=False):
            return  # the other job is on it
        try:
            outcomes = check_newsletter(
                self.factory, self.settings, config, self.clock(), self.send, self.halt
            )
        except PublisherError as e:  # the store is unreachable, say: try at the next check
            outcomes = ["failed"]
            emit(
                "failed",
                f"newsletter {config.name}: check failed: {e}; retried at the next check",
                logging.ERROR,
                newsletter=config.name,
                error=str(e),
            )
        finally:
            lock.release()
        self.failures += outcomes.count("failed") + outcomes.count("stopped")

    def periodic(self) -> None:
        """The interval job: the feeds, expired requests, then every newsletter."""
        self.build_feeds()
        self.forget_expired_requests()
        for config in self.settings.digests:
            if not self.halt.is_set():
                self.check(config)

    def tick(self) -> None:
        """Every minute: the health file, and the post triggers."""
        self.touch_health("leader")
        self.plan_posts()

    def touch_health(self, role: str) -> None:
        path = self.settings.scheduler.health_file
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{self.clock().isoformat(timespec='seconds')} {role}\n")
        except OSError as e:
            emit("health-failed", f"cannot write the health file {path}: {e}", logging.ERROR)

    def plan_posts(self) -> list[datetime]:
        """Date triggers at the moments upcoming posts become visible; the moments."""
        now = self.clock()
        with self.factory() as session:
            moments = queries.upcoming_publication_times(session, now, POST_TRIGGERS)
        scheduler = self.scheduler
        if scheduler is None:
            return moments
        wanted = {post_job_id(when): when for when in moments}
        for job in scheduler.get_jobs():
            if job.id.startswith(POST_JOB_PREFIX) and job.id not in wanted:
                job.remove()
        zone = self.settings.site.zone
        for job_id, when in wanted.items():
            if scheduler.get_job(job_id) is None:
                scheduler.add_job(
                    self.build_feeds,
                    DateTrigger(run_date=when, timezone=zone),
                    id=job_id,
                    name=f"build the feeds when a post is due ({local(when, zone)})",
                    misfire_grace_time=None,
                    **COMMON,
                )
        return moments

    # -- wiring --------------------------------------------------------------

    def build_scheduler(self, scheduler: BaseScheduler | None = None) -> BaseScheduler:
        """A scheduler with every job, not started; every job also runs once at start."""
        zone = self.settings.site.zone
        scheduler = scheduler or BackgroundScheduler(timezone=zone)
        start = self.clock().astimezone(zone)
        scheduler.add_job(
            self.periodic,
            IntervalTrigger(minutes=self.settings.feeds.build_every_minutes, timezone=zone),
            id=FEEDS_JOB,
            name="build the feeds, check the newsletters",
            next_run_time=start,
            misfire_grace_time=None,
            **COMMON,
        )
        scheduler.add_job(
            self.tick,
            IntervalTrigger(minutes=1, timezone=zone),
            id=TICK_JOB,
            name="touch the health file, plan the post triggers",
            next_run_time=start,
            misfire_grace_time=None,
            **COMMON,
        )
        for config in self.settings.digests:
            scheduler.add_job(
                self.check,
                cron_trigger(config.schedule, zone),
                args=(config,),
                id=digest_job_id(config.name),
                name=f"send the {config.name} newsletter",
                # at start too: resume what a dead leader left, catch up on a missed send;
                # lateness is judged by misfire_grace in check_newsletter, not here
                next_run_time=start,
                misfire_grace_time=None,
                **COMMON,
            )
        self.scheduler = scheduler
        return scheduler

    # -- the process ---------------------------------------------------------

    def run_once(self, leadership: Leadership) -> bool:
        """Every job once (the feeds, then each newsletter), for cron and CI; False when
        another process leads and this one did nothing."""
        if not leadership.try_acquire():
            if not leadership.shared:
                raise leadership.refusal()
            emit("standby", "another publisher run leads on this database: nothing done")
            return False
        try:
            self.build_feeds()
            self.forget_expired_requests()
            for config in self.settings.digests:
                self.check(config)
            self.touch_health("once")
        finally:
            leadership.release()
        return True

    def run_forever(self, leadership: Leadership, poll: float) -> None:
        """Lead, or wait to lead, until SIGTERM or SIGINT."""
        self._handle_signals()
        waiting = False
        while not self.stop.is_set():
            if leadership.try_acquire():
                waiting = False
                emit("leader", f"leading: holds {leadership.description}")
                self._lead(leadership, poll)
                continue
            if not leadership.shared:
                raise leadership.refusal()
            if not waiting:
                emit(
                    "standby",
                    f"standby: another publisher run leads; trying to take over every {poll:g}s",
                )
                waiting = True
            self.touch_health("standby")
            self.stop.wait(poll)
        emit("stopped", "stopped")

    def _lead(self, leadership: Leadership, poll: float) -> None:
        self.halt.clear()
        scheduler = self.build_scheduler(BackgroundScheduler(timezone=self.settings.site.zone))
        scheduler.start()
        try:
            while not self.stop.wait(poll):
                if not leadership.holds():
                    emit(
                        "lead-lost",
                        f"lost the lead ({leadership.description} is gone); stopping the jobs "
                        "and waiting to lead again",
                        logging.ERROR,
                    )
                    break
        finally:
            self.halt.set()
            emit("stopping", "stopping: finishing the messages in flight")
            scheduler.shutdown(wait=True)
            self.scheduler = None
            leadership.release()

    def _handle_signals(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            emit("signal", f"{signal.Signals(signum).name}: stopping after the work in flight")
            self.halt.set()
            self.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)


def health_age(path: Path, now: datetime) -> timedelta | None:
    """How long ago ``publisher run`` last touched its health file (None: never)."""
    try:
        return now - datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except FileNotFoundError:
        return None
