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
claimed run, see :mod:`~publisher.mail.runs`), :func:`send_test`.

Threads, not asyncio: each connection is a thread blocked in socket I/O
(which releases the GIL), and the main thread keeps the store. Measured on
two cores, see ``bench/send.py`` and the README.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..addresses import normalise_address
from ..audience import suppression
from ..audience.events import record_event
from ..audience.recipients import Recipient, iter_recipients, recipient_for
from ..config import Settings
from ..db import transaction
from ..errors import PublisherError
from ..models import DeliveryStatus, EventKind, SubscriberStatus
from .compose import Composed, Editions, compose, publish_web_version, run_posts, secret_key
from .digest import make_digest
from .message import dot_stuff
from .runs import Clock, RunClaim, SystemClock, claim_run, sender_lock, stale_after
from .signing import DkimSigner
from .smtp import Mailer
from .transport import BatchResult, Connection, Outcome, Outgoing, Verdict, envelope_address
from .window import digest_settings

log = logging.getLogger(__name__)

#: the first retry of a 4xx waits this long; each next one twice as long, at most an hour
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY_GAP = timedelta(hours=1)


def send_test(
    factory: sessionmaker[Session],
    settings: Settings,
    mailer: Mailer,
    to: str,
    now: datetime,
    name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Composed:
    """Send the digest as it stands to one address; nothing is recorded."""
    address = normalise_address(to)
    config = digest_settings(settings, name)
    key = secret_key(settings, required=True)
    with factory() as session:
        recipient = recipient_for(session, address, config.name)
        editions, composed = compose(session, settings, config, recipient, now, since, until, key)
    everyone = editions.template(())
    assert everyone is not None
    publish_web_version(settings, everyone.rendered)
    mailer.send(settings.email.sender_address, address, composed.message)
    return composed


@dataclass
class SendReport:
    """What a sender did with one run. ``finished``: every delivery is settled."""

    name: str
    run_id: int
    period_start: datetime
    period_end: datetime
    #: this sender created the run (else it joined or resumed one)
    created: bool
    subject: str = ""
    #: deliveries in the run
    total: int = 0
    #: settled before this sender started (an earlier attempt, or another sender)
    earlier: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    #: 4xx answers, each retried later (until email.retry_hours)
    deferred: int = 0
    #: ``sending`` rows of a crashed sender this one took back (SQLite: all; PostgreSQL: stale)
    retaken: int = 0
    #: handed to the server without an answer when the connection died: left ``sending``
    uncertain: int = 0
    #: refusals, the latest last (a few)
    errors: list[str] = field(default_factory=list)
    #: why the sender stopped before the run finished (a transport error, a stop signal)
    stopped: str | None = None
    finished: bool = False

    @property
    def done(self) -> int:
        return self.earlier + self.sent + self.failed + self.skipped


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
    work = _Work(settings, editions, dkim, report)

    connections = [connect() for _ in range(smtp.connections)]
    with factory() as session:
        salt = suppression.load_salt(session)
    limiter = _RateLimiter(smtp.rate_limit, clock, stop) if smtp.rate_limit else None
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
                    people = _people(session, claim.name, [r.subscriber_id for r in rows], salt)
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


def _halt(work: _Work, report: SendReport, settings: Settings, stop: threading.Event) -> bool:
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
    connection: Connection, messages: Sequence[Outgoing], limiter: _RateLimiter | None
) -> BatchResult:
    connection.pace = limiter.acquire if limiter else None
    return connection.send_batch(messages)


@dataclass(frozen=True)
class _Person:
    id: int
    email: str
    name: str | None
    #: the tags they follow in this newsletter (empty: all); None: not receiving it now
    topics: tuple[str, ...] | None
    suppressed: bool


def _people(session: Session, newsletter: str, ids: Sequence[int], salt: str) -> dict[int, _Person]:
    """The claimed subscribers as they stand now (they may have left since the claim)."""
    if not ids:
        return {}
    found: dict[int, Any] = {}
    topics: dict[int, list[str]] = {}
    for row in queries.delivery_recipients(session, ids, newsletter):
        found[row.id] = row
        if row.receives is not None and row.status == SubscriberStatus.ACTIVE:
            names = topics.setdefault(row.id, [])
            if row.topic is not None:
                names.append(row.topic)
    blocked = suppression.suppressed(session, salt, [r.email for r in found.values()])
    return {
        row.id: _Person(
            row.id,
            row.email,
            row.name,
            tuple(sorted(topics[row.id])) if row.id in topics else None,
            row.email in blocked,
        )
        for row in found.values()
    }


class _Work:
    """Turns claimed rows into messages, and answers into rows to record."""

    def __init__(
        self,
        settings: Settings,
        editions: Editions,
        dkim: DkimSigner | None,
        report: SendReport,
    ) -> None:
        self.settings = settings
        self.editions = editions
        self.dkim = dkim
        self.report = report
        self.horizon = timedelta(hours=settings.email.retry_hours)
        self.records: list[dict[str, Any]] = []
        self.bounces: list[dict[str, Any]] = []
        self.unsent: list[int] = []
        self.refused_in_a_row = 0
        self.error: PublisherError | None = None
        #: delivery id → (message id, attempts so far, retry until, subscriber id, address)
        self.claimed: dict[int, tuple[str, int, datetime | None, int, str]] = {}

    def _record(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        at: datetime,
        message_id: str | None = None,
        error: str | None = None,
        attempts: int = 0,
        next_at: datetime | None = None,
        until: datetime | None = None,
    ) -> None:
        self.records.append(
            {
                "b_id": delivery_id,
                "b_status": status,
                "b_message_id": message_id,
                "b_error": error,
                "b_at": at,
                "b_attempts": attempts,
                "b_next": next_at,
                "b_until": until,
            }
        )

    def prepare(
        self, rows: Sequence[Any], people: dict[int, _Person], now: datetime
    ) -> list[Outgoing]:
        """Each claimed row's message; a row that cannot have one is recorded now."""
        outgoing = []
        report = self.report
        for row in rows:
            person = people.get(row.subscriber_id)
            if person is None or person.topics is None or person.suppressed:
                report.skipped += 1
                why = "suppressed" if person and person.suppressed else "unsubscribed meanwhile"
                self._record(row.id, DeliveryStatus.SKIPPED, now, error=why)
                continue
            topics = person.topics
            recipient = Recipient(person.email, person.name, person.id, topics)
            template = self.editions.template(topics)
            if template is None:
                report.skipped += 1
                self._record(
                    row.id, DeliveryStatus.SKIPPED, now, error="no post about their topics"
                )
                continue
            message_id = template.message_id(recipient)
            try:
                if self.dkim is None:
                    data = template.render(recipient, stuffed=True)
                else:
                    data = dot_stuff(self.dkim.sign(template.render(recipient)))
                address = envelope_address(person.email)
            except Exception as e:  # noqa: BLE001 - whatever the encoder says, one delivery fails
                report.failed += 1
                why = f"not sent, the message cannot be written: {e}"
                self._record(row.id, DeliveryStatus.FAILED, now, message_id, why, row.attempts)
                report.errors = [*report.errors[-4:], f"{person.email}: {why}"]
                continue
            self.claimed[row.id] = (
                message_id,
                row.attempts,
                row.retry_until,
                person.id,
                person.email,
            )
            outgoing.append(Outgoing(row.id, address, data))
        return outgoing

    def take(self, result: BatchResult, now: datetime) -> None:
        """Record a connection's answers."""
        for outcome in result.outcomes:
            self._answer(outcome, now)
        self.unsent.extend(result.unsent)
        self.report.uncertain += len(result.uncertain)  # they stay `sending`
        for delivery_id in (*result.unsent, *result.uncertain):
            self.claimed.pop(delivery_id, None)
        if result.error is not None and self.error is None:
            self.error = result.error

    def _answer(self, outcome: Outcome, now: datetime) -> None:
        report = self.report
        message_id, attempts, until, subscriber_id, address = self.claimed.pop(outcome.delivery_id)
        if outcome.verdict is Verdict.SENT:
            report.sent += 1
            self.refused_in_a_row = 0
            self._record(outcome.delivery_id, DeliveryStatus.SENT, now, message_id, None, attempts)
            return
        report.errors = [*report.errors[-4:], f"{address}: {outcome.reply}"]
        if outcome.verdict is Verdict.PERMANENT:
            report.failed += 1
            self.refused_in_a_row += 1
            self._record(
                outcome.delivery_id, DeliveryStatus.FAILED, now, message_id, outcome.reply, attempts
            )
            if outcome.suppress:
                self.bounces.append(
                    {
                        "subscriber_id": subscriber_id,
                        "address": address,
                        "reply": outcome.reply,
                        "run_id": self.report.run_id,
                        "at": now,
                    }
                )
            return
        attempts += 1
        until = until or now + self.horizon
        if now >= until:
            report.failed += 1
            hours = self.settings.email.retry_hours
            why = f"gave up after {attempts} attempts over {hours:g} h: {outcome.reply}"
            self._record(
                outcome.delivery_id,
                DeliveryStatus.FAILED,
                now,
                message_id,
                why,
                attempts,
                None,
                until,
            )
            return
        report.deferred += 1
        gap = min(FIRST_RETRY * 2 ** (attempts - 1), LAST_RETRY_GAP)
        self._record(
            outcome.delivery_id,
            DeliveryStatus.PENDING,
            now,
            message_id,
            outcome.reply,
            attempts,
            min(now + gap, until),
            until,
        )

    def save(self, session: Session) -> None:
        """The checkpoint: every answer so far, in the caller's transaction."""
        queries.record_deliveries(session, self.records)
        queries.release_deliveries(session, self.unsent)
        bounced = queries.mark_bounced(session, [b["subscriber_id"] for b in self.bounces])
        for bounce in self.bounces:
            if bounce["subscriber_id"] in bounced:
                record_event(
                    session,
                    bounce["subscriber_id"],
                    EventKind.BOUNCE,
                    bounce["at"],
                    self.report.name,
                    detail=f"at SMTP time: {bounce['reply']}",
                )
        self.records, self.unsent, self.bounces = [], [], []


class _RateLimiter:
    """At most ``rate`` messages a second over all connections (evenly spaced)."""

    def __init__(self, rate: float, clock: Clock, stop: threading.Event) -> None:
        self.gap = 1.0 / rate
        self.clock = clock
        self.stop = stop
        self.lock = threading.Lock()
        self.next_slot: datetime | None = None

    def acquire(self) -> None:
        with self.lock:
            now = self.clock.now()
            slot = max(now, self.next_slot or now)
            self.next_slot = slot + timedelta(seconds=self.gap)
        self.clock.wait((slot - now).total_seconds(), self.stop)


@dataclass(frozen=True)
class PlannedEdition:
    #: the topics of the subscribers who get it (empty: everything)
    topics: tuple[str, ...]
    subscribers: int
    #: posts in this edition; 0: they get no message (no post about their topics)
    posts: int


def plan_send(
    factory: sessionmaker[Session], settings: Settings, now: datetime, name: str | None = None
) -> tuple[str, list[PlannedEdition]]:
    """``digest send --dry-run``: who would get which edition; nothing is written.

    The open run's posts if there is one, else the next window's. A line
    describing the run, and one entry per set of topics.

    :raises EmptyDigest: when there is no open run and no post in the new window.
    """
    config = digest_settings(settings, name)
    with factory() as session:
        run = queries.unfinished_run(session, config.name)
        if run is not None:
            claim = RunClaim.of(run, created=False)
            posts = run_posts(session, settings, claim.post_ids, now)
            start, end = run.period_start, run.period_end
            what = f"resume run {run.id}"
        else:
            from .compose import digest_posts
            from .window import digest_window

            start, end = digest_window(session, config, settings, now)
            posts = digest_posts(session, settings, start, end, now)
            what = "create a new run"
    digest = make_digest(config.name, posts, start, end, config.order)
    editions = Editions(digest, config, settings, now, secret_key(settings, False))
    groups: dict[tuple[str, ...], int] = {}
    for recipient in iter_recipients(factory, newsletter=config.name):
        groups[recipient.topics] = groups.get(recipient.topics, 0) + 1
    plan = []
    for topics, count in sorted(groups.items()):
        template = editions.template(topics)
        size = 0 if template is None else len(template.rendered.digest.posts)
        plan.append(PlannedEdition(topics, count, size))
    window = f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC"
    return f"Would {what} of '{config.name}' for {window} ({len(posts)} posts)", plan
