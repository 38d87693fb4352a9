"""``publisher run`` as deployments run it: real processes, real signals, a real SMTP
server (aiosmtpd) and, for fail-over, a real PostgreSQL.

Nothing here sleeps for a set time: each step polls for what the processes
log or what the SMTP server received, with a generous ceiling for slow machines.
The leader's poll interval comes down to 0.2 s through the config.
"""

from __future__ import annotations

import asyncio
import email
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from publisher import db
from publisher.audience.subscribers import add_subscriber
from publisher.config import parse_settings
from publisher.content.importer import import_target
from publisher.models import Delivery, DigestRun, ScheduledSend
from tests.conftest import CONFIG_TEXT, postgres_url

pytestmark = pytest.mark.integration

SUBSCRIBERS = 60
CEILING = 60.0  # seconds: only a broken run gets near it


def wait_for(condition: Callable[[], bool], what: str, ceiling: float = CEILING) -> None:
    deadline = time.monotonic() + ceiling
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


class Mailbox:
    """An SMTP server that takes a little time per message, and keeps every one."""

    def __init__(self, delay: float) -> None:
        self.received: list[tuple[str, str]] = []  # (recipient, Message-ID)
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                await asyncio.sleep(delay)
                message = email.message_from_bytes(envelope.original_content)
                for rcpt in envelope.rcpt_tos:
                    mailbox.received.append((rcpt, str(message["Message-ID"])))
                return "250 Message accepted"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def recipients(self) -> set[str]:
        return {rcpt for rcpt, _ in self.received}


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(delay=0.02)
    box.controller.start()
    yield box
    box.controller.stop()


class Run:
    """A ``publisher run`` process, its output in a file."""

    def __init__(self, config: Path, env: dict[str, str], name: str) -> None:
        self.log = config.parent / f"{name}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "publisher", "--config", str(config), "run"],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, words: str) -> None:
        def seen() -> bool:
            if words in self.output():
                return True
            code = self.process.poll()
            assert code is None, f"{self.log}: exited {code} before {words!r}:\n{self.output()}"
            return False

        wait_for(seen, f"{words!r} in {self.log}:\n{self.output()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=CEILING)


def write_config(folder: Path, port: int, schedule: str, extra: str = "") -> Path:
    config = folder / "config.yaml"
    text_ = CONFIG_TEXT.replace('schedule: "0 9 * * MON"', f'schedule: "{schedule}"')
    config.write_text(
        text_
        + f"""scheduler:
  leader_poll_seconds: 0.2
  leader_timeout_seconds: 5
{extra}"""
    )
    # one connection given two messages at a time; the send overlaps two chunks (one on
    # the wire while the one before is recorded), so at most 2 x 1 x 2 = 4 are uncertain
    smtp = f"""  smtp:
    host: 127.0.0.1
    port: {port}
    security: none
    connections: 1
    batch: 2
"""
    config.write_text(
        config.read_text().replace(
            "email:\n  sender: Test Centre <news@example.org>\n",
            "email:\n  sender: Test Centre <news@example.org>\n" + smtp,
        )
    )
    return config


def environment(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PUBLISHER_DATABASE_URL": url,
        "PUBLISHER_SECRET_KEY": "test-secret",
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }


def due_a_minute_ago(zone: str) -> tuple[str, datetime]:
    """A daily crontab line whose last fire time was two minutes ago, and that time."""
    from zoneinfo import ZoneInfo

    due = (datetime.now(UTC) - timedelta(minutes=2)).replace(second=0, microsecond=0)
    here = due.astimezone(ZoneInfo(zone))
    return f"{here.minute} {here.hour} * * *", due


def prepare(
    url: str, folder: Path, sample: Path, port: int
) -> tuple[Path, datetime, sessionmaker[Session]]:
    """A database with the sample, subscribers and one post in the window of a send that
    fell due two minutes ago, watched by a scheduler since two days ago (so it is due)."""
    schedule, due = due_a_minute_ago("Europe/Berlin")
    config = write_config(folder, port, schedule)
    settings = parse_settings(config.read_text(), str(config), folder)
    engine = db.make_engine(url)
    db.upgrade(engine)
    factory = db.make_sessionmaker(engine)
    posts = folder / "posts"
    posts.mkdir()
    (posts / "fresh.md").write_text(
        f"---\ntitle: Fresh news\ndate: {(due - timedelta(hours=1)).isoformat()}\n"
        "status: published\n---\nJust in.\n"
    )
    long_ago = due - timedelta(days=2)
    import_target(factory, str(posts), settings, long_ago)
    for n in range(SUBSCRIBERS):
        add_subscriber(factory, settings, f"reader{n:03}@example.org", None, [], now=long_ago)
    with db.transaction(factory) as session:
        session.add(
            ScheduledSend(name="weekly", due_at=long_ago, outcome="watching", recorded_at=long_ago)
        )
    engine.dispose()
    return config, due, factory


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = postgres_url()
    if not url:
        pytest.skip("no PostgreSQL: set PUBLISHER_TEST_DATABASE_URL or start one on 127.0.0.1")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{url}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def counts(url: str) -> tuple[int, dict[str, int], list[str]]:
    engine: Engine = db.make_engine(url)
    try:
        with db.make_sessionmaker(engine)() as session:
            runs = session.scalar(select(func.count()).select_from(DigestRun)) or 0
            states = dict(
                session.execute(
                    select(Delivery.status, func.count()).group_by(Delivery.status)
                ).all()
            )
            outcomes = list(
                session.scalars(select(ScheduledSend.outcome).order_by(ScheduledSend.due_at))
            )
    finally:
        engine.dispose()
    return runs, {str(k): v for k, v in states.items()}, outcomes


# On SQLite a second `publisher run` refuses to start, naming the lock and its holder; the
# first stops cleanly on SIGTERM.
def test_a_second_run_on_sqlite_refuses_to_start(tmp_path: Path, mailbox: Mailbox) -> None:
    config = write_config(tmp_path, mailbox.port, "0 9 * * MON")
    url = f"sqlite:///{tmp_path / 'publisher.db'}"
    db.upgrade(db.make_engine(url))
    env = environment(url)
    first = Run(config, env, "first")
    first.wait_for_line("leading")
    second = subprocess.run(
        [sys.executable, "-m", "publisher", "--config", str(config), "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CEILING,
    )
    assert second.returncode == 1
    assert "another `publisher run` is already running on this database" in second.stderr
    assert "publisher.db.run.lock" in second.stderr and f"pid {first.process.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.stop() == 0
    assert "stopped" in first.output()


# Two `publisher run` on one PostgreSQL: one leads and sends, the other waits. When the
# leader is killed mid-send (SIGKILL), the other takes over and finishes the same run:
# every subscriber gets the digest, one run for the period, and (with the send pipeline's
# delivery states) nobody twice but the messages that were in flight.
def test_the_standby_takes_over_when_the_leader_is_killed(
    pg_url: str, tmp_path: Path, sample_dir: Path, mailbox: Mailbox
) -> None:
    config, due, _ = prepare(pg_url, tmp_path, sample_dir, mailbox.port)
    env = environment(pg_url)
    first, second = Run(config, env, "first"), Run(config, env, "second")
    standby = first
    try:
        wait_for(lambda: "standby" in first.output() + second.output(), "one to stand by")
        leader, standby = (first, second) if "leading" in first.output() else (second, first)
        wait_for(lambda: len(mailbox.received) >= 15, "the leader to be part way")
        leader.process.kill()
        leader.process.wait(timeout=CEILING)
        before = len(mailbox.received)
        standby.wait_for_line("leading")
        wait_for(
            lambda: len(mailbox.recipients()) == SUBSCRIBERS,
            f"every subscriber (have {len(mailbox.recipients())})",
        )
        standby.wait_for_line("newsletter weekly sent")
    finally:
        for run in (first, second):
            if run is not standby:
                run.process.kill()
        assert standby.stop() == 0
    runs, states, outcomes = counts(pg_url)
    assert runs == 1, "one digest for the period"
    assert outcomes == ["watching", "sent"]
    assert states.get("pending", 0) == 0 and states.get("sending", 0) == 0
    ids = {mid for _, mid in mailbox.received}
    assert len(ids) == SUBSCRIBERS, "a resent message is the same message"
    twice = len(mailbox.received) - SUBSCRIBERS
    # the pipeline's bound (README, Sending): connections x batch
    assert twice <= 1 * 2, (
        f"{twice} duplicates ({before} accepted before the kill): more than in flight"
    )


# SIGTERM mid-send: the message in flight finishes, what the server accepted is recorded,
# the process exits 0; the next `publisher run` resumes, and nobody gets the digest twice.
def test_sigterm_mid_send_stops_cleanly_and_the_next_run_resumes(
    pg_url: str, tmp_path: Path, sample_dir: Path, mailbox: Mailbox
) -> None:
    config, _, _ = prepare(pg_url, tmp_path, sample_dir, mailbox.port)
    env = environment(pg_url)
    first = Run(config, env, "first")
    wait_for(lambda: len(mailbox.received) >= 15, "the send to be part way")
    assert first.stop() == 0
    assert "SIGTERM" in first.output()
    stopped_at = len(mailbox.received)
    assert stopped_at < SUBSCRIBERS
    runs, states, outcomes = counts(pg_url)
    assert states.get("sent", 0) == stopped_at, "every accepted message is recorded"
    assert states.get("sending", 0) == 0, "nothing left uncertain"
    assert outcomes == ["watching", "open"]
    second = Run(config, env, "second")
    try:
        second.wait_for_line("newsletter weekly sent")
    finally:
        assert second.stop() == 0
    assert len(mailbox.received) == SUBSCRIBERS == len(mailbox.recipients()), "nobody twice"
    assert counts(pg_url)[2] == ["watching", "sent"]
