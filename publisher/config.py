"""config.yaml → frozen :class:`Settings`.

The models below are the one declared table of settings: the loader, the
README's configuration reference (checked by ``tests/test_docs.py``) and the
error messages all come from them. Relative paths are resolved against the
folder of the config file, so the publisher behaves the same from any cwd.
Secrets never live in the file: it names environment variables instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .addresses import parse_mailbox
from .errors import AddressError, ConfigError
from .links import WEB_SCHEMES, UnsafeUrl, check_url
from .yamlsource import YamlDocument, YamlSyntaxError, describe_errors, parse_yaml

#: environment variable that overrides ``database.url`` (keeps passwords out of the file)
DATABASE_URL_ENV = "PUBLISHER_DATABASE_URL"
DEFAULT_CONFIG = "config.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Control characters, and the line breaks Unicode adds (NEL, U+2028, U+2029):
# a value that goes into a mail header must be one line, or it could add headers.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _refuse(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        found = pattern.search(value)
        if found:
            raise ValueError(
                f"must be {what}: character {found.start() + 1} is the control character "
                f"{found[0]!r} (a line break here could add lines to every email's headers)"
            )
        return value

    return AfterValidator(check)


def _web_url(value: str) -> str:
    try:
        return check_url(value, schemes=WEB_SCHEMES)
    except UnsafeUrl as e:
        raise ValueError(
            f"must be an absolute http(s) URL such as https://example.org/, but it {e.why}"
        ) from None


#: text that may end up in a header (titles, names, subjects): one line, no control characters
OneLine = Annotated[str, _refuse(_CONTROL, "one line")]
#: text shown in a page or footer: line breaks allowed, other control characters not
Text = Annotated[str, _refuse(_CONTROL_BUT_NEWLINE, "plain text")]
#: an absolute http or https URL, checked by :func:`publisher.links.check_url`
WebUrl = Annotated[str, AfterValidator(_web_url)]
#: the names a digest's subject template may use (``mail.render.render_subject`` passes them)
SUBJECT_VARIABLES = frozenset({"site", "digest", "period_start", "period_end"})


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("base_dir", "."))


def _beside_config(value: Path, info: ValidationInfo) -> Path:
    """A path from the file, taken relative to the config file's folder."""
    return value if value.is_absolute() else _base_dir(info) / value


class SiteSettings(_Section):
    title: OneLine = Field(
        min_length=1, max_length=200, description="Name of the site, used as feed and email title."
    )
    base_url: WebUrl = Field(description="Public URL of the site; post links are made under it.")
    description: OneLine = Field(
        "", max_length=500, description="One line about the site (feed subtitle)."
    )
    language: str = Field(
        "en",
        pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$",
        description="BCP 47 language tag of the content.",
    )
    timezone: str = Field("UTC", description="IANA time zone for dates written without one.")
    postal_address: Text = Field(
        min_length=1,
        max_length=500,
        description="Postal address of the organisation, shown in email footers.",
    )
    post_path: OneLine = Field(
        "news/{slug}/",
        max_length=200,
        description="Where a post's page is, under base_url; {slug} is replaced.",
    )
    icon: WebUrl | None = Field(None, description="URL of a square icon for feeds.")
    logo: WebUrl | None = Field(None, description="URL of a wide logo for feeds and emails.")
    rights: OneLine | None = Field(None, max_length=300, description="Copyright line for feeds.")

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if "?" in value or "#" in value:
            raise ValueError("must be the site's address without ?query or #fragment")
        return value if value.endswith("/") else value + "/"

    @field_validator("post_path")
    @classmethod
    def _check_post_path(cls, value: str) -> str:
        if "{slug}" not in value or value.startswith("/") or re.search(r"\s|\.\.|//", value):
            raise ValueError("must be a relative path containing {slug}, e.g. news/{slug}/")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not an IANA time zone such as Europe/Berlin or UTC") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def domain(self) -> str:
        return self.base_url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]


class DatabaseSettings(_Section):
    url: str | None = Field(
        None,
        validate_default=True,
        description=(
            "SQLAlchemy URL. Default: the SQLite file publisher.db beside the config. "
            f"The environment variable {DATABASE_URL_ENV} overrides it."
        ),
    )

    @field_validator("url")
    @classmethod
    def _resolve_url(cls, value: str | None, info: ValidationInfo) -> str:
        value = os.environ.get(DATABASE_URL_ENV) or value
        if not value:
            return f"sqlite:///{_base_dir(info) / 'publisher.db'}"
        if "://" not in value:
            raise ValueError("must be a URL such as sqlite:///publisher.db or postgresql://…")
        prefix = "sqlite:///"
        if value.startswith(prefix) and not value.startswith(prefix + "/") and value != prefix:
            relative = value[len(prefix) :]
            if relative != ":memory:":
                return prefix + str(_base_dir(info) / relative)
        return value


class FeedSettings(_Section):
    output_dir: Path = Field(
        Path("feeds"), validate_default=True, description="Folder the feed files are written to."
    )
    url: WebUrl | None = Field(
        None, description="Public URL of the feed folder. Default: base_url + 'feeds/'."
    )
    items: int = Field(
        20,
        ge=1,
        le=1000,
        description="Entries in each subscription feed, and in each archive page.",
    )
    content: Literal["full", "summary"] = Field(
        "full", description="Put the full post in feeds, or only its summary."
    )
    websub_hub: WebUrl | None = Field(None, description="URL of a WebSub hub to announce and ping.")
    build_every_minutes: int = Field(
        15, ge=1, le=1440, description="How often `publisher run` rebuilds the feeds."
    )

    @field_validator("output_dir")
    @classmethod
    def _resolve_dir(cls, value: Path, info: ValidationInfo) -> Path:
        return _beside_config(value, info)


class SmtpSettings(_Section):
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
        description="Messages each connection is given at a time: at most 2 × connections × "
        "batch deliveries are uncertain after a crash.",
    )

    @property
    def password(self) -> str | None:
        return os.environ.get(self.password_env)


def _check_address(value: str) -> str:
    try:
        parse_mailbox(value)
    except AddressError as e:
        raise ValueError(e.why) from None
    return value


class DkimSettings(_Section):
    key_file: Path = Field(description="PEM file of the RSA or Ed25519 private key.")
    selector: str = Field(min_length=1, description="The DNS selector, e.g. news2026.")
    domain: str = Field(min_length=1, description="The signing domain (d=), e.g. example.org.")

    @field_validator("key_file")
    @classmethod
    def _resolve_key(cls, value: Path, info: ValidationInfo) -> Path:
        return _beside_config(value, info)


class EmailSettings(_Section):
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
    def sender_address(self) -> str:
        """The bare address of ``sender`` (the SMTP envelope sender)."""
        return parse_mailbox(self.sender)[1]

    @field_validator("sender", "reply_to")
    @classmethod
    def _check_addresses(cls, value: str | None) -> str | None:
        return None if value is None else _check_address(value)

    @field_validator("templates")
    @classmethod
    def _resolve_templates(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _beside_config(value, info)


class DigestSettings(_Section):
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
    misfire_grace: timedelta = Field(
        timedelta(hours=6),
        description="How late a send missed while `publisher run` was down may still go out "
        "(e.g. 30m, 6h, 2d); later, it is recorded as skipped and its posts go in the next one.",
    )

    @field_validator("misfire_grace", mode="before")
    @classmethod
    def _parse_duration(cls, value: Any) -> Any:
        return parse_duration(value)

    @field_validator("subject")
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
        except jinja2.TemplateSyntaxError as e:
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
            CronTrigger.from_crontab(value)
        except ValueError as e:
            raise ValueError(
                f"must be a crontab line of 5 fields (minute hour day month weekday), "
                f"e.g. '0 9 * * MON' ({e})"
            ) from None
        return value


def parse_duration(value: Any) -> Any:
    """``90s``, ``30m``, ``6h`` or ``2d`` as a timedelta; anything else is left to pydantic."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", value)
        if match:
            unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
            return timedelta(**{unit: float(match[1])})
    return value


class SchedulerSettings(_Section):
    health_file: Path | None = Field(
        None,
        description="File `publisher run` touches every minute, for a supervisor to check "
        "(its age tells whether the process is alive). Default: none.",
    )
    leader_poll_seconds: float = Field(
        5.0,
        gt=0,
        le=30,
        description="How often a standby `publisher run` tries to take over, and the leader "
        "checks it still holds the lead (PostgreSQL).",
    )
    leader_timeout_seconds: int = Field(
        20,
        ge=1,
        le=600,
        description="After this many seconds without an answer, PostgreSQL drops a lost "
        "leader's connection (TCP keepalives), so a standby can take over.",
    )

    @field_validator("health_file")
    @classmethod
    def _resolve_health(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _beside_config(value, info)


class WebSettings(_Section):
    host: str = Field("127.0.0.1", description="Address `publisher serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `publisher serve` listens on.")
    public_url: WebUrl | None = Field(
        None,
        description="Public URL where `publisher serve` answers unsubscribe and preference "
        "links. Default: site.base_url.",
    )
    secret_key_env: str = Field(
        "PUBLISHER_SECRET_KEY",
        description="Name of the environment variable holding the key that signs links.",
    )
    templates: Path | None = Field(
        None, description="Folder of templates that override the web pages' own."
    )
    threads: int = Field(8, ge=1, le=256, description="Requests `publisher serve` answers at once.")
    connection_limit: int = Field(
        100, ge=1, le=10000, description="Open connections `publisher serve` accepts at most."
    )
    channel_timeout: int = Field(
        30, ge=1, le=3600, description="Seconds before an idle or stalled connection is closed."
    )
    max_request_body_kb: int = Field(
        64, ge=1, le=102400, description="Largest request body (KB); larger ones get 413."
    )
    trusted_proxies: int = Field(
        0,
        ge=0,
        le=5,
        description="Reverse proxies in front of `publisher serve` whose X-Forwarded-For, "
        "-Proto, -Host and -Prefix headers are believed (0: none).",
    )
    secure_cookies: bool = Field(
        True, description="Send the form cookie over HTTPS only (turn off for plain-HTTP tests)."
    )

    confirm_days: int = Field(
        7, ge=1, le=90, description="Days a subscription's confirmation link stays good."
    )
    subscribe_limit_per_client: str = Field(
        "10/hour",
        description="Subscribe requests one client address may send, as COUNT/PERIOD "
        "(second, minute, hour, day); more get 429.",
    )
    subscribe_limit_per_address: str = Field(
        "3/day",
        description="Confirmation emails one address may be sent, as COUNT/PERIOD; "
        "further requests get the same answer and no email.",
    )

    @field_validator("templates")
    @classmethod
    def _resolve_templates(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _beside_config(value, info)

    @field_validator("subscribe_limit_per_client", "subscribe_limit_per_address")
    @classmethod
    def _check_limit(cls, value: str) -> str:
        if not re.fullmatch(r"\s*\d+\s*/\s*(second|minute|hour|day)\s*", value):
            raise ValueError(
                "must be COUNT/PERIOD, e.g. 10/hour (period: second, minute, hour, day)"
            )
        return value

    @property
    def secret_key(self) -> str | None:
        return os.environ.get(self.secret_key_env)


class BounceSettings(_Section):
    soft_limit: int = Field(
        3,
        ge=1,
        description="Soft bounces within soft_days after which a subscriber is marked bounced.",
    )
    soft_days: int = Field(
        30, ge=1, le=3650, description="The window, in days, in which soft bounces are counted."
    )


class Settings(_Section):
    """Everything a deployment says about itself."""

    site: SiteSettings = Field(description="The site and the organisation behind it.")
    database: DatabaseSettings = Field(
        default_factory=DatabaseSettings, description="Where posts are stored."
    )
    feeds: FeedSettings = Field(default_factory=FeedSettings, description="Feed output.")
    email: EmailSettings = Field(description="Sender and SMTP server of the digest.")
    digests: tuple[DigestSettings, ...] = Field(
        (), max_length=50, description="Scheduled email digests."
    )
    web: WebSettings = Field(default_factory=WebSettings, description="The local web server.")
    scheduler: SchedulerSettings = Field(
        default_factory=SchedulerSettings, description="`publisher run`, the scheduler."
    )
    bounces: BounceSettings = Field(
        default_factory=BounceSettings,
        description="How `publisher bounces ingest` treats soft bounces.",
    )

    #: the file these settings were read from, and its YAML (for line numbers)
    _source: str = PrivateAttr("config.yaml")
    _document: YamlDocument | None = PrivateAttr(None)

    @property
    def source(self) -> str:
        """The config file these settings came from, as given (``--config``)."""
        return self._source

    def error(self, key: str, message: str) -> ConfigError:
        """A :class:`ConfigError` about ``key`` (dotted), naming this file and the key's line."""
        line = None
        if self._document is not None and key:
            loc = [int(p) if p.isdigit() else p for p in key.split(".")]
            line = self._document.line_of(loc)
        return ConfigError(self._source, key, message, line)

    @model_validator(mode="before")
    @classmethod
    def _validate_defaults(cls, data: Any) -> Any:
        # Sections left out are validated as empty ones, so their defaults
        # (paths relative to the config file) are resolved like written values.
        if isinstance(data, dict):
            return {"database": {}, "feeds": {}, "web": {}, "scheduler": {}, **data}
        return data

    @field_validator("email", mode="before")
    @classmethod
    def _no_secrets(cls, value: Any) -> Any:
        smtp = value.get("smtp") if isinstance(value, Mapping) else None
        if isinstance(smtp, Mapping) and "password" in smtp:
            raise ValueError(
                "smtp.password must not be stored in the config file; put the password "
                "in the environment variable named by email.smtp.password_env"
            )
        return value


def load_settings(
    path: str | os.PathLike[str] = DEFAULT_CONFIG, check_templates: bool = True
) -> Settings:
    """Read and validate a config file.

    :param check_templates: compile the digests' subject templates too (it
        loads Jinja2: a command that renders no mail may skip it).

    :raises ConfigError: naming the file, the key and the line.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(file), "", "no such file; pass --config PATH or create config.yaml"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(file), "", f"cannot be read: {e}") from e
    return parse_settings(
        text, source=str(file), base_dir=file.resolve().parent, check_templates=check_templates
    )


def parse_settings(
    text: str, source: str, base_dir: Path, check_templates: bool = True
) -> Settings:
    """Validate config text; paths in it are taken relative to ``base_dir``."""
    try:
        doc = parse_yaml(text)
    except YamlSyntaxError as e:
        raise ConfigError(source, "", f"not valid YAML: {e}", e.line) from e
    if not isinstance(doc.data, dict):
        raise ConfigError(source, "", "must be a YAML mapping of sections (site:, email:, …)")
    try:
        context = {"base_dir": base_dir, "check_templates": check_templates}
        settings = Settings.model_validate(doc.data, context=context)
    except ValidationError as e:
        first = describe_errors(e, doc, Settings)[0]
        raise ConfigError(source, first.key, first.message, first.line) from e
    settings._source = source
    settings._document = doc
    return settings
