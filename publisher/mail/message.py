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

The text part is wrapped at 72 columns (:func:`wrap_text`); a line that holds
a recipient's value is wrapped once the value is in.

Headers: each one line, folded and encoded by :mod:`.headers`;
``List-Unsubscribe`` with an HTTPS and a mailto URL, and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058);
``Message-ID`` is derived from the digest and the subscriber, so a retried
send is recognisably the same message.
"""

from __future__ import annotations

import binascii
import html
import textwrap
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from ..addresses import parse_mailbox
from ..audience.links import preferences_token, unsubscribe_token
from ..audience.recipients import Recipient
from ..urls import Urls
from . import headers
from .messageids import message_id_affixes
from .render import PERSONAL_FIELDS, RenderedDigest

CRLF = b"\r\n"
#: the text part's columns (lines stay well under RFC 5322's 78)
TEXT_COLUMNS = 72


def dot_stuff(data: bytes) -> bytes:
    """SMTP transparency (RFC 5321 §4.5.2): a line that begins with "." gets another.

    ``data`` must begin at the start of a line (every piece of a template does).
    """
    data = data.replace(b"\r\n.", b"\r\n..")
    return b"." + data if data.startswith(b".") else data


#: white space other than the single space, which :func:`wrap_text` leaves to textwrap
_OTHER_SPACE = frozenset("\t\n\x0b\x0c\r")


def wrap_text(line: str) -> str:
    """One text-part line wrapped at 72 columns, at spaces only.

    Never inside a word or at a hyphen, so a URL stays whole (on a line of its
    own when it is long) and still works when clicked. The same as
    ``textwrap.fill`` with those options (a property test holds them equal);
    words joined by single spaces, the common case, are wrapped here in a
    fraction of its time, since each recipient's line with their links is
    wrapped per message.
    """
    if len(line) <= TEXT_COLUMNS:
        return line
    if "  " in line or line[0] == " " or line[-1] == " " or not _OTHER_SPACE.isdisjoint(line):
        return textwrap.fill(
            line, TEXT_COLUMNS, break_long_words=False, break_on_hyphens=False, expand_tabs=False
        )
    lines: list[str] = []
    start, end = 0, len(line)
    while end - start > TEXT_COLUMNS:
        # the last space that leaves at most 72 columns before it; else (a word longer
        # than a line) the first space after the word
        cut = line.rfind(" ", start, start + TEXT_COLUMNS + 1)
        if cut < 0:
            cut = line.find(" ", start)
            if cut < 0:
                break
        lines.append(line[start:cut])
        start = cut + 1
    lines.append(line[start:])
    return "\n".join(lines)


def _qp(data: str) -> bytes:
    """Quoted-printable with CRLF line ends, ending in a soft break so pieces can join."""
    raw = data.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    encoded = binascii.b2a_qp(raw, quotetabs=False, istext=True, header=False)
    # b2a_qp ends its soft breaks with a bare LF when the piece has no CRLF of its own
    encoded = encoded.replace(CRLF, b"\n").replace(b"\n", CRLF)
    return encoded if encoded.endswith(CRLF) else encoded + b"=" + CRLF


@dataclass(frozen=True)
class _Slot:
    """Where a recipient value goes in the HTML part: which field, escaped for HTML."""

    field: str
    html: bool


@dataclass(frozen=True)
class _TextLine:
    """A text-part line with recipient values in it, wrapped once they are in.

    ``parts`` alternate literal text and field names: text, field, text …
    """

    parts: tuple[str, ...]

    def render(self, values: dict[str, str]) -> str:
        line = "".join(values[p] if i % 2 else p for i, p in enumerate(self.parts))
        return wrap_text(line) + "\n"


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
        secret: str,
        domain: str,
        date: datetime,
        list_title: str,
    ) -> None:
        self.rendered = rendered
        self.urls = urls
        #: signs each recipient's links, each for its own purpose (audience.links)
        self.secret = secret
        self.domain = domain
        self.sender_address = parse_mailbox(sender)[1]
        digest = rendered.digest
        self.id_affixes = message_id_affixes(digest.name, digest.period_end, domain)
        nonce = rendered.placeholders.nonce
        self.boundary = f"=_publisher_{nonce}"

        head = b"".join(
            [
                headers.mailbox_of("From", sender),
                headers.mailbox_of("Reply-To", reply_to) if reply_to else b"",
                headers.unstructured("Subject", rendered.subject),
                headers.structured("Date", format_datetime(date)),
                headers.list_id(list_title, f"{digest.name}.{domain}"),
                headers.structured("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                headers.structured("MIME-Version", "1.0"),
                headers.structured(
                    "Content-Type", f'multipart/alternative; boundary="{self.boundary}"'
                ),
                CRLF,
            ]
        )
        text_head = self._part_head("text/plain")
        html_head = self._part_head("text/html")
        tail = f"--{self.boundary}--".encode() + CRLF
        # pieces: bytes, and where recipient values go; headers per recipient come first
        self.pieces: list[bytes | _Slot | _TextLine] = [head, text_head]
        self._split_text(rendered.text)
        self.pieces.append(html_head)
        self._split(rendered.html, html=True)
        self.pieces.append(tail)
        # for SMTP DATA: the fixed pieces dot-stuffed once, here, not per message
        self.stuffed_pieces = [dot_stuff(p) if isinstance(p, bytes) else p for p in self.pieces]

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
        # the line end before the boundary belongs to the boundary (RFC 2046 §5.1.1): end
        # a body that has none of its own with a soft break, so it reads back as it was
        self.pieces.append(CRLF if body.endswith("\n") else b"=" + CRLF + CRLF)

    def _split_text(self, body: str) -> None:
        """The text part: lines without values wrapped now, lines with values per recipient."""
        pattern = self.rendered.placeholders.pattern
        fields = {f.replace("_", ""): f for f in PERSONAL_FIELDS}
        fixed: list[str] = []
        lines = body.replace("\r\n", "\n").split("\n")
        if lines[-1] == "":
            lines.pop()  # the body's own final line end
        for line in lines:
            parts = pattern.split(line)
            if len(parts) == 1:
                fixed.append(wrap_text(line) + "\n")
                continue
            if fixed:
                self.pieces.append(_qp("".join(fixed)))
                fixed = []
            self.pieces.append(
                _TextLine(tuple(fields[p] if i % 2 else p for i, p in enumerate(parts)))
            )
        if fixed:
            self.pieces.append(_qp("".join(fixed)))
        # the line end before the boundary belongs to the boundary (RFC 2046 §5.1.1):
        # one more, so the text ends with its own, as the standard library writes it
        self.pieces.append(CRLF)

    def message_id(self, recipient: Recipient) -> str:
        before, after = self.id_affixes
        return f"{before}{recipient.key}{after}"

    def values(self, recipient: Recipient, unsubscribe: str, preferences: str) -> dict[str, str]:
        """What each personal field becomes for ``recipient``, given their links' tokens."""
        name = headers.one_line(recipient.name or "")
        return {
            "greeting": f"Hello {name}," if name else "Hello,",
            "name": name,
            "email": recipient.email,
            "unsubscribe_url": self.urls.unsubscribe(unsubscribe),
            "preferences_url": self.urls.preferences(preferences),
            "topics": ", ".join(recipient.topics) if recipient.topics else "all topics",
        }

    def render(self, recipient: Recipient, stuffed: bool = False) -> bytes:
        """The complete message for one recipient.

        :param stuffed: dot-stuffed for SMTP ``DATA`` (without the final ``.``).
        :raises AddressError: for an address this ASCII-only message cannot carry.
        """
        # one token per purpose: the unsubscribe link leaves this newsletter only
        # (RFC 8058 one-click), and opens no other page; the preferences link the reverse
        token = unsubscribe_token(self.secret, recipient.key, self.rendered.digest.name)
        values = self.values(recipient, token, preferences_token(self.secret, recipient.key))
        mailto = f"mailto:{self.sender_address}?subject=unsubscribe%20{token}"
        head = (
            headers.mailbox("To", values["name"], recipient.email)
            + headers.structured("Message-ID", self.message_id(recipient))
            + headers.urls("List-Unsubscribe", [values["unsubscribe_url"], mailto])
        )
        escaped = {k: html.escape(v, quote=True) for k, v in values.items()}
        out = [head]
        for piece in self.stuffed_pieces if stuffed else self.pieces:
            if isinstance(piece, bytes):
                out.append(piece)
                continue
            if isinstance(piece, _TextLine):
                value = _qp(piece.render(values))
            else:
                value = _qp(escaped[piece.field] if piece.html else values[piece.field])
            out.append(dot_stuff(value) if stuffed else value)
        return b"".join(out)
