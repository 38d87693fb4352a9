"""DKIM signatures (RFC 6376) with dkimpy, when ``email.dkim`` is configured.

dkimpy's default header set leaves out ``List-Unsubscribe-Post``; RFC 8058 §4
asks that a one-click unsubscribe be signed with both List-Unsubscribe
headers, or receivers may ignore it. So ``h=`` is given here, explicitly.
"""

from __future__ import annotations

import dkim  # type: ignore[import-untyped]

from ..config import DkimSettings
from ..errors import ConfigError

#: the headers the signature covers (RFC 8058 §4: both List-Unsubscribe headers)
SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
)


class DkimSigner:
    """Signs finished messages (CRLF line ends, not dot-stuffed)."""

    def __init__(self, settings: DkimSettings, source: str = "config.yaml") -> None:
        self.selector = settings.selector.encode("ascii")
        self.domain = settings.domain.encode("ascii")
        try:
            self.key = settings.key_file.read_bytes()
        except OSError as e:
            raise ConfigError(
                source, "email.dkim.key_file", f"cannot read {settings.key_file}: {e.strerror}"
            ) from e
        if b"PRIVATE KEY" not in self.key:
            raise ConfigError(
                source,
                "email.dkim.key_file",
                f"{settings.key_file} is not a PEM private key (e.g. made with "
                "`openssl genrsa -out dkim.pem 2048`)",
            )
        try:  # a key dkimpy cannot use would fail every message, each as if its own fault
            self.sign(b"From: test@" + self.domain + b"\r\n\r\nA test.\r\n")
        except Exception as e:  # noqa: BLE001 - dkimpy's KeyFormatError, ValueError…
            raise ConfigError(
                source,
                "email.dkim.key_file",
                f"{settings.key_file} cannot sign: {e or type(e).__name__}",
            ) from e

    def sign(self, message: bytes) -> bytes:
        """``message`` with a ``DKIM-Signature`` header in front."""
        signature = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.key,
            include_headers=list(SIGNED_HEADERS),
            linesep=b"\r\n",
        )
        assert isinstance(signature, bytes)
        return signature + message
