"""A digest run's names: its Message-IDs (read back by the bounce reports) and its web page."""

from __future__ import annotations

from datetime import UTC, datetime

from publisher.audience.reports import DIGEST_ID
from publisher.mail.messageids import message_id_affixes


# Two runs of one digest never share a Message-ID, even when their periods end in the
# same minute (`digest send` twice within it, a test-send after a send): a receiver
# that drops a Message-ID it has seen would drop the second digest. A schedule's run,
# ending on the minute, keeps the short form; bounce reports read every form back.
def test_runs_that_end_in_one_minute_have_their_own_message_ids() -> None:
    ends = [
        datetime(2026, 11, 28, 12, 44, tzinfo=UTC),
        datetime(2026, 11, 28, 12, 44, 3, tzinfo=UTC),
        datetime(2026, 11, 28, 12, 44, 3, 250, tzinfo=UTC),
        datetime(2026, 11, 28, 12, 44, 19, tzinfo=UTC),
    ]
    affixes = [message_id_affixes("weekly", end, "example.org") for end in ends]
    assert len(set(affixes)) == len(ends)
    assert affixes[0] == ("<digest.weekly.202611281244.", "@example.org>")
    assert affixes[2][0] == "<digest.weekly.20261128124403000250."
    for before, after in affixes:
        found = DIGEST_ID.search(f"In-Reply-To: {before}42{after}")
        assert found is not None and (found[1], found[3]) == ("weekly", "42")


# The "View in browser" page is one per run, named by the end of its period as the
# Message-IDs are: a second send on one day no longer overwrites the first's page
# (whose emails still link to it), and the feed server serves every such name.
def test_each_run_has_its_own_web_page() -> None:
    from publisher.urls import digest_page_path
    from publisher.web.folder import media_type

    ends = [
        datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 12, 44, 3, tzinfo=UTC),
        datetime(2026, 11, 30, 12, 44, 3, 250, tzinfo=UTC),
    ]
    pages = [digest_page_path("weekly", end) for end in ends]
    assert pages[0] == "digests/weekly-2026-11-30-0800.html"
    assert len(set(pages)) == len(ends)
    for page in [*pages, "digests/weekly-2026-11-23.html"]:  # and the old, one-a-day name
        assert media_type(page.removeprefix("digests/")) == "text/html; charset=utf-8"
