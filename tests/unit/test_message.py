"""The message compiler (publisher/mail/message.py), without a database or templates.

A rendered digest is made by hand: text and HTML with placeholders where a
reader's values go. Each message is parsed back with ``email.policy.strict``
and compared with what was meant, and with the standard library's own
encoding of the same content.
"""

from __future__ import annotations

import email
import email.policy
import html
import textwrap
from datetime import UTC, datetime
from email.message import EmailMessage

from hypothesis import example, given, strategies as st

from publisher.audience.links import preferences_token, unsubscribe_token
from publisher.audience.recipients import Recipient
from publisher.mail.digest import Digest
from publisher.mail.headers import one_line
from publisher.mail.message import MessageTemplate, wrap_text
from publisher.mail.render import PERSONAL_FIELDS, Placeholders, RenderedDigest
from publisher.urls import Urls
from tests.unit.test_headers import LONG_NAME, display_name

T0 = datetime(2026, 11, 16, 8, tzinfo=UTC)
T1 = datetime(2026, 11, 23, 8, tzinfo=UTC)
PLACEHOLDERS = Placeholders("0a1b2c3d4e5f")
URLS = Urls(base="https://news.example.org/", feeds="https://news.example.org/feeds/")


def compile_message(text: str, html_body: str, subject: str = "News") -> MessageTemplate:
    digest = Digest("weekly", T0, T1, ())
    rendered = RenderedDigest(digest, subject, html_body, text, PLACEHOLDERS)
    return MessageTemplate(
        rendered,
        sender="Test Centre <news@example.org>",
        reply_to="Zoë at the Centre <replies@example.org>",
        urls=URLS,
        secret="test-secret",
        domain="news.example.org",
        date=T1,
        list_title="Test Centre weekly",
    )


def fill(parts: list[tuple[str, str | None]]) -> str:
    """Literal text with a placeholder after each part that names a field."""
    return "".join(text + (PLACEHOLDERS.token(field) if field else "") for text, field in parts)


def meant(parts: list[tuple[str, str | None]], values: dict[str, str]) -> str:
    return "".join(text + (values[field] if field else "") for text, field in parts)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.strict)
    assert isinstance(message, EmailMessage)
    return message


def bodies(message: EmailMessage) -> tuple[str, str]:
    text, rich = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and rich is not None
    return (
        str(text.get_content()).replace("\r\n", "\n"),
        str(rich.get_content()).replace("\r\n", "\n"),
    )


def wrapped(parts: list[tuple[str, str | None]], values: dict[str, str]) -> str:
    """What the text part says: each line of the template, with the reader's values
    in, wrapped at 72 columns and ending in a line end."""
    lines = fill(parts).split("\n")
    if lines[-1] == "":
        lines.pop()
    pattern = PLACEHOLDERS.pattern
    fields = {f.replace("_", ""): f for f in PERSONAL_FIELDS}
    return "".join(
        wrap_text(pattern.sub(lambda m: values[fields[m[1]]], line)) + "\n" for line in lines
    )


# Text pieces that stress quoted-printable: any script, lines near the 76-character
# limit, '=' and spaces right where a piece meets a reader's value.
CHUNKS = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r"), max_size=120),
    st.from_regex(r"[a-zé =.]{70,82}\n?", fullmatch=True),
    st.sampled_from(["=", " ", "= ", " =", "=\n", " \n", "\n", "\t", "é=", ". "]),
)
PARTS = st.lists(st.tuples(CHUNKS, st.sampled_from(PERSONAL_FIELDS) | st.none()), max_size=6)
NAMES = st.text(st.characters(exclude_categories=("Cs",)), max_size=80) | st.sampled_from(
    [LONG_NAME, "Zoë", "= =?utf-8?q?x?= =", "李明" * 20]
)


@given(text=PARTS, rich=PARTS, name=NAMES, subject=NAMES)
@example(
    text=[("Hello ", "name"), ("=" * 75, None)],
    rich=[("<p>" + "x" * 73, "greeting"), (" =", None)],
    name=LONG_NAME,
    subject="Conceição " * 30,
)
def test_every_message_reads_back_as_meant(
    text: list[tuple[str, str | None]],
    rich: list[tuple[str, str | None]],
    name: str,
    subject: str,
) -> None:
    template = compile_message(fill(text), fill(rich), subject)
    recipient = Recipient("zoe@example.org", name, 7, ("Civic Space",))
    raw = template.render(recipient)
    assert raw.isascii(), "quoted-printable and encoded-words only"
    for line in raw.split(b"\r\n"):
        assert len(line) <= 78 or lone_token(line), line
    assert b"\n" not in raw.replace(b"\r\n", b""), "no bare LF"

    message = parse(raw)
    values = template.values(
        recipient,
        unsubscribe_token("test-secret", recipient.key, "weekly"),
        preferences_token("test-secret", recipient.key),
    )
    escaped = {k: html.escape(v, quote=True) for k, v in values.items()}
    got_text, got_html = bodies(message)
    assert got_text == wrapped(text, values)
    assert got_html == meant(rich, escaped).replace("\r\n", "\n")
    assert message["Subject"] == one_line(subject)
    assert display_name(_header(raw, "To")) == one_line(name)

    # the standard library's own encoding of the same content reads back the same
    theirs = EmailMessage(policy=email.policy.SMTP)
    theirs.set_content(got_text, cte="quoted-printable")
    theirs.add_alternative(got_html, subtype="html", cte="quoted-printable")
    their_text, their_html = bodies(parse(theirs.as_bytes()))
    # (the standard library ends every part with a line end)
    assert (ended(got_text), ended(got_html)) == (their_text, their_html)


def _header(raw: bytes, name: str) -> bytes:
    """One header of ``raw``, with its folded lines, as it stands in the message."""
    head = b"\r\n" + raw.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    start = head.index(b"\r\n" + name.encode() + b":") + 2
    end = start
    while True:
        end = head.index(b"\r\n", end) + 2
        if head[end : end + 1] != b" ":
            return head[start:end]


def lone_token(line: bytes) -> bool:
    """A header line that holds one token (a long URL) and nothing it could fold at."""
    return b" " not in line.split(b": ", 1)[-1].strip()


def ended(body: str) -> str:
    return body if body.endswith("\n") else body + "\n"


# A line with a reader's value in it is wrapped once the value is in: a long name
# makes the greeting two lines, never one of 90 characters.
def test_a_line_with_a_readers_value_is_wrapped_for_that_reader() -> None:
    line = f"{PLACEHOLDERS.token('greeting')} here is what Test Centre published this week.\n"
    template = compile_message(line + "-- \nBye\n", "<p>x</p>")
    short = bodies(parse(template.render(Recipient("a@example.org", "Al"))))[0]
    assert short.splitlines()[0] == "Hello Al, here is what Test Centre published this week."
    long = bodies(parse(template.render(Recipient("b@example.org", LONG_NAME))))[0]
    greeting = long.split("\n-- \n")[0].splitlines()
    assert len(greeting) == 2 and max(len(line) for line in greeting) <= 72
    assert " ".join(greeting) == f"Hello {LONG_NAME}, here is what Test Centre published this week."
    assert long.endswith("\n-- \nBye\n"), "the signature separator keeps its space"


def test_headers_are_folded_and_encoded_once_for_all_readers() -> None:
    template = compile_message("x\n", "<p>x</p>", subject="Neuigkeiten der Woche – " * 8)
    raw = template.render(Recipient("a@example.org", LONG_NAME))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 or lone_token(line) for line in head.split(b"\r\n"))
    message = parse(raw)
    assert message["Subject"] == one_line("Neuigkeiten der Woche – " * 8)
    assert display_name(_header(raw, "Reply-To")) == "Zoë at the Centre"
    assert message["List-Id"] == "Test Centre weekly <weekly.news.example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# wrap_text's own loop gives what textwrap.fill gives with the same options, for any
# line: single spaces, runs of spaces, tabs and other white space, words longer than
# a line, hyphens, leading and trailing spaces.
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="abc-é/:.", min_size=1, max_size=90),
            st.sampled_from([" ", "  ", "\t", " \r ", "\xa0"]),
        ),
        max_size=40,
    ).map("".join)
)
@example("x" * 71 + " " + "y" * 80 + " z")
@example(" " + "a " * 50)
def test_wrap_text_is_textwrap_fill(line: str) -> None:
    expected = (
        line
        if len(line) <= 72
        else textwrap.fill(
            line, 72, break_long_words=False, break_on_hyphens=False, expand_tabs=False
        )
    )
    assert wrap_text(line) == expected
