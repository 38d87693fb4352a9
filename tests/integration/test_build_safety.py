"""A feed build cannot be turned against its host, and survives being killed:
the manifest is private build state, one build runs at a time, killed builds
leave no temporary files or workers behind, and a dead hub costs seconds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from publisher import db
from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.errors import OutputError
from publisher.feeds import render as render_module
from publisher.feeds.build import publish_feeds
from publisher.feeds.manifest import state_dir
from publisher.feeds.websub import ping_hub
from publisher.files import exclusive_lock
from tests.feedcheck import parse_ok
from tests.integration.test_build import add_post

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def built(sessions: sessionmaker[Session], settings: Settings, sample_dir: Path) -> Path:
    import_target(sessions, str(sample_dir), settings, NOW)
    publish_feeds(sessions, settings, NOW)
    return settings.feeds.output_dir


# The manifest is build state: nothing of it is in the folder that is served.
def test_the_manifest_is_not_in_the_served_folder(built: Path) -> None:
    assert not (built / ".manifest.json").exists()
    assert (state_dir(built) / "manifest.json").is_file()
    assert not state_dir(built).is_relative_to(built)


# A file the build cannot write (written by the writer thread) fails the build
# with an error that names it, and the build is not recorded: the next build,
# once the way is clear, writes everything.
def test_a_file_that_cannot_be_written_fails_the_build_and_the_next_one_mends_it(
    sessions: sessionmaker[Session], settings: Settings, sample_dir: Path
) -> None:
    import_target(sessions, str(sample_dir), settings, NOW)
    out = settings.feeds.output_dir
    blocker = out / "rss.xml"
    blocker.mkdir(parents=True)  # a folder where the site's RSS feed goes
    with pytest.raises(OutputError, match="rss.xml"):
        publish_feeds(sessions, settings, NOW)
    assert not (state_dir(out) / "manifest.json").exists()
    blocker.rmdir()
    report = publish_feeds(sessions, settings, NOW)
    assert "rss.xml" in report.written
    parse_ok((out / "rss.xml").read_bytes())


# Whatever a manifest says, a build deletes only generated files inside the
# feed folder: never a path outside it, never through a symbolic link.
def test_a_tampered_manifest_deletes_nothing_outside_the_feed_folder(
    built: Path, sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "atom.xml").write_text("keep me too")
    (built / "link").symlink_to(elsewhere)
    planted = {
        "../victim.txt": "x",
        str(victim): "x",
        "link/atom.xml": "x",
        "tags/../../victim.txt": "x",
        "": "x",
    }
    manifest = state_dir(built) / "manifest.json"
    documents = json.loads(manifest.read_text())["documents"]
    manifest.write_text(json.dumps({"documents": {**documents, **planted}}))
    # the old public manifest is not even read: it is removed
    (built / ".manifest.json").write_text(json.dumps({"documents": planted}))
    report = publish_feeds(sessions, settings, NOW)
    assert report.removed == []
    assert victim.read_text() == "keep me"
    assert (elsewhere / "atom.xml").read_text() == "keep me too"
    assert not (built / ".manifest.json").exists()


# Temporary files of a killed build are removed by the next one; a live
# writer's temporary file is left alone.
def test_stale_temporary_files_are_removed(
    built: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead_pid = int(finished.stdout)
    stale = built / "tags" / f".atom.xml.{dead_pid}.k3j2h1ab.tmp"
    stale.write_text("half")
    old = built / ".rss.xml.abc123de.tmp"  # an older version's name, no process id
    old.write_text("half")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    live = built / f".feed.json.{os.getpid()}.zzzzzzzz.tmp"
    live.write_text("being written")
    publish_feeds(sessions, settings, NOW)
    assert not stale.exists() and not old.exists()
    assert live.exists()


# One build at a time: a second build waits (and says so) while another holds the lock.
def test_a_second_build_waits_for_the_first(
    built: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    waiting = threading.Event()
    result: list[object] = []
    with exclusive_lock(state_dir(built) / "lock"):
        thread = threading.Thread(
            target=lambda: result.append(
                publish_feeds(sessions, settings, NOW, force=True, on_wait=waiting.set)
            )
        )
        thread.start()
        assert waiting.wait(30), "the second build was told it waits"
        assert thread.is_alive() and result == []
    thread.join(60)
    assert len(result) == 1


# Two builds racing with a change to the store between them: the newer state
# is what stays on disk (before, the slower, older build could write last).
def test_racing_builds_leave_the_newer_snapshot(
    built: Path,
    sessions: sessionmaker[Session],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_store, go = threading.Event(), threading.Event()
    render = render_module.render_plans
    calls = []

    def slow_first_render(*args: object, **kwargs: object) -> render_module.Rendered:
        calls.append(1)
        if len(calls) == 1:  # the first build has read the store: hold it here
            read_store.set()
            go.wait(30)
        return render(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(render_module, "render_plans", slow_first_render)
    with db.transaction(sessions) as session:
        add_post(session, "first-change", NOW - timedelta(hours=2), title="First change")
    first = threading.Thread(target=publish_feeds, args=(sessions, settings, NOW))
    first.start()
    assert read_store.wait(30)
    with db.transaction(sessions) as session:
        add_post(session, "newest", NOW - timedelta(hours=1), title="Newest")
    second_waits = threading.Event()
    second = threading.Thread(
        target=publish_feeds, args=(sessions, settings, NOW), kwargs={"on_wait": second_waits.set}
    )
    second.start()
    assert second_waits.wait(30)
    go.set()
    first.join(60)
    second.join(60)
    titles = [e.title for e in parse_ok((built / "atom.xml").read_bytes()).entries]
    assert titles[:2] == ["Newest", "First change"]


WORKERS_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from publisher.feeds.workers import worker_pool

    pool = worker_pool(2)
    pids = {pool.submit(os.getpid).result() for _ in range(8)}
    print(" ".join(map(str, sorted(pids))), flush=True)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has ended; only its parent's wait() is missing
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


# SIGKILL of a parallel build leaves no worker behind, waiting for work that never comes.
def test_workers_die_with_a_killed_build() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", WORKERS_SCRIPT], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert workers and all(_alive(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    finally:
        parent.kill()
        parent.wait()


@pytest.fixture
def silent_hub() -> Iterator[tuple[str, list[socket.socket]]]:
    """A hub that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/", accepted
    listener.close()
    for connection in accepted:
        connection.close()


# A hub that never answers gets a few seconds in all, not a timeout per feed
# and try: every topic is reported, most of them never tried.
def test_an_unresponsive_hub_gets_a_budget_not_a_timeout_per_feed(
    silent_hub: tuple[str, list[socket.socket]],
) -> None:
    url, accepted = silent_hub
    topics = [f"https://news.example.org/feeds/tags/t{i}/atom.xml" for i in range(50)]
    failed = ping_hub(url, topics, timeout=0.3, budget=1.0, backoff=0.1)
    assert failed == topics
    assert 1 <= len(accepted) <= 6


def test_a_hub_that_is_no_web_address_is_never_contacted() -> None:
    assert ping_hub("file:///etc/passwd", ["https://x.example/atom.xml"]) == [
        "https://x.example/atom.xml"
    ]


# Pings go out after the files are in place and the build lock is free.
def test_pings_follow_the_files(
    sessions: sessionmaker[Session], settings: Settings, sample_dir: Path
) -> None:
    settings = settings.model_copy(
        update={"feeds": settings.feeds.model_copy(update={"websub_hub": "https://hub.example/"})}
    )
    import_target(sessions, str(sample_dir), settings, NOW)
    out = settings.feeds.output_dir
    seen: list[bool] = []

    def ping(hub: str, topics: list[str]) -> list[str]:
        free = threading.Event()
        probe = threading.Thread(target=lambda: _try_lock(out, free))
        probe.start()
        probe.join(30)
        seen.append((out / "atom.xml").is_file() and free.is_set())
        return []

    publish_feeds(sessions, settings, NOW, ping=ping)
    assert seen == [True]


def _try_lock(out: Path, free: threading.Event) -> None:
    with exclusive_lock(state_dir(out) / "lock", on_wait=lambda: None):
        free.set()
