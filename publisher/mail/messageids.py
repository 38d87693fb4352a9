"""The Message-IDs of a digest: one per subscriber and run, the same for every copy sent.

``<digest.weekly.201912060800.42@example.org>``: derived from the digest (its
name and the end of its period), the subscriber id and the site's domain
alone, so a message resent after a crash is recognisably the same one and
receiving servers and clients can de-duplicate it; and bounce reports are
matched to the subscriber by it. A run stores each delivery's Message-ID when
it is created (:func:`publisher.mail.runs.claim_run`).

The period's end is written to the minute when it falls on one (a schedule's
fire time), else to the second, and to the microsecond when it has them
(``digest send`` ends the window at the moment it runs): the periods of one
digest's runs follow one another, so no two runs share an end, and no two
different digests share a Message-ID (a receiver that drops repeated
Message-IDs would drop the second).
"""

from __future__ import annotations

from datetime import datetime


def message_id_affixes(name: str, period_end: datetime, domain: str) -> tuple[str, str]:
    """What goes before and after a recipient's key in the digest's Message-IDs."""
    return f"<digest.{name}.{period_stamp(period_end)}.", f"@{domain}>"


def period_stamp(period_end: datetime) -> str:
    """The end of a run's period, as its Message-IDs carry it."""
    if period_end.microsecond:
        return f"{period_end:%Y%m%d%H%M%S%f}"
    if period_end.second:
        return f"{period_end:%Y%m%d%H%M%S}"
    return f"{period_end:%Y%m%d%H%M}"
