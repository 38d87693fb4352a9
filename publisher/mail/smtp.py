"""SMTP sessions as email.smtp says (:func:`open_session`), and a :class:`Mailer` that
hands finished messages to a server (the confirmations; the digest has mail.transport)."""

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


def reply_text(message: bytes | str) -> str:
    """A server's reply text on one line (as bytes from smtplib, or already text)."""
    raw = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return " ".join(raw.split())


def open_session(s: SmtpSettings, then: str = "") -> smtplib.SMTP:
    """A session with the configured server: connected, EHLO said, secured and logged
    in as ``email.smtp`` says (the digest's connections and the confirmations' alike).

    :param then: what to do once the config is fixed (ends each message), if anything.
    :raises TransportError: naming the server, what failed and what to fix.
    """
    server = f"{s.host}:{s.port}"
    after = f", then {then}" if then else ""
    fix = f"fix email.smtp in the config{after}"
    if s.username and not s.password:
        raise TransportError(
            server,
            f"email.smtp.username is {s.username}, but the environment variable "
            f"{s.password_env} that holds the password is not set: set it{after}",
        )
    try:
        if s.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        smtp.ehlo()
        if s.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if s.username and not smtp.has_extn("auth"):
            smtp.close()
            hint = " (most servers offer it only over TLS: email.smtp.security)"
            raise TransportError(
                server,
                f"offers no login (no AUTH in its EHLO reply) for {s.username}"
                f"{hint if s.security == 'none' else ''}; remove email.smtp.username if "
                f"it takes mail without one, or {fix}",
            )
        if s.username:
            smtp.login(s.username, s.password or "")
    except smtplib.SMTPAuthenticationError as e:
        raise TransportError(
            server,
            f"login refused for {s.username} ({e.smtp_code} {reply_text(e.smtp_error)}): fix "
            f"email.smtp.username or the password in ${s.password_env}{after}",
            e,
        ) from e
    except smtplib.SMTPNotSupportedError as e:
        raise TransportError(server, f"does not offer {s.security.upper()} ({e}): {fix}", e) from e
    except ssl.SSLError as e:
        raise TransportError(server, f"TLS failed ({e}): {fix}", e) from e
    except smtplib.SMTPResponseException as e:
        raise TransportError(
            server, f"refused the session: {e.smtp_code} {reply_text(e.smtp_error)}", e
        ) from e
    except (OSError, smtplib.SMTPException) as e:
        # a server that is down, or a config that names the wrong one: both told
        check = f"is the server up? If so, check email.smtp (host, port, security){after}"
        raise TransportError(server, f"cannot connect ({e or type(e).__name__}): {check}", e) from e
    return smtp


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
        return open_session(self.settings)

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
