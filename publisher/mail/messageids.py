"""The Message-IDs of a digest: one per subscriber, the same for every copy sent.

``<digest.weekly.201912060800.42@example.org>``: derived from the digest (its
name and the end of its period), the subscriber id and the site's domain
alone, so a message resent after a crash is recognisably the same one and
receiving servers and clients can de-duplicate it; and bounce reports are
matched to the subscriber by it. A run stores each delivery's Message-ID when
it is created (:func:`publisher.mail.runs.claim_run`).
"""

from __future__ import annotations

from datetime import datetime


def message_id_affixes(name: str, period_end: datetime, domain: str) -> tuple[str, str]:
    """What goes before and after a recipient's key in the digest's Message-IDs."""
    return f"<digest.{name}.{period_end:%Y%m%d%H%M}.", f"@{domain}>"
