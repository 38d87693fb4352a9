"""DKIM: every message the publisher sends is signed, and a key that cannot sign stops
a send before its first message."""

from __future__ import annotations

import base64
import email
import subprocess
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest
from sqlalchemy.orm import Session, sessionmaker

from publisher.config import DkimSettings, Settings
from publisher.errors import ConfigError
from publisher.mail.send import send_digest
from publisher.mail.smtp import SmtpMailer
from publisher.mail.testsend import send_test
from publisher.web.confirmation import Confirmation, ConfirmationWriter
from tests.integration.smtp_recorder import Recorder
from tests.integration.test_send import NOW, FakeClock, server, statuses, subscribed, with_smtp

__all__ = ["server", "subscribed"]  # the fixtures


def signed(settings: Settings, key: Path) -> Settings:
    """``settings`` with ``email.dkim`` on ``key`` (selector news, domain example.org)."""
    dkim_settings = DkimSettings.model_validate(
        {"key_file": key, "selector": "news", "domain": "example.org"}
    )
    email = settings.email.model_copy(update={"dkim": dkim_settings})
    return settings.model_copy(update={"email": email})


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A key, and the DNS record of its public half."""
    pem = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(pem), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(pem), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def verifies(message: bytes, record: bytes) -> bool:
    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"news._domainkey.example.org."
        return record

    return bool(dkim.verify(message, dnsfunc=dns))


@pytest.fixture
def signing(
    subscribed: Settings, server: Recorder, key: tuple[Path, bytes]
) -> tuple[Settings, bytes]:
    """Settings that send to ``server`` and sign with the key, and its DNS record."""
    pem, record = key
    return signed(with_smtp(subscribed, server.port), pem), record


# A digest's signature verifies with dkimpy, and h= covers both List-Unsubscribe headers.
def test_dkim_signature_verifies(
    signing: tuple[Settings, bytes], sessions: sessionmaker[Session], server: Recorder
) -> None:
    settings, record = signing
    send_digest(sessions, settings, NOW, clock=FakeClock(NOW))
    message = server.by_recipient()["reader0@example.org"][0].data
    assert verifies(message, record)
    signature = email.message_from_bytes(message)["DKIM-Signature"]
    signed_headers = {h.strip().lower() for h in signature.split("h=")[1].split(";")[0].split(":")}
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "message-id"} <= signed_headers


# Not the digests only: the subscription confirmation and a staff test-send are signed
# with the same key (a receiver that checks DKIM would otherwise treat them as forged).
def test_the_confirmation_and_a_test_send_are_signed(
    signing: tuple[Settings, bytes], sessions: sessionmaker[Session], server: Recorder
) -> None:
    settings, record = signing
    confirmation = Confirmation("new@example.org", None, ("weekly",), "https://x.org/c/t")
    assert verifies(ConfirmationWriter(settings).write(confirmation, NOW), record)
    with SmtpMailer(settings.email.smtp) as mailer:
        send_test(sessions, settings, mailer, "staff@example.org", NOW)
    (received,) = server.received
    assert received.data.startswith(b"DKIM-Signature:") and verifies(received.data, record)


# A key that looks like one but cannot sign would fail every message, each as if the
# reader's fault: the send stops before its first message, naming the key, with the
# run open and nobody failed; with a good key the next send delivers to everyone.
def test_a_key_that_cannot_sign_stops_the_send_before_any_message(
    subscribed: Settings,
    sessions: sessionmaker[Session],
    server: Recorder,
    key: tuple[Path, bytes],
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    settings = with_smtp(subscribed, server.port)
    with pytest.raises(ConfigError) as refused:
        send_digest(sessions, signed(settings, bad), NOW, clock=FakeClock(NOW))
    assert refused.value.key == "email.dkim.key_file" and "cannot sign" in str(refused.value)
    assert server.received == [] and set(statuses(sessions).values()) == {"pending"}
    (report,) = send_digest(sessions, signed(settings, key[0]), NOW, clock=FakeClock(NOW))
    assert report.finished and report.sent == 6 and report.failed == 0
