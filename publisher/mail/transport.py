"""SMTP for the send pipeline: one persistent connection, many messages, pipelined.

:class:`Connection` opens with smtplib (EHLO, STARTTLS or implicit TLS, AUTH,
all as configured) and then writes the mail transactions itself, so that
where the server offers ESMTP PIPELINING (RFC 2920) a message costs one round
trip: the previous message's body, its final ``.``, and the next ``MAIL
FROM``/``RCPT TO``/``DATA`` go out in one write, and their four replies are
read together. Bodies arrive dot-stuffed (RFC 5321 §4.5.2), done once when
the message template was compiled.

What a reply means is decided here, once:

- 2xx: sent. 5xx: refused for good (a mailbox-does-not-exist reply also
  suppresses the address). Other 4xx: this recipient, later.
- 421 or a closed connection: the server's trouble, not the recipient's. The
  unanswered messages go again on a new connection, in order, so the next
  subscriber is never charged with it; if no new connection can be made,
  :class:`~publisher.errors.TransportError`.
- A refused login, TLS failure, refused connection, a timeout, a refused
  sender address: :class:`~publisher.errors.TransportError`.
"""

from __future__ import annotations

import re
import smtplib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ..config import SmtpSettings
from ..errors import TransportError
from .smtp import open_session, reply_text

CRLF = b"\r\n"
#: the longest reply line read (RFC 5321 §4.5.3.1.5 allows 512; smtplib reads 8192)
_MAX_REPLY_LINE = 8193
#: replies whose text nobody reads (a message accepted, an envelope step done)
_PLAIN_OK = {b"250": "250", b"354": "354"}
#: how many times one message may meet a 421 or a dropped connection before the send stops
MAX_RECONNECTS = 3


class Verdict(Enum):
    SENT = "sent"
    #: 4xx: try this recipient again later
    TEMPORARY = "temporary"
    #: 5xx: refused for good
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Outgoing:
    """A message ready for the wire: its delivery, envelope recipient and dot-stuffed bytes."""

    delivery_id: int
    recipient: str
    data: bytes


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    verdict: Verdict
    #: the server's reply, e.g. ``550 5.1.1 no such user``
    reply: str
    #: the reply says the mailbox does not exist: send it nothing again
    suppress: bool = False


@dataclass
class BatchResult:
    """What became of a batch: an outcome per answered message; the rest were not
    handed over (``unsent``) or handed over without an answer (``uncertain``)."""

    outcomes: list[Outcome] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)
    uncertain: list[int] = field(default_factory=list)
    error: TransportError | None = None


_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


def mailbox_unknown(code: int, text: str) -> bool:
    """Does a 5xx reply say the mailbox does not exist (a hard bounce)?

    RFC 3463: enhanced status 5.1.x is about the address; without an enhanced
    code, 550/551/553 are the mailbox replies of RFC 5321 §4.2.3.
    """
    if code < 500:
        return False
    enhanced = _ENHANCED.match(text)
    if enhanced:
        return enhanced.group(1) == "5" and enhanced.group(2) == "1"
    return code in (550, 551, 553)


class _Reconnect(Exception):
    """The server closed the connection, or said 421: go again on a new one."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(why)


class Connection:
    """One SMTP connection, reopened as needed, reused for many messages.

    :param sender: the envelope sender (``MAIL FROM``).
    """

    def __init__(self, settings: SmtpSettings, sender: str) -> None:
        self.settings = settings
        self.sender = sender
        self.server = f"{settings.host}:{settings.port}"
        self._smtp: smtplib.SMTP | None = None
        self._count = 0
        self.pipelining = False
        #: called before each message is handed over (a rate limit), if set
        self.pace: Callable[[], None] | None = None

    # -- opening and closing -------------------------------------------------

    def open(self) -> None:
        """Connect, say EHLO, secure and log in as configured.

        :raises TransportError: naming the server, what failed and the fix.
        """
        self._smtp = open_session(self.settings, "run `publisher digest send` again")
        self._count = 0
        self.pipelining = self._smtp.has_extn("pipelining")

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    # -- sending -------------------------------------------------------------

    def send_batch(self, messages: Sequence[Outgoing]) -> BatchResult:
        """Hand ``messages`` to the server, in order; never raises.

        A transport failure ends the batch: ``result.error`` says why, and
        the messages not answered are listed as unsent or uncertain.
        """
        result = BatchResult()
        queue = deque(messages)
        incidents: dict[int, int] = {}
        cap = self.settings.max_messages_per_connection
        while queue:
            handed: list[Outgoing] = []
            try:
                if self._smtp is None or (cap and self._count >= cap):
                    self.close()
                    self.open()
                room = (cap - self._count) if cap else len(queue)
                if self.pipelining:
                    self._send_pipelined(queue, room, handed, result)
                else:
                    self._send_sequential(queue, room, handed, result)
            except _Reconnect as e:
                self._drop()
                # unanswered messages go again, in order, on a new connection
                for message in reversed(handed):
                    queue.appendleft(message)
                first = queue[0]
                incidents[first.delivery_id] = incidents.get(first.delivery_id, 0) + 1
                if incidents[first.delivery_id] > MAX_RECONNECTS:
                    result.error = TransportError(
                        self.server,
                        f"closed the connection {MAX_RECONNECTS + 1} times in a row ({e.why}); "
                        "check the server's limits and logs, then run `publisher digest send` "
                        "again",
                    )
                    break
            except TransportError as e:
                for message in reversed(handed):
                    queue.appendleft(message)
                result.error = e
                break
        if result.error is not None:
            self._drop()
            for message in queue:
                if message.delivery_id in incidents:
                    result.uncertain.append(message.delivery_id)
                else:
                    result.unsent.append(message.delivery_id)
        return result

    def _write(self, data: bytes) -> None:
        assert self._smtp is not None and self._smtp.sock is not None
        try:
            self._smtp.sock.sendall(data)
        except OSError as e:
            raise _Reconnect(f"write failed: {e}") from e

    def _reply(self) -> tuple[int, str]:
        """The server's next reply: its code and its text (RFC 5321 §4.2: lines
        ``250-…`` go on, ``250 …`` ends it). Read here rather than with smtplib's
        ``getreply``, which costs more than the rest of a pipelined message."""
        assert self._smtp is not None
        if self._smtp.file is None:
            self._smtp.file = self._smtp.sock.makefile("rb")  # type: ignore[union-attr]
        readline = self._smtp.file.readline
        lines = []
        try:
            while True:
                line = readline(_MAX_REPLY_LINE)
                if not line:
                    raise _Reconnect("the server closed the connection")
                lines.append(line)
                if line[3:4] != b"-":
                    break
        except OSError as e:
            raise _Reconnect(f"read failed: {e}") from e
        code = line[:3]
        if not code.isdigit():
            raise _Reconnect(f"not an SMTP reply: {reply_text(line)}")
        if len(lines) == 1 and code in _PLAIN_OK:  # the common case: no text needed
            return int(code), _PLAIN_OK[code]
        text = f"{int(code)} {reply_text(b' '.join(ln[4:] for ln in lines))}"
        if code == b"421":
            raise _Reconnect(text)
        return int(code), text

    def _envelope(self, message: Outgoing) -> bytes:
        return f"MAIL FROM:<{self.sender}>\r\nRCPT TO:<{message.recipient}>\r\nDATA\r\n".encode(
            "ascii"
        )

    def _refused(self, message: Outgoing, code: int, text: str, step: str) -> Outcome:
        if step == "MAIL" and code >= 500:
            raise TransportError(
                self.server,
                f"refused the sender address {self.sender}: {text}; fix email.sender (or the "
                "server's sender policy) and run `publisher digest send` again",
            )
        if code >= 500:
            return Outcome(
                message.delivery_id, Verdict.PERMANENT, text, mailbox_unknown(code, text)
            )
        return Outcome(message.delivery_id, Verdict.TEMPORARY, text)

    def _envelope_replies(self, message: Outgoing) -> Outcome | None:
        """Read MAIL, RCPT and DATA's replies; None when the server waits for the body."""
        replies = [self._reply(), self._reply(), self._reply()]
        for step, (code, text) in zip(("MAIL", "RCPT", "DATA"), replies, strict=True):
            if step == "DATA" and code == 354:
                return None
            if code >= 400 or (step == "DATA"):
                outcome = self._refused(message, code, text, step)
                self._write(b"RSET\r\n")  # forget the half-made transaction
                self._reply()
                return outcome
        raise AssertionError("unreachable")

    def _body_reply(self, message: Outgoing) -> Outcome:
        code, text = self._reply()
        self._count += 1
        if code < 400:
            return Outcome(message.delivery_id, Verdict.SENT, text)
        return self._refused(message, code, text, "DATA")

    def _send_pipelined(
        self, queue: deque[Outgoing], room: int, handed: list[Outgoing], result: BatchResult
    ) -> None:
        """RFC 2920: the body, its final dot and the next envelope in one write."""
        staged: Outgoing | None = None
        while queue or staged:
            out: list[bytes] = []
            if staged is not None:
                out += (staged.data, b".\r\n")
            following = None
            if queue and room > 0:
                if self.pace is not None:
                    self.pace()
                following = queue.popleft()
            if following is not None:
                room -= 1
                handed.append(following)
                out.append(self._envelope(following))
            self._write(b"".join(out))
            if staged is not None:
                result.outcomes.append(self._body_reply(staged))
                handed.remove(staged)
                staged = None
            if following is not None:
                refused = self._envelope_replies(following)
                if refused is None:
                    staged = following
                else:
                    result.outcomes.append(refused)
                    handed.remove(following)
            if following is None:
                return

    def _send_sequential(
        self, queue: deque[Outgoing], room: int, handed: list[Outgoing], result: BatchResult
    ) -> None:
        while queue and room > 0:
            if self.pace is not None:
                self.pace()
            message = queue.popleft()
            room -= 1
            handed.append(message)
            envelope = self._envelope(message).split(CRLF)[:3]
            replies = []
            for line in envelope:
                self._write(line + CRLF)
                code, text = self._reply()
                replies.append((code, text))
                if code >= 400:
                    break
            code, text = replies[-1]
            if code == 354:
                self._write(message.data + b".\r\n")
                result.outcomes.append(self._body_reply(message))
            else:
                step = ("MAIL", "RCPT", "DATA")[len(replies) - 1]
                result.outcomes.append(self._refused(message, code, text, step))
                self._write(b"RSET\r\n")
                self._reply()
            handed.remove(message)


_NOT_IN_ENVELOPE = re.compile("[<>\r\n \t]")


def envelope_address(address: str) -> str:
    """``address`` as it may stand in ``RCPT TO``, or ValueError saying why not."""
    if not address.isascii():
        raise ValueError(
            "has non-ASCII characters, which need SMTPUTF8 (RFC 6531); this sender writes "
            "ASCII envelopes only"
        )
    if _NOT_IN_ENVELOPE.search(address):
        raise ValueError("contains a character an SMTP envelope cannot carry")
    return address
