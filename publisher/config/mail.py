"""The ``email:`` (sender, SMTP server, DKIM), ``digests:`` and ``bounces:``
sections: everything about the mail the publisher sends and gets back."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from ..addresses import parse_mailbox
from .values import (
    OneLine,
    Section,
    beside_config,
    check_address,
    parse_duration,
    template_folder,
)

#: the names a digest's subject template may use (``mail.render.render_subject`` passes them)
SUBJECT_VARIABLES = frozenset({"site", "digest", "period_start", "period_end"})


def _shipped_templates() -> Path:
    """The email templates shipped with the publisher.

    They live in ``templates/email/`` at the top of the repository (where a
    checkout and an editable install read them) and are copied into the
    wheel as ``publisher/templates/email/`` (see ``pyproject.toml``).
    """
    package = Path(__file__).resolve().parents[1]
    inside = package / "templates" / "email"
    return inside if inside.is_dir() else package.parent / "templates" / "email"


#: the email templates shipped with the publisher (a deployment may override any of them)
SHIPPED_EMAIL_TEMPLATES = _shipped_templates()


class SmtpSettings(Section):
    host: OneLine = Field("localhost", max_length=255, description="SMTP server host name.")
    port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (port 587), tls (implicit TLS, port 465) or none."
    )
    username: OneLine | None = Field(None, description="Login name, if the server wants one.")
    password_env: str = Field(
        "PUBLISHER_SMTP_PASSWORD",
        description="Name of the environment variable holding the SMTP password.",
    )
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for the server.")
    connections: int = Field(
        4, ge=1, le=64, description="SMTP connections a sender keeps open at once."
    )
    max_messages_per_connection: int = Field(
        100,
        ge=0,
        description="Reconnect after this many messages on one connection (0: never); "
        "set it below the server's own limit.",
    )
    rate_limit: float = Field(
        0, ge=0, description="Most messages per second a sender hands over (0: no limit)."
    )
    batch: int = Field(
        25,
        ge=1,
        le=1000,
        description="Messages a connection holds at once (on the wire, or queued behind "
        "it): at most connections × batch deliveries (and the refusals a send holds, "
        "at most max_send_errors) are uncertain after a crash.",
    )

    @property
    def password(self) -> str | None:
        return os.environ.get(self.password_env)


class DkimSettings(Section):
    key_file: Path = Field(description="PEM file of the RSA or Ed25519 private key.")
    selector: str = Field(min_length=1, description="The DNS selector, e.g. news2026.")
    domain: str = Field(min_length=1, description="The signing domain (d=), e.g. example.org.")

    @field_validator("key_file")
    @classmethod
    def _resolve_key(cls, value: Path, info: ValidationInfo) -> Path:
        path = beside_config(value, info)
        try:
            key = path.read_bytes()
        except OSError as e:
            raise ValueError(f"cannot read {path}: {e.strerror}") from None
        if b"PRIVATE KEY" not in key:
            raise ValueError(
                f"{path} is not a PEM private key (e.g. made with "
                "`openssl genrsa -out dkim.pem 2048`)"
            )
        return path


class EmailSettings(Section):
    sender: OneLine = Field(
        description="From address of the digest, e.g. 'News <news@example.org>'."
    )
    reply_to: OneLine | None = Field(None, description="Reply-To address, if not the sender.")
    templates: Path | None = Field(
        None, description="Folder of templates that override those in templates/email/."
    )
    max_send_errors: int = Field(
        50,
        ge=1,
        description="Pause a send after this many refusals in a row (the server may be "
        "refusing everyone).",
    )
    retry_hours: float = Field(
        4,
        gt=0,
        description="How long a recipient whose server answers 4xx is retried (with "
        "exponential backoff) before the delivery is recorded as failed.",
    )
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="The SMTP server.")
    dkim: DkimSettings | None = Field(None, description="Sign every message with DKIM.")

    @property
    def template_dirs(self) -> tuple[Path, ...]:
        """Where email templates are looked up: the deployment's folder first, then ours."""
        if self.templates:
            return (self.templates, SHIPPED_EMAIL_TEMPLATES)
        return (SHIPPED_EMAIL_TEMPLATES,)

    @property
    def sender_address(self) -> str:
        """The bare address of ``sender`` (the SMTP envelope sender)."""
        return parse_mailbox(self.sender)[1]

    @field_validator("sender", "reply_to")
    @classmethod
    def _check_addresses(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @field_validator("templates")
    @classmethod
    def _resolve_templates(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else template_folder(beside_config(value, info))


class DigestSettings(Section):
    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        max_length=50,
        description="Short name, e.g. weekly (a-z, 0-9, -).",
    )
    schedule: str = Field(description="When to send, as a crontab line, e.g. '0 9 * * MON'.")
    subject: OneLine = Field(
        "{{ site.title }}: news of {{ period_end.strftime('%-d %B %Y') }}",
        max_length=500,
        description="Jinja2 template of the subject line.",
    )
    order: Literal["newest", "tag"] = Field(
        "newest", description="List posts newest first, or grouped by tag."
    )
    size_budget_kb: int = Field(
        90, ge=10, le=102, description="Largest HTML part (KB) before switching to summaries."
    )
    template: str = Field(
        "digest",
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        max_length=50,
        description="Its email templates: NAME.html and NAME.txt, looked up in "
        "email.templates, then in templates/email/ (e.g. monthly).",
    )
    empty: Literal["skip", "note"] = Field(
        "skip",
        description="A window without posts: skip (send nothing; the next digest still "
        "covers every post since the last one) or note (send a short 'nothing new since' "
        "note, note.html and note.txt, which closes the window like a digest).",
    )
    note_subject: OneLine = Field(
        "{{ site.title }}: nothing new since {{ period_start.strftime('%-d %B %Y') }}",
        max_length=500,
        description="Jinja2 template of the subject line of the 'nothing new' note.",
    )
    misfire_grace: timedelta = Field(
        timedelta(hours=6),
        description="How late a send missed while `publisher run` was down may still go out "
        "(e.g. 30m, 6h, 2d); later, it is recorded as skipped and its posts go in the next one.",
    )

    @field_validator("misfire_grace", mode="before")
    @classmethod
    def _parse_duration(cls, value: Any) -> Any:
        return parse_duration(value)

    @field_validator("misfire_grace")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must be a duration of zero or more (e.g. 30m, 6h, 2d)")
        return value

    @field_validator("subject", "note_subject")
    @classmethod
    def _compile_subject(cls, value: str, info: ValidationInfo) -> str:
        """Compile the template as it will run (in Jinja's sandbox), so a broken
        one is a config error now, not a failed send later.

        Commands that send no mail (``build``, ``posts``…) skip this and never
        load Jinja2 (``check_templates=False``).
        """
        if not (info.context or {}).get("check_templates", True):
            return value
        import jinja2.meta
        import jinja2.sandbox

        env = jinja2.sandbox.SandboxedEnvironment(autoescape=False)
        try:
            tree = env.parse(value)
            env.compile(tree)  # an unknown filter or test is found here, not by parse
        except jinja2.TemplateSyntaxError as e:  # (TemplateAssertionError among them)
            raise ValueError(f"is not a valid Jinja2 template: {e.message}") from None
        unknown = jinja2.meta.find_undeclared_variables(tree) - SUBJECT_VARIABLES
        if unknown:
            raise ValueError(
                f"uses {', '.join(sorted(unknown))}, which a subject does not have; it may use "
                f"{', '.join(sorted(SUBJECT_VARIABLES))}"
            )
        return value

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            if len(value.split()) != 5:
                raise ValueError("wrong number of fields")
            trigger = CronTrigger.from_crontab(value, timezone=UTC)
        except ValueError as e:
            raise ValueError(
                f"must be a crontab line of 5 fields (minute hour day month weekday), "
                f"e.g. '0 9 * * MON' ({e})"
            ) from None
        if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise ValueError("matches no day of any year: it would never come")
        return value


class BounceSettings(Section):
    soft_limit: int = Field(
        3,
        ge=1,
        description="Soft bounces within soft_days after which a subscriber is marked bounced.",
    )
    soft_days: int = Field(
        30, ge=1, le=3650, description="The window, in days, in which soft bounces are counted."
    )
