"""Real sender processes, killed with real signals, against a real SMTP server.

Each sender is ``publisher digest send`` (the click command) in a process of its
own, forked from the test so it starts in milliseconds; the aiosmtpd server in
the test records every message it accepts.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from publisher import db
from publisher.config import Settings, load_settings
from publisher.content.importer import import_target
from publisher.mail.runs import claim_run
from publisher.models import Delivery, DigestRun, Subscriber, Subscription
from tests.conftest import CONFIG_TEXT, postgres_url
from tests.integration.smtp_recorder import Recorder, RecordingServer

pytestmark = pytest.mark.integration

NOW = datetime(2019, 12, 6, 9, 0, tzinfo=UTC)
SMTP = """\
  smtp:
    host: 127.0.0.1
    port: {port}
    security: none
    connections: 2
    batch: 4
    max_messages_per_connection: 0
"""
fork = multiprocessing.get_context("fork")


def write_config(folder: Path, port: int, database: str) -> Path:
    config = CONFIG_TEXT.replace(
        "email:\n  sender: Test Centre <news@example.org>\n",
        "email:\n  sender: Test Centre <news@example.org>\n" + SMTP.format(port=port),
    )
    config += f"database:\n  url: {database}\n"
    path = folder / "config.yaml"
    path.write_text(config)
    return path


def add_readers(factory: sessionmaker[Session], count: int) -> list[str]:
    """``count`` subscribers of the weekly digest, in two statements."""
    addresses = [f"r{n:05d}@example.org" for n in range(count)]
    with factory.begin() as session:
        session.execute(
            insert(Subscriber),
            [{"email": a, "name": None, "status": "active", "created_at": NOW} for a in addresses],
        )
        ids = session.scalars(select(Subscriber.id)).all()
        session.execute(
            insert(Subscription),
            [{"subscriber_id": i, "newsletter": "weekly", "created_at": NOW} for i in ids],
        )
    return addresses


def _to_log(log: str) -> None:
    """In a child: stdout and stderr (the file descriptors and Python's) into ``log``."""
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _run_cli(config: str, log: str) -> None:  # in the child
    _to_log(log)
    from publisher.cli import cli

    code = 0
    try:
        cli.main(["--config", config, "digest", "send"], prog_name="publisher")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def start_sender(config: Path, log: Path) -> Any:
    process = fork.Process(target=_run_cli, args=(str(config), str(log)))
    process.start()
    return process


@pytest.fixture
def prepared(
    tmp_path: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Recorder, list[str]]]:
    """A SQLite database with the sample posts, 40 readers and the week's run claimed
    (a template copied for each trial), and a recording SMTP server that takes 5 ms a
    message."""
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "test-secret")
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    recorder = Recorder(delay=0.005)
    with RecordingServer(recorder):
        template = tmp_path / "template.db"
        config = write_config(tmp_path, recorder.port, f"sqlite:///{template}")
        settings = load_settings(config)
        engine = db.make_engine(settings.database.url or "")
        db.upgrade(engine)
        factory = db.make_sessionmaker(engine)
        import_target(factory, str(sample_dir), settings, NOW)
        readers = add_readers(factory, 40)
        claim_run(factory, settings, None, NOW)
        engine.dispose()
        yield template, recorder, readers


def trial_database(tmp_path: Path, template: Path, n: int, port: int) -> tuple[Path, Any]:
    folder = tmp_path / f"trial{n}"
    folder.mkdir()
    shutil.copy(template, folder / "p.db")
    config = write_config(folder, port, f"sqlite:///{folder / 'p.db'}")
    engine = db.make_engine(f"sqlite:///{folder / 'p.db'}")
    return config, engine


def sending_rows(engine: Any) -> dict[int, str | None]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.subscriber_id, Delivery.message_id).where(Delivery.status == "sending")
        ).all()
    return {r.subscriber_id: r.message_id for r in rows}


def run_finished(engine: Any) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(DigestRun.finished_at)).scalar_one() is not None


def wait_for(recorder: Recorder, count: int, process: Any) -> None:
    while recorder.count() < count and process.is_alive():
        time.sleep(0.001)


def emails_of(engine: Any, ids: set[int]) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(select(Subscriber.email).where(Subscriber.id.in_(ids))))


# SIGKILL at random points, restarted until done, over ten runs: every subscriber
# gets the digest; nobody twice except deliveries that were `sending` at a kill (never
# more than connections × batch = 8), and each of those copies has the same Message-ID.
def test_sigkill_at_random_points_loses_nothing_and_doubles_only_sending(
    prepared: tuple[Path, Recorder, list[str]], tmp_path: Path
) -> None:
    template, recorder, readers = prepared
    rng = random.Random(8)
    kills = 0
    for trial in range(10):
        recorder.received.clear()
        config, engine = trial_database(tmp_path, template, trial, recorder.port)
        uncertain: set[int] = set()
        starts = 0
        while not run_finished(engine):
            process = start_sender(config, tmp_path / f"trial{trial}/log")
            starts += 1
            if starts == 1:  # one kill a trial, anywhere in the send (each start renders anew)
                wait_for(recorder, rng.randint(1, 39), process)
                process.kill()
                kills += 1
            process.join()
            in_flight = sending_rows(engine)
            assert len(in_flight) <= 2 * 4, "never more uncertain than connections × batch"
            uncertain |= set(in_flight)
            assert starts < 5, (tmp_path / f"trial{trial}/log").read_text()
        got = recorder.by_recipient()
        assert sorted(got) == readers, f"trial {trial}: every subscriber got the digest"
        doubled = {a for a, copies in got.items() if len(copies) > 1}
        assert doubled <= emails_of(engine, uncertain), "only `sending` rows may be resent"
        for address in doubled:
            assert len({c.message_id for c in got[address]}) == 1, "resent with the same id"
        engine.dispose()
    assert kills == 10


# SIGTERM and Ctrl-C finish and record the messages in flight: nothing is left
# `sending`, and the send that resumes the run doubles nobody.
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_leave_no_duplicate(
    prepared: tuple[Path, Recorder, list[str]], tmp_path: Path, signum: int
) -> None:
    template, recorder, readers = prepared
    rng = random.Random(signum)
    for trial in range(2):
        recorder.received.clear()
        config, engine = trial_database(tmp_path, template, trial, recorder.port)
        process = start_sender(config, tmp_path / f"trial{trial}/log")
        wait_for(recorder, rng.randint(1, 30), process)
        assert process.pid is not None
        os.kill(process.pid, signum)
        process.join()
        assert sending_rows(engine) == {}, "the messages in flight were recorded"
        if process.exitcode != 0:
            log = (tmp_path / f"trial{trial}/log").read_text()
            assert "stopped on request" in log and "run stays open" in log
        while not run_finished(engine):
            again = start_sender(config, tmp_path / f"trial{trial}/log")
            again.join()
            assert again.exitcode == 0
        got = recorder.by_recipient()
        assert sorted(got) == readers
        assert all(len(copies) == 1 for copies in got.values()), "nobody twice"
        engine.dispose()


# Two sends started together on SQLite: one sends, the other says why it does not.
def test_two_senders_on_sqlite_one_sends_the_other_says_why(
    prepared: tuple[Path, Recorder, list[str]], tmp_path: Path
) -> None:
    template, recorder, readers = prepared
    recorder.delay = 0.02
    config, engine = trial_database(tmp_path, template, 0, recorder.port)
    logs = [tmp_path / "trial0/a.log", tmp_path / "trial0/b.log"]
    senders = [start_sender(config, log) for log in logs]
    for sender in senders:
        sender.join()
    outcomes = sorted((s.exitcode, log.read_text()) for s, log in zip(senders, logs, strict=True))
    (ok, _), (refused, why) = outcomes
    assert ok == 0 and refused == 1
    assert "SQLite allows one `publisher digest send` at a time" in why
    assert "another sender (pid" in why
    got = recorder.by_recipient()
    assert sorted(got) == readers and all(len(c) == 1 for c in got.values())
    engine.dispose()


def _send_pg(url: str, schema: str, config: str, log: str) -> None:  # in the child
    _to_log(log)
    from publisher.mail.send import send_digest

    settings = load_settings(config)
    engine = db.make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    factory = db.make_sessionmaker(engine)
    reports = send_digest(factory, settings, NOW)
    print(reports)
    sys.stdout.flush()
    os._exit(0 if not reports[-1].stopped else 1)


# On PostgreSQL, three senders started together share one run (SKIP LOCKED): 3,000
# messages, nobody twice, nobody missed, one run.
def test_three_senders_on_postgresql_share_one_run(
    tmp_path: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_url()
    if not url:
        pytest.skip("no PostgreSQL")
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", "test-secret")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = db.make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        db.upgrade(engine)
        factory = db.make_sessionmaker(engine)
        recorder = Recorder()
        with RecordingServer(recorder):
            config = write_config(tmp_path, recorder.port, "sqlite:///unused.db")
            text_config = config.read_text().replace("connections: 2", "connections: 3")
            config.write_text(text_config.replace("batch: 4", "batch: 20"))
            settings: Settings = load_settings(config)
            import_target(factory, str(sample_dir), settings, NOW)
            readers = add_readers(factory, 3000)
            engine.dispose()
            senders = [
                fork.Process(
                    target=_send_pg, args=(url, schema, str(config), str(tmp_path / f"{n}.log"))
                )
                for n in range(3)
            ]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
            logs = [(tmp_path / f"{n}.log").read_text() for n in range(3)]
            assert [s.exitcode for s in senders] == [0, 0, 0], logs
        got = recorder.by_recipient()
        assert len(got) == 3000 and sorted(got) == readers, "no gap"
        assert all(len(c) == 1 for c in got.values()), "no duplicate"
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(DigestRun)) == 1
            assert conn.scalar(select(func.count()).where(Delivery.status == "sent")) == 3000
            assert conn.scalar(select(DigestRun.finished_at)) is not None
        assert sum("created=True" in log for log in logs) == 1, "one claim made the run"
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _sender_with_a_renderer(config: str, pipe: Any) -> None:  # in the child
    from publisher.mail.renderer import Renderer

    renderer = Renderer(load_settings(config), {}, NOW, "a key")
    pipe.send(renderer.pid)
    time.sleep(60)


def _gone(pid: int) -> bool:
    """No such process, or only its exit status left (a zombie nobody reaped yet)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


# The process that makes the messages ends with its sender, however the sender dies
# (SIGKILL leaves it no time to say so), and Ctrl-C or SIGTERM meant for the sender
# do not stop it before the sender has finished with it.
def test_the_renderer_dies_with_its_sender(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT)
    ours, theirs = fork.Pipe()
    sender = fork.Process(target=_sender_with_a_renderer, args=(str(config), theirs))
    sender.start()
    renderer = ours.recv()
    os.kill(renderer, signal.SIGTERM)
    os.kill(renderer, signal.SIGINT)
    time.sleep(0.2)
    assert not _gone(renderer), "the sender's signals are not the renderer's"
    sender.kill()
    sender.join()
    deadline = time.monotonic() + 5
    while not _gone(renderer) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(renderer)
