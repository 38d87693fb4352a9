"""Durable send state: a digest's run, claimed once per period, and its deliveries.

The API the CLI and the scheduler call::

    claim = claim_run(factory, settings, name, now)    # -> RunClaim (or EmptyDigest)
    with sender_lock(factory, claim.name):              # SQLite: one sender at a time
        report = send_run(factory, settings, claim)     # publisher.mail.send

:func:`claim_run` either joins the digest's open run (any sender, any
machine) or creates the run for the next period: the window, the ids of its
posts (so a resend renders the same digest, with the same ``Date`` and
Message-IDs) and one ``pending`` delivery per active subscriber, all in one
transaction. ``digest_runs`` has a unique ``(name, period_start)``: when two
senders or schedulers race to create the same period's run, the loser's
insert fails and it joins the winner's run. A run of an empty window (the
scheduler's "nothing new" note, ``empty: note``) has no posts; it is claimed,
sent and finished like any other, so it closes its window like a digest.

A delivery goes ``pending`` → ``sending`` (committed before its message is
handed to SMTP) → ``sent`` / ``failed`` / ``skipped`` (after the server's
answer); a 4xx puts it back to ``pending`` with a ``next_attempt_at``, until
``email.retry_hours`` after its first 4xx. So after a crash only ``sending``
rows are uncertain, at most ``email.smtp.connections × email.smtp.batch``
(what the connections hold: on the wire, or queued behind it), plus the
refusals a sender holds until the server accepts a message after them (at most
``email.max_send_errors``; resent, they double nobody: they were refused).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..config import Settings
from ..db import transaction
from ..errors import NotFound, SenderBusy
from ..models import DeliveryStatus, DigestRun
from .digest import empty_window
from .messageids import message_id_affixes
from .window import digest_settings, digest_window, run_before


class Clock(Protocol):
    """Time for the send loop; tests pass one they control, so nothing waits for real."""

    def now(self) -> datetime: ...

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Wait ``seconds``, or less if ``stop`` is set."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        if seconds > 0:
            stop.wait(seconds)


@dataclass(frozen=True)
class RunClaim:
    """A run a sender works on: created by this claim, or joined."""

    run_id: int
    name: str
    period_start: datetime
    period_end: datetime
    #: the messages' Date, fixed when the run was created
    started_at: datetime
    post_ids: tuple[int, ...]
    #: this claim made the run (else it joined one made before, or by another sender)
    created: bool

    @property
    def is_note(self) -> bool:
        """The run of an empty window: its message is the "nothing new" note."""
        return not self.post_ids

    @classmethod
    def of(cls, run: DigestRun, created: bool) -> RunClaim:
        ids = tuple(json.loads(run.post_ids)) if run.post_ids else ()
        return cls(run.id, run.name, run.period_start, run.period_end, run.started_at, ids, created)


def claim_run(
    factory: sessionmaker[Session],
    settings: Settings,
    name: str | None,
    now: datetime,
    *,
    note_if_empty: bool = False,
    join_waiting: bool = True,
) -> RunClaim:
    """The run to send now: the digest's run for the period ending at ``now`` (a
    schedule's send, resumed; finished by another sender, perhaps); else its oldest
    open run with deliveries due or in flight; else a new one for the next period
    (since the newest run ended), with a ``pending`` delivery per active subscriber.

    An open run whose only deliveries left wait for a retry later (4xx) does not hold
    up the next period's: its retries are sent when they fall due, by whichever send
    comes then (``join_waiting``: with no new post, join it and wait; else, as the
    scheduler, say that the window is empty).

    :param note_if_empty: an empty window makes a run without posts, whose
        deliveries are the "nothing new" note; it closes the window like a digest.
        The scheduler passes it for ``empty: note`` newsletters at their send
        time; a staff member's ``digest send`` never does, so sending twice in a
        row never mails "nothing new" a minute after the digest.
    :raises EmptyDigest: when no post was published in a new run's window and
        ``note_if_empty`` is false (no run is made).
    """
    config = digest_settings(settings, name)
    with transaction(factory) as session:
        run = queries.run_ending_at(session, config.name, now)
        if run is not None:
            return RunClaim.of(run, created=False)
        waiting = queries.unfinished_runs(session, config.name)
        for run in waiting:
            if queries.run_at_work(session, run.id, now):
                return RunClaim.of(run, created=False)
        start, end = digest_window(session, config, settings, now)
        posts = queries.posts_between(session, start, end, now, run_before(session, config, start))
        if not posts and not note_if_empty:
            if waiting and join_waiting:
                return RunClaim.of(waiting[0], created=False)
            raise empty_window(config.name, start, end)
        post_ids = json.dumps([p.id for p in posts])
    try:
        with transaction(factory) as session:
            run = DigestRun(
                name=config.name,
                period_start=start,
                period_end=end,
                started_at=now,
                post_ids=post_ids,
            )
            session.add(run)
            session.flush()
            affixes = message_id_affixes(config.name, end, settings.site.domain)
            queries.insert_pending_deliveries(session, run.id, config.name, now, affixes)
            made = RunClaim.of(run, created=True)
    except IntegrityError:
        # another sender made this period's run a moment ago: join it
        with factory() as session:
            run = queries.run_by_period(session, config.name, start)
            if run is None:
                raise
            return RunClaim.of(run, created=False)
    with transaction(factory) as session:
        queries.analyze_deliveries(session)
    return made


def _sqlite_file(factory: sessionmaker[Session]) -> Path | None:
    bind = factory.kw.get("bind")
    url = getattr(bind, "url", None)
    if url is None or url.get_backend_name() != "sqlite" or not url.database:
        return None
    if url.database == ":memory:":
        return None
    return Path(url.database)


@contextmanager
def sender_lock(factory: sessionmaker[Session], name: str) -> Iterator[bool]:
    """On SQLite, make sure this is the only sender; PostgreSQL needs no lock.

    Yields whether this sender is alone (and may therefore take back the
    ``sending`` rows a crashed sender left). The lock is an ``flock`` on a
    file beside the database, which the kernel releases when the process
    dies, whatever kills it.

    :raises SenderBusy: saying who holds it and what to do.
    """
    path = _sqlite_file(factory)
    if path is None:
        yield False
        return
    lock = path.with_name(path.name + ".send-lock")
    handle = open(lock, "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            raise SenderBusy(
                f"another sender ({holder}) is sending from {path}; SQLite allows one "
                f"`publisher digest send` at a time (the lock is {lock}). It resumes "
                "whatever is left: wait for it to finish, or use PostgreSQL to run several "
                "senders together"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, digest {name}, since {time.strftime('%H:%M:%S')}")
        handle.flush()
        yield True
    finally:
        handle.close()


def _holder(handle: IO[str]) -> str:
    """Who holds the lock, as the holder wrote it into the lock file (it writes just
    after taking the lock: give it a moment)."""
    for _ in range(50):
        handle.seek(0)
        written = handle.read().strip()
        if written:
            return written
        time.sleep(0.01)
    return "another process"


def stale_after(settings: Settings) -> timedelta:
    """How long a ``sending`` row that no sender marked (claimed before senders had
    numbers, :mod:`.senders`) may stay so before another sender (PostgreSQL) takes it
    for a crashed one's: well past any answer the server could still give."""
    return timedelta(seconds=max(300.0, settings.email.smtp.timeout * 10))


@dataclass(frozen=True)
class RunStatus:
    """A run as ``publisher digest status`` shows it."""

    run_id: int
    name: str
    period_start: datetime
    period_end: datetime
    started_at: datetime
    finished_at: datetime | None
    #: state → number of deliveries
    counts: dict[str, int]
    #: ``sending`` deliveries: handed to SMTP, or about to be, with no answer recorded
    uncertain: list[Any]
    #: the latest failed or deferred deliveries, with the server's reply
    errors: list[Any]


def run_statuses(
    factory: sessionmaker[Session], name: str | None, run_id: int | None, limit: int = 5
) -> list[RunStatus]:
    """The latest runs (of ``name``, or run ``run_id``), newest first.

    :raises NotFound: for a run id that does not exist.
    """
    with factory() as session:
        if run_id is not None:
            found = session.get(DigestRun, run_id)
            if found is None:
                raise NotFound(f"no digest run {run_id}; `publisher digest status` lists them")
            runs = [found]
        else:
            runs = queries.runs_of(session, name, limit)
        statuses = []
        for run in runs:
            uncertain = queries.deliveries_in(session, run.id, [DeliveryStatus.SENDING], 20)
            errors = queries.deliveries_in(
                session, run.id, [DeliveryStatus.FAILED, DeliveryStatus.PENDING], 50
            )
            statuses.append(
                RunStatus(
                    run.id,
                    run.name,
                    run.period_start,
                    run.period_end,
                    run.started_at,
                    run.finished_at,
                    queries.delivery_counts(session, run.id),
                    uncertain,
                    [e for e in errors if e.error][:5],
                )
            )
        return statuses
