"""The only SMTP code: a :class:`Mailer` that hands finished messages to a server."""

from __future__ import annotations

import smtplib
import ssl
from types import TracebackType
from typing import Protocol

from ..config import SmtpSettings
from ..errors import ConfigError, DeliveryError, TransportError


class Mailer(Protocol):
    """Somewhere messages go: SMTP in production, a list in some tests."""

    def send(self, sender: str, recipient: str, message: bytes) -> None: ...

    def close(self) -> None: ...


class SmtpMailer:
    """One connection to the configured server, opened on first use and reused.

    :raises DeliveryError: per message; ``permanent`` when the server said 5xx.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._connection: smtplib.SMTP | None = None
        if settings.username and not settings.password:
            raise ConfigError(
                "config.yaml",
                "email.smtp.username",
                f"is set, but the environment variable {settings.password_env} that holds "
                "the password is not",
            )

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        try:
            if s.security == "tls":
                connection: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=context
                )
            else:
                connection = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    connection.starttls(context=context)
            if s.username:
                connection.login(s.username, s.password or "")
        except smtplib.SMTPAuthenticationError as e:
            raise TransportError(
                f"{s.host}:{s.port}",
                f"login refused for {s.username} ({e.smtp_code} {e.smtp_error!r}): fix "
                f"email.smtp.username or the password in ${s.password_env}",
                e,
            ) from e
        except (OSError, smtplib.SMTPException) as e:
            raise TransportError(
                f"{s.host}:{s.port}",
                f"cannot reach the SMTP server ({e}); check email.smtp in the config",
                e,
            ) from e
        return connection

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        if self._connection is None:
            self._connection = self._connect()
        try:
            self._connection.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as e:
            code, reply = e.recipients.get(recipient, (550, b"refused"))
            raise DeliveryError(recipient, f"refused: {code} {reply!r}", code >= 500, e) from e
        except smtplib.SMTPResponseException as e:
            raise DeliveryError(
                recipient, f"server said {e.smtp_code} {e.smtp_error!r}", e.smtp_code >= 500, e
            ) from e
        except (OSError, smtplib.SMTPException) as e:
            self._connection = None  # reconnect for the next message
            raise DeliveryError(recipient, f"connection failed: {e}", False, e) from e

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._connection = None

    def __enter__(self) -> SmtpMailer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
