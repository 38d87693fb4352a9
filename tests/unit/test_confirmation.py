"""The confirmation email, written as bytes (not through ``EmailMessage``)."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from publisher.config import Settings
from publisher.web.confirmation import Confirmation, ConfirmationWriter

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LINK = "https://news.example.org/confirm/" + "Ab-_9." * 30


# Whatever the name, the message reads back (strictly, without defects) with the
# name, the whole link and the address where a mail client looks for them, and no
# line passes SMTP's 998 characters.
@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(max_size=120))
def test_the_message_reads_back(settings: Settings, name: str) -> None:
    writer = ConfirmationWriter(settings)  # the settings are only read
    raw = writer.write(Confirmation("zoe@example.org", name, ("weekly",), LINK), NOW)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    message = email.message_from_bytes(raw, policy=email.policy.strict)
    assert not any(part.defects for part in message.walk())
    assert message["To"] == "zoe@example.org"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["Subject"].startswith("Confirm your subscription to ")
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert LINK in text.get_content() and LINK in html.get_content()
    assert text.get_content().endswith("\n"), "the text ends with its own line end"
    shown = " ".join(name.split())
    if shown and shown.isprintable():
        assert shown in " ".join(text.get_content().split())
