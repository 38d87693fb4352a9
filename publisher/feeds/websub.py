"""Tell a WebSub hub that feeds changed (https://www.w3.org/TR/websub/#publishing).

A failed ping is logged and retried, and never fails the build: readers
still poll, the ping only makes them faster. The build calls this after its
files are in place, and a slow or dead hub gets a few seconds in all (not a
timeout per feed): topics left when the time is up are reported as failed.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable

from ..links import WEB_SCHEMES, UnsafeUrl, check_url

log = logging.getLogger(__name__)

#: seconds one request may take
TIMEOUT = 2.0
#: seconds all pings of one build may take together, retries and waits included
BUDGET = 5.0


def ping_hub(
    hub: str,
    topics: Iterable[str],
    attempts: int = 3,
    backoff: float = 1.0,
    timeout: float = TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    budget: float = BUDGET,
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """POST ``hub.mode=publish`` for each topic URL, within ``budget`` seconds.

    :returns: the topics the hub did not accept (after every attempt, or
        because the time was up).
    """
    topics = list(topics)
    try:
        check_url(hub, schemes=WEB_SCHEMES)
    except UnsafeUrl as e:  # the config refuses these; never hand urllib a file: URL
        log.warning("WebSub hub %r is not an http(s) URL (%s): not pinged", hub, e.why)
        return topics
    deadline = clock() + budget
    failed: list[str] = []
    for index, topic in enumerate(topics):
        if not _ping(hub, topic, attempts, backoff, timeout, sleep, deadline, clock):
            failed.append(topic)
        if clock() >= deadline:
            left = topics[index + 1 :]
            if left:
                log.warning(
                    "WebSub hub %s: out of time after %.0f s; %d feeds not announced",
                    hub,
                    budget,
                    len(left),
                )
            return failed + left
    return failed


def _ping(
    hub: str,
    topic: str,
    attempts: int,
    backoff: float,
    timeout: float,
    sleep: Callable[[float], None],
    deadline: float,
    clock: Callable[[], float],
) -> bool:
    """One topic, retried with growing waits; True when the hub accepted it."""
    body = urllib.parse.urlencode({"hub.mode": "publish", "hub.url": topic}).encode()
    for attempt in range(1, attempts + 1):
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        request = urllib.request.Request(
            hub,
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=min(timeout, remaining)) as response:  # noqa: S310
                if 200 <= response.status < 300:
                    log.info("WebSub hub %s accepted %s", hub, topic)
                    return True
                reason = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = str(e)
        log.warning(
            "WebSub ping to %s for %s failed (attempt %d of %d): %s",
            hub,
            topic,
            attempt,
            attempts,
            reason,
        )
        if attempt < attempts:
            wait = backoff * 2 ** (attempt - 1)
            if clock() + wait >= deadline:
                return False
            sleep(wait)
    return False
