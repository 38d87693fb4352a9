"""The confirmation email of a subscription (double opt-in), and the outbox that sends it.

The message is rendered from ``confirm.txt`` and ``confirm.html`` in the
email templates folder (the deployment's ``email.templates`` first, as for
the digest) and handed to the same :class:`~publisher.mail.smtp.SmtpMailer`
the digest uses.

The subscribe form does not wait for SMTP: it puts the email in an
:class:`Outbox`, whose one thread renders and sends in the background over
one reused connection. So the form answers as fast for a known address as
for a new one (no timing tells them apart), and a slow mail server slows no
page. ``publisher serve`` sends what is queued before it exits (on Ctrl-C
and SIGTERM, for up to :data:`DRAIN_SECONDS`); a confirmation still queued
when the process is killed is lost, and the reader asks again (the form
says the link may take a few minutes).
"""

from __future__ import annotations

import binascii
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

import jinja2

from ..audience.choices import display_name
from ..config import Settings
from ..errors import DeliveryError, PublisherError, TemplateError
from ..mail import headers
from ..mail.smtp import Mailer, SmtpMailer
from ..mail.templates import make_environment, template_dirs as email_template_dirs

log = logging.getLogger(__name__)

#: confirmations waiting at most; past that the form still answers, and nothing is sent
QUEUE_SIZE = 10_000
CRLF = b"\r\n"
#: seconds an idle SMTP connection is kept open
IDLE_SECONDS = 5.0
#: how long a stopping server waits for the queued confirmations to go out
DRAIN_SECONDS = 30.0


@dataclass(frozen=True)
class Confirmation:
    """A confirmation email to send: who, what they asked for, and the link."""

    address: str
    name: str | None
    newsletters: tuple[str, ...]
    confirm_url: str


def confirmation_environment(settings: Settings) -> jinja2.Environment:
    """The email templates' environment (make it once: it caches compiled templates)."""
    return make_environment(email_template_dirs(settings), settings.site.zone)


def _qp(text: str) -> bytes:
    """A body part as quoted-printable UTF-8 with CRLF line ends (RFC 2045 §6.7)."""
    raw = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    encoded = binascii.b2a_qp(raw, quotetabs=False, istext=True, header=False)
    # b2a_qp ends its soft breaks with a bare LF when a line has no CRLF of its own
    encoded = encoded.replace(CRLF, b"\n").replace(b"\n", CRLF)
    return encoded if encoded.endswith(CRLF) else encoded + CRLF


class ConfirmationWriter:
    """Writes confirmation emails: the headers every one shares are made once.

    The message is written as bytes here, as the digest's is
    (:mod:`publisher.mail.message`), with the headers from
    :mod:`publisher.mail.headers`: an ``EmailMessage`` per confirmation
    took 1.5 ms of the server's CPU, as much as the rest of a subscribe
    request, and the form's thread shares the interpreter with it.

    :raises TemplateError: (from :meth:`write`) a confirm template is missing
        or does not render.
    """

    def __init__(self, settings: Settings, env: jinja2.Environment | None = None) -> None:
        self.settings = settings
        self.env = env or confirmation_environment(settings)
        email = settings.email
        self.dkim: Callable[[bytes], bytes] | None = None
        if email.dkim is not None:  # signed as the digests are
            from ..mail.signing import DkimSigner

            self.dkim = DkimSigner(email.dkim, settings.source).sign
        self.boundary = f"=_confirm_{secrets.token_hex(12)}"
        # "=_" can never appear in quoted-printable text: the boundary is safe in any body
        self.head = (
            headers.mailbox_of("From", email.sender)
            + (headers.mailbox_of("Reply-To", email.reply_to) if email.reply_to else b"")
            + headers.unstructured("Subject", f"Confirm your subscription to {settings.site.title}")
            # RFC 3834: an answer to a request
            + headers.structured("Auto-Submitted", "auto-replied")
            + headers.structured("MIME-Version", "1.0")
            + headers.structured(
                "Content-Type", f'multipart/alternative; boundary="{self.boundary}"'
            )
        )

    def _part(self, kind: str, body: str) -> bytes:
        return (
            f"--{self.boundary}".encode()
            + CRLF
            + f'Content-Type: text/{kind}; charset="utf-8"'.encode()
            + CRLF
            + b"Content-Transfer-Encoding: quoted-printable"
            + CRLF
            + CRLF
            + _qp(body)
            # the line end before a boundary belongs to the boundary (RFC 2046 §5.1.1)
            + CRLF
        )

    def write(self, confirmation: Confirmation, now: datetime) -> bytes:
        """The confirmation email, ready for SMTP (CRLF line ends, headers encoded)."""
        settings = self.settings
        values = {
            "site": settings.site,
            "name": confirmation.name or "",
            "newsletters": [display_name(n) for n in confirmation.newsletters],
            "confirm_url": confirmation.confirm_url,
            "days": settings.web.confirm_days,
        }
        try:
            text = self.env.get_template("confirm.txt").render(values)
            html = self.env.get_template("confirm.html").render(values)
        except jinja2.TemplateError as e:
            raise TemplateError(f"confirm.txt/confirm.html: {e}") from e
        message_id = f"<confirm.{secrets.token_hex(12)}@{settings.site.domain}>"
        message = (
            headers.mailbox("To", None, confirmation.address)
            + headers.structured("Date", format_datetime(now.astimezone(UTC)))
            + headers.structured("Message-ID", message_id)
            + self.head
            + CRLF
            + self._part("plain", text)
            + self._part("html", html)
            + f"--{self.boundary}--".encode()
            + CRLF
        )
        return self.dkim(message) if self.dkim else message


def build_confirmation(settings: Settings, confirmation: Confirmation, now: datetime) -> bytes:
    """One confirmation email (a writer made for it: make one :class:`ConfirmationWriter`
    to write many).

    :raises TemplateError: a confirm template is missing or does not render.
    """
    return ConfirmationWriter(settings).write(confirmation, now)


class Outbox:
    """A queue of confirmations and the one thread that sends them.

    The form's thread appends to a deque and wakes the sender only when it is
    asleep (the queue was empty): under load, queueing a confirmation costs no
    thread switch, and the sender drains what piled up in one go.

    :param mailer_factory: makes the mailer (default: SMTP per ``email.smtp``).
    """

    def __init__(
        self, settings: Settings, mailer_factory: Callable[[], Mailer] | None = None
    ) -> None:
        self.settings = settings
        self._make_mailer = mailer_factory
        self._waiting: deque[Confirmation] = deque()
        self._wake = threading.Event()
        self._asleep = False
        #: confirmations queued and not yet sent or given up (for :meth:`join`)
        self._unfinished = 0
        self._finished = threading.Condition()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, confirmation: Confirmation) -> None:
        """Queue a confirmation (dropped, and logged, when the queue is full)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, daemon=True, name="outbox")
                    self._thread.start()
        if len(self._waiting) >= QUEUE_SIZE:
            log.warning("confirmation to %s dropped: the outbox is full", confirmation.address)
            return
        with self._finished:
            self._unfinished += 1
        self._waiting.append(confirmation)  # atomic: no lock needed between two threads
        if self._asleep:
            self._wake.set()

    def _mailer(self) -> Mailer:
        if self._make_mailer is not None:
            return self._make_mailer()
        return SmtpMailer(self.settings.email.smtp)

    def _next(self, mailer: Mailer | None) -> tuple[Confirmation | None, Mailer | None]:
        """The next confirmation; None after sleeping (the connection closed if idle)."""
        try:
            return self._waiting.popleft(), mailer
        except IndexError:
            pass
        self._asleep = True
        # looked again after saying so: a put in between either sees us asleep and
        # wakes us, or is found here
        if not self._waiting:
            woken = self._wake.wait(IDLE_SECONDS)
            self._wake.clear()
            if not woken and mailer is not None:
                mailer.close()
                mailer = None
        self._asleep = False
        return None, mailer

    def _run(self) -> None:
        mailer: Mailer | None = None
        writer = ConfirmationWriter(self.settings)
        while True:
            confirmation, mailer = self._next(mailer)
            if confirmation is None:
                continue
            try:
                message = writer.write(confirmation, datetime.now(UTC))
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
                with self._finished:
                    self._unfinished -= 1
                    if not self._unfinished:
                        self._finished.notify_all()

    def join(self, timeout: float | None = None) -> int:
        """Wait until every queued confirmation was sent or given up (tests, shutdown),
        or ``timeout`` seconds; how many are left."""
        with self._finished:
            self._finished.wait_for(lambda: not self._unfinished, timeout)
            return self._unfinished
