"""How the publisher starts worker processes: forked where that is safe.

A forked worker starts in milliseconds with what its parent loaded (the
parsers, the feed stack); a spawned one imports it all again (~0.4 s of CPU).
But a fork copies every lock as it is at that moment, and a lock that
another thread holds (the logging module's, an import's) stays held in the
child for good. So: fork on Linux from a process with one thread, spawn
elsewhere (macOS, and the scheduler, whose jobs run in threads).
"""

from __future__ import annotations

import sys
import threading


def start_method() -> str:
    """``fork`` on Linux from a process with one thread, else ``spawn``."""
    single = threading.active_count() == 1
    return "fork" if sys.platform.startswith("linux") and single else "spawn"
