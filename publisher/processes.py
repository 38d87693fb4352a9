"""How the publisher starts worker processes: forked where that is safe.

A forked worker starts in milliseconds with what its parent loaded (the
parsers, the feed stack); a spawned one imports it all again (~0.4 s of CPU).
But a fork copies every lock as it is at that moment, and a lock that
another thread holds (the logging module's, an import's) stays held in the
child for good. So: fork on Linux from a process with one thread, spawn
elsewhere (macOS, and the scheduler, whose jobs run in threads).

Workers must not outlive the process that started them:
:func:`kill_with_parent` asks the kernel to end a worker with its parent.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading

#: <linux/prctl.h>
_PR_SET_PDEATHSIG = 1


def start_method() -> str:
    """``fork`` on Linux from a process with one thread, else ``spawn``."""
    single = threading.active_count() == 1
    return "fork" if sys.platform.startswith("linux") and single else "spawn"


def kill_with_parent() -> None:
    """In a worker: have the kernel send it SIGKILL when its parent dies (Linux
    ``prctl(PR_SET_PDEATHSIG)``); elsewhere, nothing."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no usable libc
            pass
