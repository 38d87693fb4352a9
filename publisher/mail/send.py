"""The send loop: a claimed run's deliveries, through several SMTP connections.

Each connection works in a thread of its own (a *lane*,
:mod:`~publisher.mail.lanes`) and holds at most ``email.smtp.batch`` messages:
two groups of half that, one on the wire and one queued behind it. The main
thread keeps the store: when lanes have answered groups, it records every
answer and claims the rows for the free groups in one transaction (marking
them ``sending``). Once that is committed, the renderer, a process of its own
(:mod:`~publisher.mail.renderer`), makes their messages while the main thread
takes its next turn (records the answers that came meanwhile, claims for the
lanes that freed up); at the end of that turn it hands the made groups to the
places their lanes kept for them. So the store's work and the messages' run
side by side rather than in turn. A row is never handed to SMTP while the
database says ``pending``, and never ``sent`` before the server answered; a
row's answer and its replacement's claim commit together. So after any crash
only ``sending`` rows are uncertain, at most ``connections × batch`` of them
(plus the refusals a send holds until the server accepts a message after them,
at most ``email.max_send_errors``: see :meth:`.Ledger.settle_streak`), and they
are resent with the same Message-ID.

Entry points: :func:`send_digest` (claim the run, lock on SQLite, send; what
``publisher digest send`` and the scheduler call), :func:`send_run` (one
claimed run, see :mod:`~publisher.mail.runs`). Beside it: its turns at the
store (:mod:`~publisher.mail.claims`), the book of messages and answers
(:mod:`~publisher.mail.ledger`), the run's stored
editions (:mod:`~publisher.mail.snapshot`), the rate limit
(:mod:`~publisher.mail.ratelimit`), ``--dry-run`` (:mod:`~publisher.mail.plan`)
and ``test-send`` (:mod:`~publisher.mail.testsend`).

Threads for the connections, not asyncio: each is blocked in socket I/O most
of the time (which releases the GIL). One process more for making the
messages: the store's work and the messages' each cost about half of a
message's CPU, and threads of one process take turns with the interpreter.
Measured on two cores, see ``bench/send.py`` and the README.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..audience import suppression
from ..config import Settings
from ..db import transaction
from ..errors import PublisherError
from ..models import DeliveryStatus
from .claims import Claiming, autocommit, hold_number, save_and_claim
from .compose import secret_key
from .lanes import DEPTH, Lanes
from .ledger import Ledger
from .messageids import message_id_affixes
from .ratelimit import RateLimiter
from .renderer import Renderer
from .report import SendReport
from .runs import Clock, RunClaim, SystemClock, claim_run, sender_lock
from .snapshot import RunEditions
from .transport import Connection
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
            # an older run just finished: the period since may have its own digest (not
            # so once the run of the period ending now is done)
            if claim.created or not report.finished or claim.period_end >= now:
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
        every ``sending`` row at once; otherwise (PostgreSQL) only those whose sender is
        gone (:mod:`.senders`), at the end of the run.
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
    affixes = message_id_affixes(claim.name, claim.period_end, settings.site.domain)
    with transaction(factory) as session:
        queries.fill_message_ids(session, claim.run_id, affixes)  # runs made without them
        if alone:
            report.retaken = queries.reset_sending(session, claim.run_id)
        counts = queries.delivery_counts(session, claim.run_id)
    report.total = sum(counts.values())
    report.earlier = sum(counts.get(s.value, 0) for s in _SETTLED)
    # the run's stored editions (the first sender renders and stores each one)
    editions = RunEditions(factory, settings, claim, secret_key(settings, True))
    if claim.created:
        editions.prepare_all()
    everyone = editions.template(())
    assert everyone is not None  # everyone's edition holds every post (or the note)
    report.subject = everyone.rendered.subject
    work = Ledger(settings, editions, report)

    with factory() as session:
        salt = suppression.load_salt(session)
    limiter = RateLimiter(smtp.rate_limit, clock, stop) if smtp.rate_limit else None
    # each connection holds at most ``batch`` claimed messages: two groups, one on the
    # wire and one queued behind it (see mail/lanes)
    group = max(1, smtp.batch // DEPTH)
    cursor = 0  # the last delivery id claimed: each claim starts past it
    dry = False  # nothing was due at the last claim: claim again once the lanes are empty
    # forked before the loop's threads start (it takes the editions compiled so far)
    renderer = Renderer(settings, editions.compiled(), claim.started_at, editions.key)
    lanes = Lanes([], None)
    #: the lanes whose reserved places the group being made goes to (None: none is)
    making: list[int] | None = None
    being_made: list[int] = []  # its deliveries
    #: deliveries claimed this turn and not yet given to the renderer
    just_claimed: list[int] = []
    try:
        lanes = Lanes(
            [connect() for _ in range(smtp.connections)], limiter.acquire if limiter else None
        )
        with factory() as session, contextlib.ExitStack() as stack:
            fast = autocommit(session, stack)
            number = hold_number(fast, stack)
            claiming = Claiming(settings, claim, report, alone, salt, number)
            while True:
                # wait for an answer when no lane can take a group (or there is none to
                # give), unless a group is being made: it goes out as soon as it is
                idle = _halt(work, report, settings, stop) or dry or not lanes.room
                for result in lanes.answers(block=lanes.busy and idle and making is None):
                    work.take(result, clock.now())
                if making is not None and renderer.ready():  # made already: out it goes
                    _hand_made(renderer, work, lanes, making, group, clock.now())
                    making, being_made = None, []
                halt = _halt(work, report, settings, stop)
                if halt:
                    lanes.halted.set()
                wanted = [] if halt or dry else lanes.room
                now = clock.now()
                # every answer so far recorded, the rows for the free groups claimed
                rows: list[queries.Claimed] = []
                suppressed: set[str] = set()
                if wanted or work.pending:
                    rows, cursor, suppressed = save_and_claim(
                        session,
                        fast,
                        work,
                        claiming,
                        now,
                        len(wanted) * group,
                        cursor,
                    )
                just_claimed = [row.id for row in rows]
                if wanted:
                    dry = len(rows) < len(wanted) * group
                jobs = work.plan(rows, suppressed, now)
                if making is not None:
                    # made while this thread kept the store; their claim was committed on
                    # the turn before: hand them over
                    _hand_made(renderer, work, lanes, making, group, now)
                    making, being_made = None, []
                if jobs:  # committed: made by the renderer while the next turn runs
                    being_made = [job.delivery_id for job in jobs]
                    renderer.submit(jobs, work.templates)
                    making = wanted
                    lanes.reserve(wanted)
                just_claimed = []  # given to the renderer, or recorded (skipped)
                if progress is not None:
                    progress(report)
                if lanes.busy or making is not None or (wanted and not dry):
                    continue
                if halt:
                    break
                if not _wait_or_finish(
                    session, work, claim, report, clock, stop, wait_for_retries, progress
                ):
                    break
                dry = False
    finally:
        renderer.close()
        for result in lanes.close():  # after an unexpected error: the answers in flight
            work.take(result, clock.now())
        # (an error): never handed to SMTP, so not uncertain
        work.not_handed(being_made + just_claimed)
        # refusals the server has not shown to be the addresses' (it accepted nothing
        # after them, and the send did not end on its own): back to pending
        work.settle_streak(refusing=True)
        if work.pending:  # record them if the store still can (the error goes on)
            with contextlib.suppress(Exception), transaction(factory) as session:
                work.save(session)
    return report


def _hand_made(
    renderer: Renderer, work: Ledger, lanes: Lanes, making: list[int], group: int, now: datetime
) -> None:
    """The group the renderer made, a slice of ``group`` messages to each place kept for
    it (``making``: their lanes, in order)."""
    ready = work.made(renderer.collect(), now)
    for n, lane in enumerate(making):
        lanes.hand(lane, ready[n * group : (n + 1) * group])


def _halt(work: Ledger, report: SendReport, settings: Settings, stop: threading.Event) -> bool:
    """Should the sender claim nothing more? Says why in ``report.stopped``."""
    if work.error is not None:
        report.stopped = str(work.error)
    elif work.refused_in_a_row >= settings.email.max_send_errors:
        report.stopped = (
            f"the server refused {work.refused_in_a_row} messages in a row (the last: "
            f"{report.errors[-1]}); it may be refusing everyone: check its logs, then run "
            "`publisher digest send` again (email.max_send_errors; the refusals it has not "
            "shown to be the addresses' are kept to send again)"
        )
    elif stop.is_set():
        report.stopped = "stopped on request; run `publisher digest send` to resume"
    return report.stopped is not None


_SETTLED = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED)


def _wait_or_finish(
    session: Session,
    work: Ledger,
    claim: RunClaim,
    report: SendReport,
    clock: Clock,
    stop: threading.Event,
    wait: bool,
    progress: Callable[[SendReport], None] | None,
) -> bool:
    """Nothing is due and nothing in flight: finish the run, or wait for the next retry.
    Whether to go on."""
    work.settle_streak(refusing=False)  # the send ended on its own: the refusals stand
    with session.begin():
        work.save(session)
        if queries.finish_run(session, claim.run_id, clock.now()):
            report.finished = True
            return False
        due = queries.next_retry_at(session, claim.run_id)
    if due is None or not wait:  # the rest is another sender's, in flight
        return False
    report.waiting_until = due
    if progress is not None:
        progress(report)  # says so: the send may wait for minutes
    clock.wait((due - clock.now()).total_seconds(), stop)
    report.waiting_until = None
    return True
