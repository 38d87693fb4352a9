"""Header lines that cannot be broken: one line each, folded, encoded where needed.

Pure. Every value that reaches a header (config, post titles, subscriber
names) goes through here:

- **one line**: control characters are removed and every run of white space
  (CR and LF included) becomes one space, so no value can end a header or
  add one (RFC 5322 §2.2);
- **folded** at white space to lines of at most 78 characters, with CRLF
  (RFC 5322 §2.1.1). Only a single token longer than that (a long URL) can
  make a longer line, and never one over 998;
- **non-ASCII** text as RFC 2047 encoded-words of at most 75 characters
  each (§2), made by the standard library's :class:`email.header.Header`;
- text that merely *looks* like an encoded-word (``=?utf-8?q?Bob?=``) is
  never left where a reader would decode it into something else: it is
  itself encoded, so it decodes to what was written. Quoting is not enough:
  RFC 2047 §5 says an encoded-word inside a quoted-string is not decoded,
  but lenient readers do decode it (Python's own parser shows
  ``"=?utf-8?q?Bob?="`` as ``Bob``).

The standard library's header classes (``email.headerregistry``) are not
used to write: given a value, they decode encoded-word look-alikes in it
(Python 3.11 writes the display name ``=?utf-8?q?Bob?=`` as ``Bob``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email import base64mime

from ..addresses import parse_mailbox
from ..errors import AddressError

CRLF = "\r\n"
#: RFC 5322 §2.1.1: lines SHOULD be no longer than 78 characters
LINE = 78
#: RFC 5322 §2.1.1: lines MUST be no longer than 998 characters
HARD_LINE = 998
#: RFC 2047 §2: an encoded-word is at most 75 characters long
ENCODED_WORD = 75

# RFC 5322 §3.2.3 specials: a display name with one of them must be quoted
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """``text`` on one line: every run of white space or control characters
    (CR, LF, tabs, NUL, ESC …) becomes one space, none at either end.

    >>> one_line("News\\r\\nBcc: x@evil.example\\x00")
    'News Bcc: x@evil.example'
    """
    return " ".join(_CONTROL.sub(" ", text).split())


def encoded_words(text: str, name: str) -> list[str]:
    """``text`` as UTF-8 encoded-words, each at most 75 characters (RFC 2047 §2),
    the first short enough to follow ``Name: `` on the header's first line.

    Each word is made by the standard library (``email.base64mime``); here we
    only cut the text, between characters, never inside one's UTF-8 bytes.
    (``email.header.Header`` cuts as well, but tries each length in turn: a
    millisecond for a long name, per reader.) Adjacent encoded-words decode
    into one run of text: the white space between them is not part of it
    (§6.2). Python 3.11's own parser shows a space there in display names
    (CPython issue gh-128110); mail clients follow the RFC.
    """
    words: list[str] = []
    room = _payload_bytes(min(ENCODED_WORD, LINE - 2 - len(name) - 2))
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if chunk and len(chunk) + len(data) > room:
            words.append(base64mime.header_encode(chunk, "utf-8"))
            chunk, room = b"", _payload_bytes(ENCODED_WORD)
        chunk += data
    if chunk:
        words.append(base64mime.header_encode(chunk, "utf-8"))
    return words


def _payload_bytes(word_length: int) -> int:
    """UTF-8 bytes that fit an encoded-word ``=?utf-8?b?…?=`` of ``word_length``."""
    return (word_length - len("=?utf-8?b??=")) // 4 * 3


def _needs_encoding(text: str, name: str) -> bool:
    """Non-ASCII, an encoded-word look-alike, or a word too long to fit a line
    after ``Name: `` (encoded-words can be split anywhere; plain words cannot)."""
    longest = LINE - len(name) - 2
    return (
        not text.isascii() or "=?" in text or any(len(word) > longest for word in text.split(" "))
    )


def phrase(text: str, name: str) -> list[str]:
    """A display name (From, To, List-Id) as the tokens of an RFC 5322 phrase.

    Plain ASCII words stay as they are; specials make a quoted-string;
    non-ASCII text, an encoded-word look-alike or a word too long to fold
    becomes encoded-words.
    """
    text = one_line(text)
    if not text:
        return []
    if _needs_encoding(text, name):
        return encoded_words(text, name)
    if _SPECIALS.search(text):
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        # folding at a space inside a quoted-string unfolds to that space (§3.2.4)
        return f'"{quoted}"'.split(" ")
    return text.split(" ")


def fold(name: str, tokens: Sequence[str]) -> bytes:
    """``Name: token token …`` folded before a token wherever a line would pass 78.

    A fold only ever replaces one of the spaces between tokens, so unfolding
    (RFC 5322 §2.2.3) gives back the line exactly.
    """
    lines: list[str] = []
    line = f"{name}:"
    for token in tokens:
        if len(line) + 1 + len(token) > LINE and line != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    text = CRLF.join(lines) + CRLF
    if any(len(line) > HARD_LINE for line in lines):
        raise ValueError(f"{name}: a token longer than {HARD_LINE} characters cannot be folded")
    return text.encode("ascii")


def unstructured(name: str, text: str) -> bytes:
    """An unstructured header (Subject): one line, folded; encoded-words where needed."""
    text = one_line(text)
    tokens = encoded_words(text, name) if _needs_encoding(text, name) else text.split(" ")
    return fold(name, tokens)


def _addr_spec(address: str) -> str:
    if not address.isascii():
        raise AddressError(
            address,
            "its local part is not ASCII, which needs SMTPUTF8 (RFC 6531); this sender "
            "writes ASCII-only messages",
        )
    if not address or any(c in address for c in ' \t\r\n<>"(),;:') or _CONTROL.search(address):
        raise AddressError(address, "cannot stand in a header (white space or brackets)")
    return address


def mailbox(name: str, display: str | None, address: str) -> bytes:
    """From, To, Reply-To: the display name encoded as needed, the address never."""
    words = phrase(display or "", name)
    spec = _addr_spec(address)
    return fold(name, [*words, f"<{spec}>"] if words else [spec])


def mailbox_of(name: str, text: str) -> bytes:
    """A mailbox header from config text such as ``News <news@example.org>``."""
    display, address = parse_mailbox(text)
    return mailbox(name, display, address)


def list_id(title: str, identifier: str) -> bytes:
    """``List-Id: Title <name.example.org>`` (RFC 2919)."""
    return fold("List-Id", [*phrase(title, "List-Id"), f"<{_addr_spec(identifier)}>"])


def urls(name: str, values: Sequence[str]) -> bytes:
    """A list of ``<URL>``\\ s (List-Unsubscribe, RFC 2369), one per line when they are long."""
    for url in values:
        if not url.isascii() or _CONTROL.search(url) or " " in url:
            raise ValueError(f"{name}: {url!r} is not a URL that can stand in a header")
    tokens = [f"<{url}>," for url in values[:-1]] + [f"<{values[-1]}>"]
    return fold(name, tokens)


def structured(name: str, value: str) -> bytes:
    """An ASCII header the publisher makes itself (Date, Message-ID, MIME-Version …)."""
    if not value.isascii() or one_line(value) != value:
        raise ValueError(f"{name}: {value!r} is not one line of ASCII")
    return fold(name, value.split(" "))
