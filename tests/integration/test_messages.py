"""Digest messages as subscribers receive them: parsed back with Python's email parser,
and sent through a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from publisher.audience.links import (
    UnsubscribeLink,
    read_preferences_token,
    read_unsubscribe_token,
)
from publisher.audience.recipients import Recipient
from publisher.cli import cli
from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.errors import BadToken, DeliveryError
from publisher.mail.compose import Editions, build_digest
from publisher.mail.render import GMAIL_CLIP_BYTES
from publisher.mail.smtp import SmtpMailer
from publisher.mail.testsend import send_test
from tests.conftest import CONFIG_TEXT
from tests.integration.test_store import SAMPLE

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SINCE = datetime(2019, 1, 1, tzinfo=UTC)
SECRET = "test-secret"


@pytest.fixture
def digest_message(sessions: sessionmaker[Session], settings: Settings, sample_dir: Path) -> Any:
    import_target(sessions, str(sample_dir), settings, NOW)
    config = settings.digests[0]
    with sessions() as session:
        built = build_digest(session, config, settings, NOW, since=SINCE)
    template = Editions(built, config, settings, NOW, SECRET).template(())
    assert template is not None

    def make(recipient: Recipient) -> tuple[bytes, EmailMessage]:
        raw = template.render(recipient)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return raw, parsed

    make.template = template  # type: ignore[attr-defined]
    return make


def parts(message: EmailMessage) -> tuple[str, str]:
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content()


def test_mime_structure_and_headers(digest_message: Any) -> None:
    raw, message = digest_message(Recipient("zoe@example.org", "Zoë Reader", 42))
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    for part in message.iter_parts():
        assert part.get_content_charset() == "utf-8"
    assert message["From"] == "Test Centre <news@example.org>"
    assert message["To"] == "Zoë Reader <zoe@example.org>"
    assert message["Subject"].startswith("Test Centre: news of ")
    assert message["Date"] == "Wed, 25 Nov 2026 12:00:00 +0000"
    assert message["MIME-Version"] == "1.0"
    assert message["Message-ID"] == "<digest.weekly.202611251200.42@news.example.org>"
    assert message["List-Id"] == "Test Centre weekly <weekly.news.example.org>"
    # RFC 8058 one-click unsubscribe: an HTTPS URI, plus mailto for older clients
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    assert https.startswith("https://news.example.org/unsubscribe/")
    assert mailto.startswith("mailto:news@example.org?subject=unsubscribe%20")
    token = https.rsplit("/", 1)[-1]
    # the unsubscribe link leaves this newsletter, and is good for nothing else
    assert read_unsubscribe_token(SECRET, token) == UnsubscribeLink(42, "weekly")
    with pytest.raises(BadToken):
        read_preferences_token(SECRET, token)
    assert mailto.endswith(token)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")), "RFC 5322 line limit"
    assert raw.isascii(), "quoted-printable and encoded words: safe through any relay"


def test_message_id_is_the_same_for_a_retry(digest_message: Any) -> None:
    first = digest_message(Recipient("a@example.org", id=7))[1]["Message-ID"]
    again = digest_message(Recipient("a@example.org", id=7))[1]["Message-ID"]
    other = digest_message(Recipient("b@example.org", id=8))[1]["Message-ID"]
    assert first == again != other


def test_html_is_inlined_and_text_has_every_title_and_link(digest_message: Any) -> None:
    html, text = parts(digest_message(Recipient("zoe@example.org", "Zoë"))[1])
    styled = re.findall(r"<(td|table|h2|p|a)\b[^>]*>", html)
    with_style = re.findall(r"<(?:td|table|h2|p|a)\b[^>]*\bstyle=\"[^\"]+\"[^>]*>", html)
    assert len(with_style) >= 0.8 * len(styled), "elements carry inline styles"
    flowing = " ".join(text.split())  # the text part is wrapped at 72 columns
    for title, _, _ in SAMPLE:
        assert title in flowing
    assert flowing.count("Read more: https://news.example.org/news/") == 10
    assert len(html.encode()) < GMAIL_CLIP_BYTES
    # the video becomes a linked thumbnail, never an iframe
    assert re.search(r'<a href="https://www.youtube.com/watch\?v=ICSCinnov19"[^>]*><img', html)
    assert "<iframe" not in html
    assert "Watch the video: https://www.youtube.com/watch?v=ICSCinnov19" in text
    assert "Download Strategy (PDF)" in html


@pytest.mark.parametrize(
    "name", ["<script>alert(1)</script>", '"; x', "Evil\r\nBcc: x@evil.example"]
)
def test_subscriber_values_arrive_escaped(digest_message: Any, name: str) -> None:
    raw, message = digest_message(Recipient("zoe@example.org", name, 3))
    html, text = parts(message)
    assert "<script>alert(1)</script>" not in html
    if "<script>" in name:
        assert "Hello &lt;script&gt;alert(1)&lt;/script&gt;," in html
    if name == '"; x':
        assert "Hello &quot;; x," in html
        assert message["To"].addresses[0].display_name == '"; x'
    assert b"\r\nBcc:" not in raw, "no header injection through a name"
    assert message["Bcc"] is None


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[Any]]]:
    received: list[Any] = []

    class Handler:
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:  # noqa: N802 - aiosmtpd's hook names
            if address.endswith("@refused.example"):
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            received.append(envelope)
            return "250 Message accepted"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, received
    controller.stop()


def smtp_settings(settings: Settings, port: int) -> Settings:
    smtp = settings.email.smtp.model_copy(
        update={"host": "127.0.0.1", "port": port, "security": "none"}
    )
    return settings.model_copy(update={"email": settings.email.model_copy(update={"smtp": smtp})})


@pytest.fixture
def staff_sending(
    smtp_server: tuple[int, list[Any]],
    sessions: sessionmaker[Session],
    settings: Settings,
    sample_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Settings, list[Any]]:
    """The sample posts imported, settings that send to the SMTP server, and what it took."""
    port, received = smtp_server
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", SECRET)
    settings = smtp_settings(settings, port)
    import_target(sessions, str(sample_dir), settings, NOW)
    return settings, received


def test_test_send_goes_through_a_real_smtp_server(
    staff_sending: tuple[Settings, list[Any]], sessions: sessionmaker[Session]
) -> None:
    settings, received = staff_sending
    with SmtpMailer(settings.email.smtp) as mailer:
        message_id = send_test(
            sessions, settings, mailer, "staff@example.org", NOW, since=SINCE
        ).message_id
    (envelope,) = received
    assert envelope.mail_from == "news@example.org"
    assert envelope.rcpt_tos == ["staff@example.org"]
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert message["Message-ID"] == message_id
    assert message["To"] == "staff@example.org"
    html, text = parts(message)  # type: ignore[arg-type]
    assert "Leave No One Behind news round-up" in html and "Hello," in text
    # "View in browser" points at the web version, which the send published
    page = "https://news.example.org/feeds/digests/weekly-2026-11-25-1200.html"
    assert f'href="{page}"' in html
    web = (settings.feeds.output_dir / "digests/weekly-2026-11-25-1200.html").read_text()
    assert "This is the web version" in web and "Leave No One Behind news round-up" in web
    assert "PUBLISHER" not in web and "/unsubscribe/" not in web and "View in browser" not in web


# Invariant: a test-send the server refuses leaves no web version behind (each one,
# timed to the microsecond, would be a page of its own, published for nothing).
def test_a_refused_test_send_leaves_no_page(
    staff_sending: tuple[Settings, list[Any]], sessions: sessionmaker[Session]
) -> None:
    settings, received = staff_sending
    with SmtpMailer(settings.email.smtp) as mailer, pytest.raises(DeliveryError):
        send_test(sessions, settings, mailer, "nobody@refused.example", NOW, since=SINCE)
    assert received == []
    assert not list((settings.feeds.output_dir / "digests").glob("*.html"))
    # a page already there (a digest sent for the same window, whose subscribers'
    # links point at it) stays when a test-send of that window fails
    page = settings.feeds.output_dir / "digests" / "weekly-2026-11-25-1200.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("the sent digest's page")
    with SmtpMailer(settings.email.smtp) as mailer, pytest.raises(DeliveryError):
        send_test(sessions, settings, mailer, "nobody@refused.example", NOW, since=SINCE)
    assert page.exists()


def test_a_refused_recipient_is_a_permanent_delivery_error(
    smtp_server: tuple[int, list[Any]], settings: Settings
) -> None:
    port, _ = smtp_server
    with SmtpMailer(smtp_settings(settings, port).email.smtp) as mailer:
        with pytest.raises(DeliveryError) as info:
            mailer.send("news@example.org", "nobody@refused.example", b"Subject: x\r\n\r\nx\r\n")
    assert info.value.permanent and "550" in str(info.value)


def test_test_send_needs_the_secret_key(
    sessions: sessionmaker[Session],
    settings: Settings,
    sample_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PUBLISHER_SECRET_KEY", raising=False)
    import_target(sessions, str(sample_dir), settings, NOW)

    class Refuse:
        def send(self, *args: object) -> None:
            raise AssertionError("nothing may be sent without the signing key")

        def close(self) -> None:
            pass

    with pytest.raises(Exception, match="PUBLISHER_SECRET_KEY is not set"):
        send_test(sessions, settings, Refuse(), "a@example.org", NOW, since=SINCE)


def test_cli_render_writes_html_text_and_eml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Any
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the CLI test uses the SQLite file its config names")
    monkeypatch.delenv("PUBLISHER_DATABASE_URL", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT)
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config), "init", "--sample"]).exit_code == 0
    out = tmp_path / "out"
    result = runner.invoke(
        cli,
        ["--config", str(config), "digest", "render", "--since", "2019-01-01", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "10 posts" in result.output and "of Gmail's 102 KB" in result.output
    # the preview it suggests shows the same window (the default one may be empty)
    assert "publisher preview --since 2019-01-01T00:00" in result.output
    eml = email.message_from_bytes((out / "digest.eml").read_bytes(), policy=email.policy.default)
    assert eml["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Leave No One Behind news round-up" in (out / "digest.txt").read_text()
    assert (out / "digest.html").read_text().startswith("<!DOCTYPE html>")
    empty = runner.invoke(
        cli,
        ["--config", str(config), "digest", "render", "--since", "2025-01-01", "--out", str(out)],
    )
    assert empty.exit_code == 1 and "no post was published between" in empty.output


def test_non_ascii_names_and_long_subjects_are_encoded_not_broken(
    sessions: sessionmaker[Session], settings: Settings, sample_dir: Path
) -> None:
    """RFC 2047: only display names and subject text are encoded; lines end in CRLF."""
    site = settings.site.model_copy(update={"title": "Zivilgesellschaft – Zentrum für Solidarität"})
    mail = settings.email.model_copy(
        update={
            "sender": "Zentrum für Solidarität <news@example.org>",
            "reply_to": "Zoë Ω <zoe@example.org>",
        }
    )
    subject = "{{ site.title }}: Neuigkeiten der Woche über Innovation, Solidarität und Populismus"
    config = settings.digests[0].model_copy(update={"subject": subject})
    odd = settings.model_copy(update={"site": site, "email": mail, "digests": (config,)})
    import_target(sessions, str(sample_dir), odd, NOW)
    with sessions() as session:
        built = build_digest(session, config, odd, NOW, since=SINCE)
    template = Editions(built, config, odd, NOW, SECRET).template(())
    assert template is not None
    raw = template.render(Recipient("zoe@example.org", "Zoë Ω", 1))
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b""), "no bare line feeds"
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["From"].addresses[0].display_name == "Zentrum für Solidarität"
    assert message["From"].addresses[0].addr_spec == "news@example.org"
    assert message["Reply-To"].addresses[0].display_name == "Zoë Ω"
    assert message["To"].addresses[0].display_name == "Zoë Ω"
    assert message["Subject"] == (
        "Zivilgesellschaft – Zentrum für Solidarität: Neuigkeiten der Woche über Innovation, "
        "Solidarität und Populismus"
    )
    assert message["List-Id"].endswith("<weekly.news.example.org>")
    assert "Zentrum für Solidarität weekly" in message["List-Id"]
