"""How a build chooses its processes: how many, and how they start."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from publisher.feeds import build
from publisher.feeds.workers import start_method


# A worker is forked only from a process with one thread: a fork copies a lock
# that another thread holds (the scheduler runs builds in its threads) as held.
def test_a_threaded_process_spawns_its_workers() -> None:
    seen: list[str] = []
    thread = threading.Thread(target=lambda: seen.append(start_method()))
    thread.start()
    thread.join()
    assert seen == ["spawn"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is chosen on Linux only")
def test_a_single_threaded_build_forks_its_workers() -> None:
    code = "from publisher.feeds.workers import start_method; print(start_method())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "fork"


# Busy cores are what others use now: a load average that still counts
# processes which have ended (the import just before) does not keep a build
# on one core, and a build does not count itself.
@pytest.mark.parametrize(
    ("load", "runnable", "busy"),
    [(1.8, "1/300", 0.0), (1.8, "2/300", 1.0), (0.5, "4/300", 0.5), (1.8, "garbled", 1.8)],
)
def test_busy_cores_are_the_lesser_of_load_and_runnable_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: float, runnable: str, busy: float
) -> None:
    monkeypatch.setattr(build.os, "getloadavg", lambda: (load, load, load))
    loadavg = tmp_path / "loadavg"
    loadavg.write_text(f"{load} {load} {load} {runnable} 4711\n")
    assert build.busy_cores(str(loadavg)) == busy


def test_busy_cores_fall_back_to_the_load_average(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build.os, "getloadavg", lambda: (1.25, 1.0, 1.0))
    assert build.busy_cores(str(tmp_path / "missing")) == 1.25


def test_a_small_build_stays_on_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "busy_cores", lambda: 0.0)
    assert build.choose_workers(build.PARALLEL_ENTRIES - 1) == 1
    cores = len(build.os.sched_getaffinity(0))
    assert build.choose_workers(build.PARALLEL_ENTRIES) == min(2, cores)
