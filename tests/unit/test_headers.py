"""Header lines that cannot be broken (publisher/mail/headers.py), parsed back strictly.

Each header is read back with ``email.policy.strict`` (which raises on any
defect) and must say exactly what was written: one line of it.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.header import decode_header
from email.message import EmailMessage

import pytest
from hypothesis import example, given, strategies as st

from publisher.errors import AddressError
from publisher.mail import headers

ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
#: a long Portuguese name: 60 characters, 8 of them not ASCII
LONG_NAME = "Maria da Conceição Magalhães Gonçalves de Araújo e Sá Brandã"


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw + b"\r\n", policy=email.policy.strict)
    assert isinstance(message, EmailMessage)
    return message


def lines(raw: bytes) -> list[str]:
    assert raw.endswith(b"\r\n") and raw.isascii()
    return raw.decode("ascii").split("\r\n")[:-1]


def well_folded(raw: bytes, long_token: str = "") -> None:
    """Lines of at most 78 characters (only ``long_token`` may pass that), every
    encoded-word at most 75 (RFC 2047 §2), continuation lines start with white space."""
    found = lines(raw)
    for number, line in enumerate(found):
        assert len(line) <= 78 or (long_token and long_token in line), line
        assert len(line) <= 998
        if number:
            assert line[:1] == " ", "a continuation line starts with white space"
    for word in ENCODED_WORD.findall(raw.decode()):
        assert len(word) <= 75, word


def display_name(raw: bytes) -> str:
    """The display name of a one-mailbox header, as RFC 2047 §6.2 reads it.

    Parsed strictly (no defect allowed); when it is made of encoded-words,
    they are decoded and joined here, since Python 3.11's parser puts a space
    between adjacent ones in a display name (CPython issue gh-128110).
    """
    (address,) = parse(raw)[raw.split(b":")[0].decode()].addresses
    words = ENCODED_WORD.findall(raw.decode())
    if not words:
        return str(address.display_name)
    return "".join(
        part.decode(charset or "ascii") if isinstance(part, bytes) else part
        for word in words
        for part, charset in decode_header(word)
    )


def test_a_long_non_ascii_name_is_split_into_encoded_words() -> None:
    assert len(LONG_NAME) == 60
    raw = headers.mailbox("To", LONG_NAME, "maria@example.org")
    words = ENCODED_WORD.findall(raw.decode())
    assert len(words) >= 2 and all(len(w) <= 75 for w in words)
    well_folded(raw)
    assert display_name(raw) == LONG_NAME
    assert parse(raw)["To"].addresses[0].addr_spec == "maria@example.org"


# An encoded-word look-alike in a value is itself encoded: quoting it is not
# enough, since lenient readers (Python's own parser among them) decode inside quotes.
@pytest.mark.parametrize("text", ["=?utf-8?q?Bob?=", 'Ann "=?x?q?y?=" Lee', "=?utf-8?b?QWRtaW4=?="])
def test_encoded_word_look_alikes_keep_their_display(text: str) -> None:
    assert display_name(headers.mailbox("From", text, "a@example.org")) == text
    assert parse(headers.unstructured("Subject", text))["Subject"] == text
    title = parse(headers.list_id(text, "weekly.example.org"))["List-Id"]
    assert title == f"{text} <weekly.example.org>"


@pytest.mark.parametrize(
    "text",
    ["News\r\nBcc: x@evil.example", "News\nBcc: x@evil.example", "News\rBcc: x", "a\x00b\x85c"],
)
def test_a_value_never_adds_a_header(text: str) -> None:
    for raw in (
        headers.unstructured("Subject", text),
        headers.mailbox("To", text, "a@example.org"),
        headers.list_id(text, "weekly.example.org"),
    ):
        message = parse(raw)
        assert message["Bcc"] is None and len(message.keys()) == 1
        assert b"\r\nBcc" not in raw


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("a@example.org\r\nBcc: x@evil.example", "cannot stand in a header"),
        ("a b@c.org", "cannot stand in a header"),
        ("zoë@x.org", "needs SMTPUTF8"),
    ],
)
def test_an_address_that_cannot_stand_in_a_header_is_refused(address: str, why: str) -> None:
    with pytest.raises(AddressError, match=why):
        headers.mailbox("To", "Zoe", address)


def test_ascii_is_folded_at_spaces_and_kept_readable() -> None:
    subject = "International Civil Society Centre: news of the week to 27 November 2026 " * 2
    raw = headers.unstructured("Subject", subject)
    assert b"=?" not in raw, "plain ASCII stays plain"
    well_folded(raw)
    assert parse(raw)["Subject"] == subject.strip()
    quoted = headers.mailbox("From", "Centre, International (News)", "news@example.org")
    assert quoted == b'From: "Centre, International (News)" <news@example.org>\r\n'


def test_long_urls_get_a_line_each() -> None:
    long = "https://news.example.org/unsubscribe/" + "x" * 60
    raw = headers.urls("List-Unsubscribe", [long, "mailto:news@example.org?subject=x"])
    assert lines(raw) == [
        f"List-Unsubscribe: <{long}>,",
        " <mailto:news@example.org?subject=x>",
    ]
    with pytest.raises(ValueError, match="not a URL that can stand in a header"):
        headers.urls("List-Unsubscribe", ["https://x.org/a\r\nBcc: y"])


# Texts from anywhere: any script, controls, lines near the 78-character limit,
# '=' and '?' next to spaces. The subject and the display name read back as written
# (on one line), and the lines stay within RFC 5322's limits.
TEXTS = st.text(st.characters(exclude_categories=("Cs",)), max_size=300) | st.from_regex(
    r"[A-Za-z=? ]{60,90}", fullmatch=True
)


@given(TEXTS)
@example("=?utf-8?q?x?= " * 10)
@example("x" * 76)
@example("a " * 40 + "é")
def test_any_subject_reads_back_as_written(text: str) -> None:
    raw = headers.unstructured("Subject", text)
    well_folded(raw)
    assert parse(raw)["Subject"] == headers.one_line(text)


@given(TEXTS)
@example(LONG_NAME)
@example('"; x')
@example("O'Brien, Seán \\ (Dublin)")
def test_any_display_name_reads_back_as_written(name: str) -> None:
    raw = headers.mailbox("To", name, "reader@example.org")
    well_folded(raw, "<reader@example.org>")
    assert display_name(raw) == headers.one_line(name)
    assert parse(raw)["To"].addresses[0].addr_spec == "reader@example.org"


# The standard library's own encoding of the same subject reads back the same,
# wherever it reads back what was written: Python 3.11's folder is lossy at the
# edges (a leading space before a long word, a space lost between encoded-words),
# and it decodes "=?…?=" look-alikes in the values it is given. Ours never is.
@given(TEXTS)
def test_the_standard_library_reads_the_same_subject(text: str) -> None:
    content = headers.one_line(text)
    ours = parse(headers.unstructured("Subject", text))["Subject"]
    assert ours == content
    theirs = EmailMessage(policy=email.policy.SMTP)
    theirs["Subject"] = content
    back = parse(theirs.as_bytes().split(b"\r\n\r\n")[0] + b"\r\n")["Subject"]
    if back == content:
        assert ours == back
