"""The send loop's book: claimed rows in, messages out; answers in, rows to record out.

:class:`Ledger` is pure but for :meth:`Ledger.save`, which writes what it
gathered in the caller's transaction (the checkpoint). A 4xx goes back to
``pending`` with a backoff (``FIRST_RETRY``, doubling, at most
``LAST_RETRY_GAP``) until ``email.retry_hours`` after the first one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from .. import queries
from ..audience import suppression
from ..audience.events import record_event
from ..audience.recipients import Recipient
from ..config import Settings
from ..errors import PublisherError
from ..models import DeliveryStatus, EventKind
from ..queries import Claimed
from .compose import TemplateSource
from .message import MessageTemplate
from .renderer import Job, Made
from .report import SendReport
from .transport import BatchResult, Outcome, Outgoing, Verdict, envelope_address

#: the first retry of a 4xx waits this long; each next one twice as long, at most an hour
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY_GAP = timedelta(hours=1)


def suppressed_of(session: Session, rows: Sequence[Claimed], salt: str) -> set[str]:
    """The addresses of ``rows`` on the suppression list, as it stands now."""
    return suppression.suppressed(session, salt, [r.email for r in rows]) if rows else set()


def _row(
    delivery_id: int,
    status: DeliveryStatus,
    at: datetime,
    message_id: str | None = None,
    error: str | None = None,
    attempts: int = 0,
    next_at: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """A delivery's answer as :func:`~publisher.queries.record_deliveries` writes it."""
    return {
        "b_id": delivery_id,
        "b_status": status,
        "b_message_id": message_id,
        "b_error": error,
        "b_at": at,
        "b_attempts": attempts,
        "b_next": next_at,
        "b_until": until,
    }


class Ledger:
    """Turns claimed rows into messages, and answers into rows to record."""

    def __init__(
        self,
        settings: Settings,
        editions: TemplateSource,
        report: SendReport,
    ) -> None:
        self.settings = settings
        self.editions = editions
        self.report = report
        self.horizon = timedelta(hours=settings.email.retry_hours)
        self.records: list[dict[str, Any]] = []
        #: each delivery the server accepted (its Message-ID is stored already), and when
        self.sent: list[int] = []
        self.sent_at: datetime | None = None
        self.bounces: list[dict[str, Any]] = []
        self.unsent: list[int] = []
        self.refused_in_a_row = 0
        #: the refusals (5xx) since the server last accepted a message: (the failed
        #: record, the bounce if the reply says the mailbox does not exist). Held, their
        #: rows still ``sending``, until the server accepts a message after them or the
        #: send ends on its own (then they stand); a send that stops before puts them
        #: back to ``pending`` (see :meth:`settle_streak`)
        self.streak: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        self.error: PublisherError | None = None
        #: delivery id → (message id, attempts so far, retry until, subscriber id, address)
        self.claimed: dict[int, tuple[str, int, datetime | None, int, str]] = {}
        #: delivery id → claimed row, between plan and made
        self.rows: dict[int, Claimed] = {}
        #: the editions the planned jobs use, by their topics
        self.templates: dict[frozenset[str], MessageTemplate] = {}

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
            _row(delivery_id, status, at, message_id, error, attempts, next_at, until)
        )

    def plan(self, rows: Sequence[Claimed], suppressed: set[str], now: datetime) -> list[Job]:
        """The message each claimed row needs (see :meth:`made`); a row that cannot have
        one is recorded now. ``self.templates`` holds the editions the jobs use."""
        jobs = []
        report = self.report
        for row in rows:
            if not row.receiving or row.email in suppressed:
                report.skipped += 1
                why = "suppressed" if row.email in suppressed else "unsubscribed meanwhile"
                self._record(row.id, DeliveryStatus.SKIPPED, now, error=why)
                continue
            template = self.editions.template(row.topics)
            if template is None:
                report.skipped += 1
                self._record(
                    row.id, DeliveryStatus.SKIPPED, now, error="no post about their topics"
                )
                continue
            self.templates[frozenset(row.topics)] = template
            recipient = Recipient(row.email, row.name, row.subscriber_id, row.topics)
            message_id = template.message_id(recipient)
            self.claimed[row.id] = (
                message_id,
                row.attempts,
                row.retry_until,
                row.subscriber_id,
                row.email,
            )
            self.rows[row.id] = row
            jobs.append(Job(row.id, row.topics, row.email, row.name, row.subscriber_id))
        return jobs

    def made(self, messages: Sequence[Made], now: datetime) -> list[Outgoing]:
        """The messages made for :meth:`plan`'s jobs, ready for the wire; one that could
        not be written fails its delivery, with the reason."""
        outgoing = []
        for made in messages:
            row = self.rows.pop(made.delivery_id)
            try:
                if made.data is None:
                    raise ValueError(made.error)
                address = envelope_address(row.email)
            except ValueError as e:
                message_id = self.claimed.pop(made.delivery_id)[0]
                self._cannot_write(row, message_id, str(e), now)
                continue
            outgoing.append(Outgoing(made.delivery_id, address, made.data))
        return outgoing

    def _cannot_write(self, row: Claimed, message_id: str, error: str, now: datetime) -> None:
        self.report.failed += 1
        why = f"not sent, the message cannot be written: {error}"
        self._record(row.id, DeliveryStatus.FAILED, now, message_id, why, row.attempts)
        self.report.errors = [*self.report.errors[-4:], f"{row.email}: {why}"]

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
            if self.streak:  # the server takes mail: they were refused
                self.settle_streak(refusing=False)
            self.refused_in_a_row = 0
            self.sent.append(outcome.delivery_id)
            self.sent_at = now
            return
        report.errors = [*report.errors[-4:], f"{address}: {outcome.reply}"]
        if outcome.verdict is Verdict.PERMANENT:
            self.refused_in_a_row += 1
            record = _row(
                outcome.delivery_id, DeliveryStatus.FAILED, now, message_id, outcome.reply, attempts
            )
            bounce = None
            if outcome.suppress:
                bounce = {
                    "subscriber_id": subscriber_id,
                    "address": address,
                    "reply": outcome.reply,
                    "run_id": self.report.run_id,
                    "at": now,
                }
            self.streak.append((record, bounce))
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

    def settle_streak(self, refusing: bool) -> None:
        """Settle the refusals held since the server last accepted a message.

        A server that refuses everyone (a relay that does not know the sender, a
        policy gone wrong) says nothing about the addresses, and after
        ``email.max_send_errors`` refusals in a row the send stops. Until the server
        has shown it takes mail, its refusals are held, their rows still ``sending``
        (so no other sender finishes the run meanwhile; after a crash they are sent
        again, which doubles nobody: they were refused).

        ``refusing`` False: the server accepted a message after them, or the send
        ended on its own: they stand (``failed``, and suppressed for a mailbox that
        does not exist). True: the send stops before either (the limit, a transport
        error, a stop): back to ``pending`` for the next send, nobody suppressed.
        """
        held, self.streak = self.streak, []
        self.refused_in_a_row = 0
        if refusing:
            self.unsent.extend(record["b_id"] for record, _ in held)
            self.report.reopened += len(held)
            return
        self.report.failed += len(held)
        for record, bounce in held:
            self.records.append(record)
            if bounce is not None:
                self.bounces.append(bounce)

    @property
    def pending(self) -> bool:
        """Is anything taken and not yet saved?"""
        return bool(self.records or self.sent or self.unsent or self.bounces)

    def not_handed(self, delivery_ids: Sequence[int]) -> None:
        """Claimed deliveries that never reached SMTP (the send ended while their
        messages were made): back to ``pending`` at the next save."""
        self.unsent.extend(delivery_ids)
        for delivery_id in delivery_ids:
            self.claimed.pop(delivery_id, None)
            self.rows.pop(delivery_id, None)

    def take_sent(self) -> tuple[datetime | None, list[int]]:
        """The deliveries the server accepted since the last save, and when, for the
        caller to record (:meth:`give_back_sent` if it could not)."""
        taken = self.sent_at, self.sent
        self.sent_at, self.sent = None, []
        return taken

    def give_back_sent(self, at: datetime | None, sent: list[int]) -> None:
        """Deliveries :meth:`take_sent` gave that were not recorded: the next save will."""
        self.sent = sent + self.sent
        self.sent_at = self.sent_at or at

    def save(self, session: Session) -> None:
        """The checkpoint: every answer so far, in the caller's transaction."""
        if self.sent_at is not None:
            queries.record_sent(session, self.sent_at, self.sent)
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
        self.records, self.sent, self.unsent, self.bounces = [], [], [], []
        self.sent_at = None
