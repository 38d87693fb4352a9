"""The send loop: a claimed run's deliveries, through several SMTP connections.

Stages, each a small function: claim a chunk of due deliveries (marking them
``sending``, committed) → render each recipient's message from the compiled
edition → hand slices of the chunk to the connections, in parallel
(:mod:`~publisher.mail.transport`) → record every answer in one executemany.
A row is never handed to SMTP while the database says ``pending``, and never
``sent`` before the server answered: after any crash only ``sending`` rows are
uncertain, at most ``2 × connections × batch`` of them (one chunk on the wire,
the next claimed and queued behind it), and they are resent with
the same Message-ID.

Entry points: :func:`send_digest` (claim the run, lock on SQLite, send; what
``publisher digest send`` and the scheduler call), :func:`send_run` (one
claimed run, see :mod:`~publisher.mail.runs`). Beside it: the book of
messages and answers (:mod:`~publisher.mail.ledger`), the rate limit
(:mod:`~publisher.mail.ratelimit`), ``--dry-run`` (:mod:`~publisher.mail.plan`)
and ``test-send`` (:mod:`~publisher.mail.testsend`).

Threads, not asyncio: each connection is a thread blocked in socket I/O
(which releases the GIL), and the main thread keeps the store. Measured on
two cores, see ``bench/send.py`` and the README.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..audience import suppression
from ..config import Settings
from ..db import transaction
from ..errors import PublisherError
from ..models import DeliveryStatus
from .compose import Editions, publish_web_version, run_posts, secret_key
from .digest import make_digest
from .ledger import Ledger, load_people
from .ratelimit import RateLimiter
from .report import SendReport
from .runs import Clock, RunClaim, SystemClock, claim_run, sender_lock, stale_after
from .signing import DkimSigner
from .transport import BatchResult, Connection, Outgoing
from .window import digest_settings

__all__ = ["ConnectionFactory", "SendReport", "send_digest", "send_run"]


ConnectionFactory = Callable[[], Connection]


def send_digest(
    factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    name: str | None = None,
    **options: Any,
) -> list[SendReport]:
    """Send digest ``name``: finish its open run if there is one, then the next period's.

    Each run is claimed with :func:`~publisher.mail.runs.claim_run`; ``options``
    go to :func:`send_run`. A report per run worked on.

    :raises EmptyDigest: when there is no open run and no post in the new window.
    :raises SenderBusy: on SQLite, when another sender is at work.
    """
    config = digest_settings(settings, name)
    reports: list[SendReport] = []
    with sender_lock(factory, config.name) as alone:
        while True:
            try:
                claim = claim_run(factory, settings, config.name, now)
            except PublisherError:  # EmptyDigest, an empty window
                if reports:  # after finishing an older run: nothing new since
                    return reports
                raise
            report = send_run(factory, settings, claim, alone=alone, **options)
            reports.append(report)
            # an older run just finished: the period since may have its own digest
            if claim.created or not report.finished:
                return reports


def send_run(
    factory: sessionmaker[Session],
    settings: Settings,
    claim: RunClaim,
    *,
    connect: ConnectionFactory | None = None,
    clock: Clock | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[SendReport], None] | None = None,
    alone: bool = False,
    wait_for_retries: bool = True,
) -> SendReport:
    """Send the run's due deliveries until none is left, a transport error, or ``stop``.

    :param connect: makes a connection (default: to ``email.smtp``).
    :param clock: the time, and waiting for retries (tests pass their own).
    :param stop: set it (SIGTERM, Ctrl-C) to finish the messages in flight and return.
    :param alone: no other sender can be at work (SQLite, under the lock): take back
        every ``sending`` row at once; otherwise only those older than :func:`stale_after`.
    :param wait_for_retries: wait for deferred (4xx) deliveries to fall due; else return.
    """
    clock = clock or SystemClock()
    stop = stop or threading.Event()
    smtp = settings.email.smtp
    sender = settings.email.sender_address
    connect = connect or (lambda: Connection(smtp, sender))
    report = SendReport(
        claim.name, claim.run_id, claim.period_start, claim.period_end, claim.created
    )
    with transaction(factory) as session:
        if alone:
            report.retaken = queries.reset_sending(session, claim.run_id)
        counts = queries.delivery_counts(session, claim.run_id)
        posts = run_posts(session, settings, claim.post_ids, clock.now())
    report.total = sum(counts.values())
    report.earlier = sum(counts.get(s.value, 0) for s in _SETTLED)
    config = digest_settings(settings, claim.name)
    digest = make_digest(claim.name, posts, claim.period_start, claim.period_end, config.order)
    editions = Editions(digest, config, settings, claim.started_at, secret_key(settings, True))
    everyone = editions.template(())
    assert everyone is not None  # make_digest refuses a digest without posts
    report.subject = everyone.rendered.subject
    publish_web_version(settings, everyone.rendered)
    dkim = DkimSigner(settings.email.dkim, settings.source) if settings.email.dkim else None
    work = Ledger(settings, editions, dkim, report)

    connections = [connect() for _ in range(smtp.connections)]
    with factory() as session:
        salt = suppression.load_salt(session)
    limiter = RateLimiter(smtp.rate_limit, clock, stop) if smtp.rate_limit else None
    chunk = smtp.connections * smtp.batch
    # One thread per connection (a connection serves one slice at a time). Two chunks
    # overlap: while one is on the wire, the main thread records the one before and
    # claims and renders the next, in a single transaction.
    lanes = [ThreadPoolExecutor(1, thread_name_prefix="smtp") for _ in connections]
    on_wire: list[Future[BatchResult]] = []
    cursor = 0  # the last delivery id claimed: each claim starts past it
    ready: list[Outgoing] = []
    try:
        while True:
            handed = [
                lane.submit(_send_slice, connection, ready[i :: len(lanes)], limiter)
                for i, (lane, connection) in enumerate(zip(lanes, connections, strict=True))
                if ready[i :: len(lanes)]
            ]
            ready = []
            for job in on_wire:
                work.take(job.result(), clock.now())
            on_wire = handed
            halt = _halt(work, report, settings, stop)
            now = clock.now()
            rows: list[Any] = []
            with transaction(factory) as session:
                work.save(session)
                if not halt:
                    rows = queries.claim_deliveries(session, claim.run_id, now, chunk, None, cursor)
                    if not rows and cursor:  # past the end: retries and released rows behind
                        rows = queries.claim_deliveries(session, claim.run_id, now, chunk)
                    if rows:
                        cursor = rows[-1].id
                    if not rows and not alone:
                        old = now - stale_after(settings)
                        rows = queries.claim_deliveries(session, claim.run_id, now, chunk, old)
                        report.retaken += len(rows)
                    people = load_people(session, claim.name, [r.subscriber_id for r in rows], salt)
            if rows:
                ready = work.prepare(rows, people, now)
            if progress is not None:
                progress(report)
            if halt:
                for job in on_wire:
                    work.take(job.result(), clock.now())
                with transaction(factory) as session:
                    work.save(session)
                if progress is not None:
                    progress(report)
                break
            if not rows and not on_wire:
                if not _wait_or_finish(factory, claim, report, clock, stop, wait_for_retries):
                    break
    finally:
        for lane in lanes:
            lane.shutdown(wait=True)
        for connection in connections:
            connection.close()
    return report


def _halt(work: Ledger, report: SendReport, settings: Settings, stop: threading.Event) -> bool:
    """Should the sender claim nothing more? Says why in ``report.stopped``."""
    if work.error is not None:
        report.stopped = str(work.error)
    elif work.refused_in_a_row >= settings.email.max_send_errors:
        report.stopped = (
            f"the server refused {work.refused_in_a_row} messages in a row (the last: "
            f"{report.errors[-1]}); it may be refusing everyone: check its logs, "
            "then run `publisher digest send` again (email.max_send_errors)"
        )
    elif stop.is_set():
        report.stopped = "stopped on request; run `publisher digest send` to resume"
    return report.stopped is not None


_SETTLED = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED)


def _wait_or_finish(
    factory: sessionmaker[Session],
    claim: RunClaim,
    report: SendReport,
    clock: Clock,
    stop: threading.Event,
    wait: bool,
) -> bool:
    """Nothing is due: finish the run, or wait for the next retry. Whether to go on."""
    with transaction(factory) as session:
        if queries.finish_run(session, claim.run_id, clock.now()):
            report.finished = True
            return False
        due = queries.next_retry_at(session, claim.run_id)
    if due is None or not wait:  # the rest is another sender's, in flight
        return False
    clock.wait((due - clock.now()).total_seconds(), stop)
    return True


def _send_slice(
    connection: Connection, messages: Sequence[Outgoing], limiter: RateLimiter | None
) -> BatchResult:
    connection.pace = limiter.acquire if limiter else None
    return connection.send_batch(messages)
