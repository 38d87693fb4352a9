"""Rendered digest + subscriber → a ready-to-send RFC 5322 message (bytes).

Compile once, personalise per recipient. :class:`MessageTemplate` turns a
:class:`~publisher.render.RenderedDigest` into a list of byte pieces once:
the shared headers, MIME structure and body text, each body already
quoted-printable encoded. A message is then the pieces joined with the
recipient's own values (escaped for HTML, encoded for QP) in between: a few
microseconds, where building an ``EmailMessage`` per recipient takes a
millisecond.

Each body piece is QP-encoded on its own and ends with a soft line break,
so pieces of any length join into valid QP (RFC 2045 §6.7) whatever the
values between them.

Headers: ``List-Unsubscribe`` with an HTTPS and a mailto URL, and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058);
``Message-ID`` is derived from the digest and the subscriber, so a retried
send is recognisably the same message.
"""

from __future__ import annotations

import binascii
import html
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr

from itsdangerous import URLSafeSerializer

from ..audience.recipients import Recipient
from ..errors import AddressError
from ..urls import Urls
from .render import PERSONAL_FIELDS, RenderedDigest

CRLF = b"\r\n"


def _header(name: str, value: str) -> bytes:
    """An unstructured header (Subject): non-ASCII becomes RFC 2047 encoded words,
    folded with CRLF."""
    if value.isascii():
        text = value
    else:
        text = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {text}".encode("ascii") + CRLF


def _address_header(name: str, value: str) -> bytes:
    """From, To, Reply-To: only the display name may be encoded, never the address."""
    display, address = parseaddr(value)
    return _header_line(name, formataddr((" ".join(display.split()), address), charset="utf-8"))


def _header_line(name: str, text: str) -> bytes:
    return f"{name}: {text}".encode("ascii") + CRLF


def _phrase(text: str) -> str:
    """A display phrase for a structured header (List-Id), encoded when not ASCII."""
    return text if text.isascii() else Header(text, "utf-8").encode(linesep="\r\n")


def _qp(data: str) -> bytes:
    """Quoted-printable with CRLF line ends, ending in a soft break so pieces can join."""
    raw = data.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    encoded = binascii.b2a_qp(raw, quotetabs=False, istext=True, header=False)
    # b2a_qp ends its soft breaks with a bare LF when the piece has no CRLF of its own
    encoded = encoded.replace(CRLF, b"\n").replace(b"\n", CRLF)
    return encoded if encoded.endswith(CRLF) else encoded + b"=" + CRLF


def dot_stuff(data: bytes) -> bytes:
    """SMTP transparency (RFC 5321 §4.5.2): a line that begins with "." gets another.

    ``data`` must begin at the start of a line (every piece of a template does).
    """
    data = data.replace(b"\r\n.", b"\r\n..")
    return b"." + data if data.startswith(b".") else data


@dataclass(frozen=True)
class _Slot:
    """Where a recipient value goes: which field, and how it is escaped."""

    field: str
    html: bool


class MessageTemplate:
    """A digest compiled into byte pieces, to make each recipient's message fast.

    :param sender: the From address, e.g. ``News <news@example.org>``.
    :param list_name: the digest's name (for List-Id and Message-ID).
    :param domain: the site's domain (for List-Id and Message-ID).
    """

    def __init__(
        self,
        rendered: RenderedDigest,
        sender: str,
        reply_to: str | None,
        urls: Urls,
        signer: URLSafeSerializer,
        domain: str,
        date: datetime,
        list_title: str,
    ) -> None:
        self.rendered = rendered
        self.urls = urls
        self.signer = signer
        self.domain = domain
        self.sender_address = parseaddr(sender)[1]
        digest = rendered.digest
        self.id_prefix = f"digest.{digest.name}.{digest.period_end:%Y%m%d%H%M}"
        nonce = rendered.placeholders.nonce
        self.boundary = f"=_publisher_{nonce}"

        head = b"".join(
            [
                _address_header("From", sender),
                _address_header("Reply-To", reply_to) if reply_to else b"",
                _header("Subject", rendered.subject),
                _header_line("Date", format_datetime(date)),
                _header_line("List-Id", f"{_phrase(list_title)} <{digest.name}.{domain}>"),
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF,
                b"MIME-Version: 1.0" + CRLF,
                f'Content-Type: multipart/alternative; boundary="{self.boundary}"'.encode() + CRLF,
                CRLF,
            ]
        )
        text_head = self._part_head("text/plain")
        html_head = self._part_head("text/html")
        tail = f"--{self.boundary}--".encode() + CRLF
        # pieces alternate: bytes, slot, bytes, slot … ; headers per recipient come first
        self.pieces: list[bytes | _Slot] = [head, text_head]
        self._split(rendered.text, html=False)
        self.pieces.append(html_head)
        self._split(rendered.html, html=True)
        self.pieces.append(tail)
        # for SMTP DATA: the fixed pieces dot-stuffed once, here, not per message
        self.stuffed_pieces = [p if isinstance(p, _Slot) else dot_stuff(p) for p in self.pieces]

    def _part_head(self, kind: str) -> bytes:
        return (
            f"--{self.boundary}".encode()
            + CRLF
            + f'Content-Type: {kind}; charset="utf-8"'.encode()
            + CRLF
            + b"Content-Transfer-Encoding: quoted-printable"
            + CRLF
            + CRLF
        )

    def _split(self, body: str, html: bool) -> None:
        pattern = self.rendered.placeholders.pattern
        fields = {f.replace("_", ""): f for f in PERSONAL_FIELDS}
        parts = pattern.split(body)
        for index, part in enumerate(parts):
            if index % 2:
                self.pieces.append(_Slot(fields[part], html))
            elif part:
                self.pieces.append(_qp(part))
        if not body.endswith("\n"):
            self.pieces.append(b"=" + CRLF + CRLF)  # a hard line end before the boundary

    def message_id(self, recipient: Recipient) -> str:
        return f"<{self.id_prefix}.{recipient.key}@{self.domain}>"

    def values(self, recipient: Recipient, token: str) -> dict[str, str]:
        """What each personal field becomes for ``recipient``; ``token`` signs their links."""
        name = " ".join((recipient.name or "").split())
        return {
            "greeting": f"Hello {name}," if name else "Hello,",
            "name": name,
            "email": recipient.email,
            "unsubscribe_url": self.urls.unsubscribe(token),
            "preferences_url": self.urls.preferences(token),
            "topics": ", ".join(recipient.topics) if recipient.topics else "all topics",
        }

    def render(self, recipient: Recipient, stuffed: bool = False) -> bytes:
        """The complete message for one recipient.

        :param stuffed: dot-stuffed for SMTP ``DATA`` (without the final ``.``).
        :raises AddressError: for an address this ASCII-only message cannot carry.
        """
        token = self.signer.dumps(recipient.key)
        values = self.values(recipient, token)
        mailto = f"mailto:{self.sender_address}?subject=unsubscribe%20{token}"
        try:
            to = _header_line("To", formataddr((values["name"], recipient.email), charset="utf-8"))
        except UnicodeEncodeError as e:
            raise AddressError(
                recipient.email,
                "its local part is not ASCII, which needs SMTPUTF8 (RFC 6531); this sender "
                "writes ASCII-only messages",
            ) from e
        headers = (
            to
            + _header_line("Message-ID", self.message_id(recipient))
            + f"List-Unsubscribe: <{values['unsubscribe_url']}>,".encode()
            + CRLF
            + f" <{mailto}>".encode()
            + CRLF
        )
        escaped = {k: html.escape(v, quote=True) for k, v in values.items()}
        out = [headers]
        for piece in self.stuffed_pieces if stuffed else self.pieces:
            if isinstance(piece, bytes):
                out.append(piece)
            else:
                value = _qp(escaped[piece.field] if piece.html else values[piece.field])
                out.append(dot_stuff(value) if stuffed else value)
        return b"".join(out)
