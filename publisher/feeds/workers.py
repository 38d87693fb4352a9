"""Worker processes for a parallel build, which never outlive the build.

A process pool's workers wait on a queue for work; when the build process
is killed (SIGKILL, the OOM killer) nobody tells them, and they would wait
for good. Each worker therefore asks the kernel to kill it when its parent
dies (Linux ``prctl(PR_SET_PDEATHSIG)``), and watches its parent itself as
well (every platform, and the moment between spawn and ``prctl``).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from ..processes import kill_with_parent, start_method

#: seconds between a worker's looks at its parent
_WATCH_INTERVAL = 0.5


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes that end when this process ends.

    Forked where that is safe (:func:`~publisher.processes.start_method`): a
    forked worker starts with the feed stack loaded. A worker opens its own
    database connection and never touches the one it inherits.
    """
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(start_method()),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )


def die_with_parent(parent: int) -> None:
    """In a worker: arrange to end as soon as process ``parent`` is gone."""
    kill_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_WATCH_INTERVAL)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
