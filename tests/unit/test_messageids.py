"""A digest's Message-IDs: one per run and subscriber, read back by the bounce reports."""

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
