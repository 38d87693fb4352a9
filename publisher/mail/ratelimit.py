"""``email.smtp.rate_limit``: messages a second over all of a sender's connections."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from .runs import Clock


class RateLimiter:
    """At most ``rate`` messages a second over all connections (evenly spaced)."""

    def __init__(self, rate: float, clock: Clock, stop: threading.Event) -> None:
        self.gap = 1.0 / rate
        self.clock = clock
        self.stop = stop
        self.lock = threading.Lock()
        self.next_slot: datetime | None = None

    def acquire(self) -> None:
        with self.lock:
            now = self.clock.now()
            slot = max(now, self.next_slot or now)
            self.next_slot = slot + timedelta(seconds=self.gap)
        self.clock.wait((slot - now).total_seconds(), self.stop)
