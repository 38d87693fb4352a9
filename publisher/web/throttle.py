"""Rate limits of the subscribe form: per client (here) and per address (in the store).

Per client, a sliding window counter in memory, counted by the client's
address as the app sees it (behind a proxy, the one ``web.trusted_proxies``
makes believable). It is per process: a deployment running several
processes multiplies it.

The counter is the one the ``limits`` library calls a sliding window
counter: two counts per client, this period's and the last one's, the last
one weighted by how much of it the window still covers. It is written here,
in a dozen lines under one lock, because the library's memory storage
starts a timer thread to expire keys, and starting it cost a subscribe
request 3 ms (more than the rest of the form's work in the store).

Per address, the store's own record of subscription requests is counted
(:func:`publisher.audience.subscribers.request_subscription` takes the
limit), so the limit on confirmation emails holds across processes and
restarts.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from limits import RateLimitItem, parse

#: clients remembered at most before the idle ones are forgotten
MAX_KEYS = 100_000


def client_key(address: str | None) -> str:
    """The key a client's requests are counted under: its IPv4 address, or the /64
    network of its IPv6 one (one network, one household or machine: a client holds a
    whole /64 and could take a new address for each request)."""
    if not address:
        return "client:?"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"client:{address}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:192.0.2.7 is that IPv4 client
            return f"client:{ip.ipv4_mapped}"
        return f"client:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"client:{ip}"


class Throttle:
    """At most ``rate`` (e.g. ``10/hour``) hits per key, over a sliding window.

    :param clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, rate: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.item: RateLimitItem = parse(rate)
        self._clock = clock
        self._lock = threading.Lock()
        #: key → (period number, hits in it, hits in the period before)
        self._counts: dict[str, tuple[int, int, int]] = {}

    @property
    def period_seconds(self) -> int:
        return int(self.item.get_expiry())

    def hit(self, key: str) -> bool:
        """Count one hit for ``key``; False when it is over the limit (the hit is not counted)."""
        period = self.period_seconds
        now = self._clock()
        number = int(now // period)
        into = now - number * period
        with self._lock:
            last, current, previous = self._counts.get(key, (number, 0, 0))
            if number != last:  # a new period: this one's count becomes the previous one
                previous = current if number == last + 1 else 0
                current = 0
            weighted = previous * (period - into) / period + current
            if weighted + 1 > self.item.amount:
                self._counts[key] = (number, current, previous)
                return False
            if len(self._counts) >= MAX_KEYS and key not in self._counts:
                self._forget(number)
            self._counts[key] = (number, current + 1, previous)
            return True

    def _forget(self, number: int) -> None:
        """Drop the keys idle for two periods (they count nothing any more)."""
        for key in [k for k, (last, _, _) in self._counts.items() if last < number - 1]:
            del self._counts[key]


def window_start(rate: str, now: datetime) -> tuple[int, datetime]:
    """How many per period a rate allows, and when the current period began."""
    item = parse(rate)
    return item.amount, now - timedelta(seconds=item.get_expiry())
