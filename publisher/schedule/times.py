"""When a newsletter is due, and what to do about a send found late. Pure.

Crontab lines are read by APScheduler's :class:`CronTrigger` in the site's
zone, so "0 9 * * MON" is 09:00 on the wall clock in summer and in winter
(08:00 UTC, then 07:00 UTC in Europe/Berlin).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

#: fire times looked at when catching up (a minutely schedule down for a week: 10,080)
MAX_STEPS = 20_000


def cron_trigger(schedule: str, zone: ZoneInfo) -> WallClockTrigger:
    return WallClockTrigger(schedule, zone)


class WallClockTrigger(BaseTrigger):  # type: ignore[misc]
    """A crontab line on the wall clock of ``zone``: each wall time fires once.

    APScheduler 3's :class:`CronTrigger` fires a daily 02:30 twice on the night
    the clocks go back (02:30 CEST, then 02:30 CET), and asked for the next time
    after the second it can return that same time again, for ever. This trigger
    asks it only "the first fire at or after t" (which it answers right) and
    skips the second pass of a repeated wall time. (So in that one repeated
    hour, a minutely schedule pauses, as cron does for fixed-time jobs.) On the
    night the clocks spring forward, a time that does not exist fires at the
    same offset after the change (02:30 → 03:30), once.
    """

    def __init__(self, schedule: str, zone: ZoneInfo) -> None:
        self.schedule = schedule
        self.zone = zone
        self._cron = CronTrigger.from_crontab(schedule, timezone=zone)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        probe = now
        if previous_fire_time is not None:
            probe = max(now, previous_fire_time.astimezone(UTC) + timedelta(microseconds=1))
        return self.first_at_or_after(probe)

    def first_at_or_after(self, probe: datetime) -> datetime | None:
        """The first fire time at or after ``probe``, in UTC."""
        for _ in range(MAX_STEPS):
            fire: datetime | None = self._cron.get_next_fire_time(None, probe)
            if fire is None:
                return None
            here = fire.astimezone(self.zone)
            if here.fold == 1 and here.replace(fold=0).utcoffset() != here.utcoffset():
                # the second pass of a repeated wall time: it fired in the first
                probe = fire.astimezone(UTC) + timedelta(seconds=1)
                continue
            return fire.astimezone(UTC)
        return None

    def __str__(self) -> str:
        return f"cron[{self.schedule} {self.zone.key}]"

    def __repr__(self) -> str:
        return f"<WallClockTrigger ({self.schedule!r}, timezone={self.zone.key!r})>"


def next_fire_times(schedule: str, zone: ZoneInfo, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` times ``schedule`` fires at or after ``now``, in UTC."""
    trigger = cron_trigger(schedule, zone)
    found: list[datetime] = []
    fire = trigger.first_at_or_after(now)
    while fire is not None and len(found) < count:
        found.append(fire)
        fire = trigger.first_at_or_after(fire + timedelta(microseconds=1))
    return found


def fire_times_between(
    schedule: str, zone: ZoneInfo, after: datetime, until: datetime
) -> list[datetime]:
    """The times ``schedule`` fires in ``(after, until]``, in UTC, oldest first (the newest
    :data:`MAX_STEPS` when there are more)."""
    trigger = cron_trigger(schedule, zone)
    found: list[datetime] = []
    fire = trigger.first_at_or_after(after + timedelta(microseconds=1))
    while fire is not None and fire <= until:
        found.append(fire)
        if len(found) > MAX_STEPS:
            del found[0]
        fire = trigger.first_at_or_after(fire + timedelta(microseconds=1))
    return found


@dataclass(frozen=True)
class Due:
    """A send that is due: make it, or record it as skipped with ``reason``."""

    #: the fire time the send stands for (the end of its window)
    at: datetime
    send: bool
    #: earlier fire times missed and coalesced into this one
    coalesced: int
    reason: str


def decide_due(
    fires: list[datetime], now: datetime, grace: timedelta, zone: ZoneInfo
) -> Due | None:
    """What to do at ``now`` about the fire times ``fires`` nobody has dealt with yet.

    Repeated misses coalesce into the newest; it is sent when at most ``grace``
    late, else recorded as skipped (its posts stay for the next window, which
    starts where the last sent digest ended).
    """
    if not fires:
        return None
    due = fires[-1]
    late = now - due
    coalesced = len(fires) - 1
    parts = []
    if late > timedelta(minutes=1):
        parts.append(
            f"{format_span(late)} late (publisher run was not running at {local(due, zone)})"
        )
    if coalesced:
        parts.append(
            f"coalesces {coalesced} earlier missed send{'s' if coalesced > 1 else ''} "
            f"(the first due {local(fires[0], zone)})"
        )
    if late <= grace:
        return Due(due, True, coalesced, "; ".join(parts))
    parts.append(
        f"past misfire_grace {format_span(grace)}: not sent; its posts go into the next window"
    )
    return Due(due, False, coalesced, "; ".join(parts))


def local(when: datetime, zone: ZoneInfo) -> str:
    """``2026-03-30 09:00 CEST``: a time as the site's staff read it."""
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def format_span(span: timedelta) -> str:
    """``2d 3h``, ``5h 10m``, ``45m``, ``20s``: a duration to read at a glance."""
    seconds = int(span.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"
