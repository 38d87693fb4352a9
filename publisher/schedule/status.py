"""What ``publisher schedule`` shows: every job's next runs, each newsletter's last send."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..config import Settings
from .service import FEEDS_JOB, POST_TRIGGERS, TICK_JOB, digest_job_id, post_job_id
from .times import next_fire_times


@dataclass(frozen=True)
class JobRun:
    job: str
    what: str
    at: datetime


@dataclass(frozen=True)
class NewsletterState:
    name: str
    schedule: str
    misfire_grace: timedelta
    #: the newest record of the scheduler (None: never scheduled yet)
    due: datetime | None = None
    outcome: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    sent: int = 0
    failed: int = 0
    reason: str | None = None


def next_runs(
    settings: Settings, factory: sessionmaker[Session], now: datetime, count: int
) -> list[JobRun]:
    """The next ``count`` runs of each newsletter, and the feed builds due for upcoming posts,
    soonest first. (The periodic build runs every ``feeds.build_every_minutes`` from the
    moment ``publisher run`` starts.)"""
    zone = settings.site.zone
    runs = [
        JobRun(digest_job_id(config.name), f"send the {config.name} newsletter", at)
        for config in settings.digests
        for at in next_fire_times(config.schedule, zone, now, count)
    ]
    with factory() as session:
        moments = queries.upcoming_publication_times(session, now, POST_TRIGGERS)
    runs += [JobRun(post_job_id(at), "build the feeds: a post is due", at) for at in moments]
    return sorted(runs, key=lambda run: (run.at, run.job))


def periodic_jobs(settings: Settings) -> list[tuple[str, str]]:
    every = settings.feeds.build_every_minutes
    return [
        (FEEDS_JOB, f"build the feeds and check the newsletters, every {every} min"),
        (TICK_JOB, "touch the health file and plan the post triggers, every minute"),
    ]


def newsletter_states(settings: Settings, factory: sessionmaker[Session]) -> list[NewsletterState]:
    """Each newsletter's newest send as the scheduler recorded it."""
    states = []
    with factory() as session:
        for config in settings.digests:
            rows = queries.scheduled_sends_of(session, config.name, 1)
            if not rows:
                states.append(NewsletterState(config.name, config.schedule, config.misfire_grace))
                continue
            row = rows[0]
            states.append(
                NewsletterState(
                    config.name,
                    config.schedule,
                    config.misfire_grace,
                    row.due_at,
                    row.outcome,
                    row.period_start,
                    row.period_end,
                    row.sent,
                    row.failed,
                    row.reason,
                )
            )
    return states
