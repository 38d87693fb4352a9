"""The scheduler's one seam to the send path.

Everything the scheduler needs of a send is :func:`send_newsletter`: send a
newsletter for the period ending at a fire time (or resume its open run),
stop early when asked, say what it did. When the send pipeline's
``claim_run``/``send_run`` land, this module is the one to change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..config import DigestSettings, Settings
from ..errors import DeliveryError
from ..mail.send import send_digest
from ..mail.smtp import Mailer
from .newsletters import SendFunction, SendResult


class _StoppingMailer:
    """Hands messages on until ``stop`` is set; then refuses each as a temporary failure.

    Today's send loop records a batch once every message of it was answered
    and leaves temporary failures for the resumed send: so a stop finishes the
    message in flight, records what the server accepted, and leaves the rest.
    """

    def __init__(self, mailer: Mailer, stop: threading.Event) -> None:
        self.mailer = mailer
        self.stop = stop

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        if self.stop.is_set():
            raise DeliveryError(recipient, "not sent: publisher run is stopping; sent on resume")
        self.mailer.send(sender, recipient, message)

    def close(self) -> None:
        self.mailer.close()


def make_send_function(
    factory: sessionmaker[Session],
    settings: Settings,
    make_mailer: Callable[[], Mailer],
) -> SendFunction:
    """A :data:`SendFunction` over the configured send path."""

    def send_newsletter(config: DigestSettings, due: datetime, stop: threading.Event) -> SendResult:
        mailer = _StoppingMailer(make_mailer(), stop)
        try:
            # ``now`` is the fire time: the window ends there, whenever the send runs, and
            # the messages (Date, Message-ID) are the same whichever process sends them
            report = send_digest(factory, settings, mailer, due, config.name)
        finally:
            mailer.close()
        assert report.period_start is not None and report.period_end is not None
        with factory() as session:
            run = queries.run_for_period(session, config.name, report.period_start)
        return SendResult(
            period_start=report.period_start,
            period_end=report.period_end,
            finished=report.finished,
            sent=report.sent,
            failed=report.failed,
            skipped=report.skipped,
            retry=len(report.errors),
            run_id=run.id if run else None,
        )

    return send_newsletter
