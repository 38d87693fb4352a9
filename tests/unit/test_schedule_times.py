"""A newsletter's fire times in the site's zone, and what a late send becomes. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from publisher.config import parse_duration
from publisher.schedule.times import decide_due, fire_times_between, format_span, next_fire_times

BERLIN = ZoneInfo("Europe/Berlin")
WEEKLY = "0 9 * * MON"


# A weekly digest fires at 09:00 on the wall clock every Monday of the year, across the
# spring change (29 March 2026: UTC+1 → UTC+2) and the autumn one (25 October: back to UTC+1).
def test_weekly_fires_at_nine_local_across_both_dst_changes() -> None:
    fires = next_fire_times(WEEKLY, BERLIN, datetime(2026, 3, 1, tzinfo=UTC), 40)
    assert len(fires) == 40
    for fire in fires:
        here = fire.astimezone(BERLIN)
        assert (here.weekday(), here.hour, here.minute) == (0, 9, 0), here
    assert [b - a for a, b in zip(fires, fires[1:], strict=False)].count(timedelta(days=7)) == 37
    utc_hours = {f.date().isoformat(): f.hour for f in fires}
    assert utc_hours["2026-03-23"] == 8 and utc_hours["2026-03-30"] == 7  # spring: one hour less
    assert utc_hours["2026-10-19"] == 7 and utc_hours["2026-10-26"] == 8  # autumn: back
    # the week of each change is an hour shorter (spring) or longer (autumn) in UTC
    assert fires[fires.index(datetime(2026, 3, 30, 7, tzinfo=UTC)) - 1] == datetime(
        2026, 3, 23, 8, tzinfo=UTC
    )
    assert fire_times_between(WEEKLY, BERLIN, fires[0], fires[-1]) == fires[1:]


# A daily send at 02:30 exists once on the night the clocks spring over 02:00–03:00 and
# once on the night 02:00–03:00 happens twice: never skipped, never doubled.
def test_daily_send_in_the_changing_hour_fires_once_a_day() -> None:
    spring = fire_times_between(
        "30 2 * * *", BERLIN, datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)
    )
    autumn = fire_times_between(
        "30 2 * * *", BERLIN, datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC)
    )
    assert [f.astimezone(BERLIN).day for f in spring] == [28, 29, 30]
    assert [f.astimezone(BERLIN).day for f in autumn] == [24, 25, 26]
    assert [f.astimezone(BERLIN).hour for f in spring + autumn] == [2, 3, 2, 2, 2, 2]


MONDAY = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


# A send found late within its grace is made, and says how late; past the grace it is
# skipped with the reason; several missed fire times coalesce into the newest.
def test_a_late_send_within_the_grace_is_made_past_it_skipped() -> None:
    grace = timedelta(hours=6)
    assert decide_due([], MONDAY, grace, BERLIN) is None
    on_time = decide_due([MONDAY], MONDAY + timedelta(seconds=2), grace, BERLIN)
    assert on_time is not None and on_time.send and on_time.reason == ""
    late = decide_due([MONDAY], MONDAY + timedelta(hours=2), grace, BERLIN)
    assert late is not None and late.send and late.at == MONDAY
    assert late.reason.startswith("2h late (publisher run was not running at 2026-01-05 09:00 CET")
    too_late = decide_due([MONDAY], MONDAY + timedelta(hours=7), grace, BERLIN)
    assert too_late is not None and not too_late.send
    assert "past misfire_grace 6h" in too_late.reason
    assert "its posts go into the next window" in too_late.reason
    weeks = [MONDAY + timedelta(weeks=n) for n in range(3)]
    coalesced = decide_due(weeks, weeks[-1] + timedelta(hours=1), grace, BERLIN)
    assert coalesced is not None and coalesced.send and coalesced.at == weeks[-1]
    assert coalesced.coalesced == 2 and "coalesces 2 earlier missed sends" in coalesced.reason


def test_durations_read_as_people_write_them() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("6h") == timedelta(hours=6)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration(3600) == 3600  # left to pydantic: seconds
    assert format_span(timedelta(days=2, hours=3)) == "2d 3h"
    assert format_span(timedelta(minutes=45)) == "45m"
