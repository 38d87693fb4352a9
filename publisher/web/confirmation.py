"""The confirmation email of a subscription (double opt-in), and the outbox that sends it.

The message is rendered from ``confirm.txt`` and ``confirm.html`` in the
email templates folder (the deployment's ``email.templates`` first, as for
the digest) and handed to the same :class:`~publisher.mail.smtp.SmtpMailer`
the digest uses.

The subscribe form does not wait for SMTP: it puts the email in an
:class:`Outbox`, whose one thread renders and sends in the background over
one reused connection. So the form answers as fast for a known address as
for a new one (no timing tells them apart), and a slow mail server slows no
page. A confirmation still queued when the process stops is lost; the
reader asks again (the form says the link may take a few minutes).
"""

from __future__ import annotations

import email.policy
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import jinja2

from ..config import Settings
from ..errors import DeliveryError, PublisherError
from ..mail.smtp import Mailer, SmtpMailer
from ..mail.templates import make_environment, template_dirs as email_template_dirs

log = logging.getLogger(__name__)

#: confirmations waiting at most; past that the form still answers, and nothing is sent
QUEUE_SIZE = 10_000
#: seconds an idle SMTP connection is kept open
IDLE_SECONDS = 5.0


@dataclass(frozen=True)
class Confirmation:
    """A confirmation email to send: who, what they asked for, and the link."""

    address: str
    name: str | None
    newsletters: tuple[str, ...]
    confirm_url: str


def _one_line(text: str) -> str:
    """A header value from config text: one line, whatever the YAML said."""
    return " ".join(text.split())


def confirmation_environment(settings: Settings) -> jinja2.Environment:
    """The email templates' environment (make it once: it caches compiled templates)."""
    return make_environment(email_template_dirs(settings), settings.site.zone)


def build_confirmation(
    settings: Settings,
    confirmation: Confirmation,
    now: datetime,
    env: jinja2.Environment | None = None,
) -> bytes:
    """The confirmation email, ready for SMTP (CRLF line ends, headers encoded).

    :raises TemplateError: a confirm template is missing or does not render.
    """
    from ..errors import TemplateError

    env = env or confirmation_environment(settings)
    values = {
        "site": settings.site,
        "name": confirmation.name or "",
        "newsletters": confirmation.newsletters,
        "confirm_url": confirmation.confirm_url,
        "days": settings.web.confirm_days,
    }
    try:
        text = env.get_template("confirm.txt").render(values)
        html = env.get_template("confirm.html").render(values)
    except jinja2.TemplateError as e:
        raise TemplateError(f"confirm.txt/confirm.html: {e}") from e
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = settings.email.sender
    if settings.email.reply_to:
        message["Reply-To"] = settings.email.reply_to
    message["To"] = confirmation.address
    message["Subject"] = _one_line(f"Confirm your subscription to {settings.site.title}")
    message["Date"] = format_datetime(now.astimezone(UTC))
    message["Message-ID"] = make_msgid("confirm", domain=settings.site.domain)
    message["Auto-Submitted"] = "auto-replied"  # RFC 3834: an answer to a request
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message.as_bytes()


class Outbox:
    """A queue of confirmations and the one thread that sends them.

    :param mailer_factory: makes the mailer (default: SMTP per ``email.smtp``).
    """

    def __init__(
        self, settings: Settings, mailer_factory: Callable[[], Mailer] | None = None
    ) -> None:
        self.settings = settings
        self._make_mailer = mailer_factory
        self._queue: queue.Queue[Confirmation] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, confirmation: Confirmation) -> None:
        """Queue a confirmation (dropped, and logged, when the queue is full)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="outbox")
                self._thread.start()
        try:
            self._queue.put_nowait(confirmation)
        except queue.Full:
            log.warning("confirmation to %s dropped: the outbox is full", confirmation.address)

    def _mailer(self) -> Mailer:
        if self._make_mailer is not None:
            return self._make_mailer()
        return SmtpMailer(self.settings.email.smtp)

    def _run(self) -> None:
        mailer: Mailer | None = None
        env = confirmation_environment(self.settings)
        while True:
            try:
                confirmation = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                if mailer is not None:
                    mailer.close()
                    mailer = None
                continue
            try:
                message = build_confirmation(self.settings, confirmation, datetime.now(UTC), env)
                mailer = mailer or self._mailer()
                sender = self.settings.email.sender_address
                try:
                    mailer.send(sender, confirmation.address, message)
                except DeliveryError as e:
                    if e.permanent:
                        raise
                    mailer.send(sender, confirmation.address, message)  # once more, reconnected
            except PublisherError as e:
                log.warning("confirmation to %s not sent: %s", confirmation.address, e)
            except Exception:  # the thread must outlive any one message
                log.exception("confirmation to %s not sent", confirmation.address)
            finally:
                self._queue.task_done()

    def join(self) -> None:
        """Wait until every queued confirmation was sent or given up (tests, shutdown)."""
        self._queue.join()
