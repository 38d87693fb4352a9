"""The scheduler's one seam to the send path (:mod:`publisher.mail.send`).

Everything the scheduler needs of a send is :func:`make_send_function`: send
a newsletter for the period ending at a fire time (finishing its open run
first), stop at a message boundary when asked, say what it did.
"""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from ..config import DigestSettings, Settings
from ..errors import PublisherError
from ..mail.runs import claim_run, sender_lock
from ..mail.send import ConnectionFactory, SendReport, send_run
from .newsletters import SendFunction, SendResult


def make_send_function(
    factory: sessionmaker[Session],
    settings: Settings,
    connect: ConnectionFactory | None = None,
) -> SendFunction:
    """A :data:`SendFunction` over the send pipeline (``connect``: tests' own connections)."""

    def send_newsletter(config: DigestSettings, due: datetime, stop: threading.Event) -> SendResult:
        reports: list[SendReport] = []
        note = False
        # SQLite: one sender at a time (a staff member's `digest send` included), SenderBusy
        # otherwise; PostgreSQL: any number, each claiming its own rows
        with sender_lock(factory, config.name) as alone:
            while not stop.is_set():
                try:
                    # ``now`` is the fire time: the window ends there whenever the send runs,
                    # and the run is the same whichever process claims it
                    # an empty window: `empty: note` makes a run of the "nothing new" note
                    # (it closes the window); `skip` raises EmptyDigest: the window stays
                    # open, so the next digest still starts where the last one ended
                    claim = claim_run(
                        factory,
                        settings,
                        config.name,
                        due,
                        note_if_empty=config.empty == "note",
                        join_waiting=False,
                    )
                except PublisherError:  # EmptyDigest: no open run, no new post
                    if reports:
                        break
                    raise
                report = send_run(
                    factory,
                    settings,
                    claim,
                    connect=connect,
                    stop=stop,
                    # (PostgreSQL: rows a dead sender left ``sending`` are resent at the
                    # end of the run, at once, however it died: mail/senders)
                    alone=alone,
                    # 4xx retries fall due later: the next periodic check resumes them
                    wait_for_retries=False,
                )
                reports.append(report)
                note = claim.is_note
                # the period ending at the due time done: nothing newer is due
                if claim.created or not report.finished or claim.period_end >= due:
                    break
        if not reports:
            raise PublisherError(f"newsletter {config.name}: stopped before sending")
        last = reports[-1]
        return SendResult(
            period_start=last.period_start,
            period_end=last.period_end,
            finished=all(r.finished for r in reports),
            sent=sum(r.sent for r in reports),
            failed=sum(r.failed for r in reports),
            skipped=sum(r.skipped for r in reports),
            retry=sum(r.deferred + r.uncertain for r in reports),
            run_id=last.run_id,
            stopped=next((r.stopped for r in reports if r.stopped), None),
            note=note,
        )

    return send_newsletter
