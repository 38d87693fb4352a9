"""Rate limits of the subscribe form: per client (here) and per address (in the store).

Per client, a sliding window counter in memory (the ``limits`` library: two
counters per client, so a high limit costs no more than a low one), counted by
the client's address as the app sees it (behind a proxy, the one
``web.trusted_proxies`` makes believable). It is per process: a deployment
running several processes multiplies it.

Per address, the store's own record of subscription requests is counted
(:func:`requests_since`), so the limit on confirmation emails holds across
processes and restarts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy.orm import Session

from .. import queries
from ..audience.events import count_since
from ..models import EventKind


class Throttle:
    """At most ``rate`` (e.g. ``10/hour``) hits per key."""

    def __init__(self, rate: str) -> None:
        self.item: RateLimitItem = parse(rate)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def hit(self, key: str) -> bool:
        """Count one hit for ``key``; False when it is over the limit (the hit is not counted)."""
        return bool(self._limiter.hit(self.item, key))

    @property
    def period_seconds(self) -> int:
        return int(self.item.get_expiry())


def requests_since(session: Session, address: str, since: datetime) -> int:
    """Subscription requests made for ``address`` at or after ``since`` (0 for a new address)."""
    subscriber = queries.subscriber_by_email(session, address)
    if subscriber is None:
        return 0
    return count_since(session, subscriber.id, EventKind.REQUEST, since)


def window_start(rate: str, now: datetime) -> tuple[int, datetime]:
    """How many per period a rate allows, and when the current period began."""
    item = parse(rate)
    return item.amount, now - timedelta(seconds=item.get_expiry())
