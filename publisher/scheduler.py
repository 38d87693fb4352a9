"""``publisher run``: APScheduler wiring of the jobs, and nothing else.

The feeds are rebuilt every ``feeds.build_every_minutes`` (a no-change build
writes nothing) and each digest is sent on its crontab schedule, in the
site's time zone. Every job has a fixed id, ``coalesce=True`` (missed runs
collapse into one), ``max_instances=1`` (a slow send is never overlapped by
the next) and ``replace_existing=True``, as APScheduler 3 recommends. A job
that fails logs why and waits for its next turn: the scheduler never dies of it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from .config import Settings
from .errors import EmptyDigest, PublisherError
from .feeds.build import publish_feeds
from .mail.send import send_digest

log = logging.getLogger(__name__)

COMMON = {"coalesce": True, "max_instances": 1, "replace_existing": True}


def build_feeds_job(factory: sessionmaker[Session], settings: Settings) -> None:
    try:
        report = publish_feeds(factory, settings, datetime.now(UTC))
    except PublisherError as e:
        log.error("feed build failed: %s", e)
        return
    log.info(
        "feeds: %d of %d documents rendered, %d files written",
        report.rendered,
        report.documents,
        len(report.written),
    )


def send_digest_job(factory: sessionmaker[Session], settings: Settings, name: str) -> None:
    try:
        reports = send_digest(factory, settings, datetime.now(UTC), name)
    except EmptyDigest as e:
        log.info("digest %s: nothing to send (%s)", name, e)
        return
    except PublisherError as e:
        log.error("digest %s failed: %s", name, e)
        return
    for report in reports:
        state = "done" if report.finished else f"stopped ({report.stopped}); it resumes next time"
        log.info(
            "digest %s run %d %s: %d sent, %d failed, %d skipped, %d deferred",
            name,
            report.run_id,
            state,
            report.sent,
            report.failed,
            report.skipped,
            report.deferred,
        )


def build_scheduler(
    settings: Settings,
    factory: sessionmaker[Session],
    scheduler: BaseScheduler | None = None,
) -> BaseScheduler:
    """A scheduler with the feed build and every digest of ``settings``, not started."""
    zone = settings.site.zone
    scheduler = scheduler or BlockingScheduler(timezone=zone)
    scheduler.add_job(
        build_feeds_job,
        IntervalTrigger(minutes=settings.feeds.build_every_minutes, timezone=zone),
        args=(factory, settings),
        id="build-feeds",
        name="build the feeds",
        next_run_time=datetime.now(zone),  # once at start, then on the interval
        **COMMON,
    )
    for digest in settings.digests:
        scheduler.add_job(
            send_digest_job,
            CronTrigger.from_crontab(digest.schedule, timezone=zone),
            args=(factory, settings, digest.name),
            id=f"digest-{digest.name}",
            name=f"send the {digest.name} digest",
            misfire_grace_time=3600,  # a send an hour late is still worth making
            **COMMON,
        )
    return scheduler
