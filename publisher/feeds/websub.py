"""Tell a WebSub hub that feeds changed (https://www.w3.org/TR/websub/#publishing).

A failed ping is logged and retried, and never fails the build: readers
still poll, the ping only makes them faster.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)


def ping_hub(
    hub: str,
    topics: Iterable[str],
    attempts: int = 3,
    backoff: float = 1.0,
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """POST ``hub.mode=publish`` for each topic URL.

    :returns: the topics the hub did not accept after every attempt.
    """
    failed = []
    for topic in topics:
        body = urllib.parse.urlencode({"hub.mode": "publish", "hub.url": topic}).encode()
        for attempt in range(1, attempts + 1):
            request = urllib.request.Request(
                hub,
                data=body,
                method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                    if 200 <= response.status < 300:
                        log.info("WebSub hub %s accepted %s", hub, topic)
                        break
                    reason = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as e:
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
                sleep(backoff * 2 ** (attempt - 1))
        else:
            failed.append(topic)
    return failed
