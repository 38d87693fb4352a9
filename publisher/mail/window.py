"""Which digest, and which period it covers.

A digest covers the posts since its previous run ended until now, or the
window staff ask for. Before its first run, it covers the posts since its
schedule's fire time before the first send the scheduler dealt with (a first
send skipped past its grace, or empty, carries its posts into the next), or
before now when there was none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.orm import Session

from .. import queries
from ..config import DigestSettings, Settings
from ..errors import NotFound, PublisherError
from ..models import DigestRun


def digest_settings(settings: Settings, name: str | None) -> DigestSettings:
    """The digest schedule called ``name`` (the first one when None)."""
    if not settings.digests:
        raise settings.error("digests", "no digest is configured; add one under digests:")
    if name is None:
        return settings.digests[0]
    for config in settings.digests:
        if config.name == name:
            return config
    names = ", ".join(d.name for d in settings.digests)
    raise NotFound(f"no digest called {name!r} in {settings.source}; the digests are: {names}")


def previous_fire_time(schedule: str, zone: ZoneInfo, before: datetime) -> datetime:
    """When the crontab ``schedule`` last fired before ``before`` (at most a year back)."""
    trigger = CronTrigger.from_crontab(schedule, timezone=zone)
    # look back a little first: walking a year of an hourly schedule costs thousands of steps
    for days in (2, 35, 366):
        start = before - timedelta(days=days)
        last: datetime | None = None
        fire = trigger.get_next_fire_time(None, start)
        while fire is not None and fire < before:
            last = fire
            # not (fire, …): APScheduler 3 can return the same time for ever on the night
            # the clocks go back; "the first fire at or after t" it answers right
            fire = trigger.get_next_fire_time(None, fire.astimezone(UTC) + timedelta(seconds=1))
        if last is not None:
            return last.astimezone(UTC)
    return start.astimezone(UTC)


def digest_window(
    session: Session,
    config: DigestSettings,
    settings: Settings,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The period a digest covers: since the last one of its schedule went out
    (else since the schedule's run before the first due send, see above), until
    now; or what is given."""
    end = until or now
    if since is None:
        last = queries.last_run(session, config.name)
        if last is not None:
            since = last.period_end
        else:
            first = queries.first_scheduled_due(session, config.name)
            before = min(first, end) if first is not None else end
            since = previous_fire_time(config.schedule, settings.site.zone, before)
    if since >= end:
        raise PublisherError(
            f"the digest window is empty: --since {since:%Y-%m-%d %H:%M} is not before "
            f"--until {end:%Y-%m-%d %H:%M}"
        )
    return since, end


def run_before(session: Session, config: DigestSettings, start: datetime) -> DigestRun | None:
    """The digest's run whose period ends where a window starts (the posts it could
    not take, stored after it was made, go with the next: see
    :func:`publisher.queries.posts_between`); None for a window given by hand."""
    last = queries.last_run(session, config.name)
    return last if last is not None and last.period_end == start else None
