"""The whole file: :class:`Settings` (its sections, the file it came from, errors
that name that file and line) and reading it (:func:`load_settings`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..yamlsource import YamlDocument, YamlSyntaxError, describe_errors, parse_yaml
from .mail import BounceSettings, DigestSettings, EmailSettings
from .scheduler import SchedulerSettings
from .site import DatabaseSettings, FeedSettings, SiteSettings
from .values import Section
from .web import WebSettings

DEFAULT_CONFIG = "config.yaml"


class Settings(Section):
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
    except UnicodeDecodeError as e:
        raw = file.read_bytes()
        utf16 = raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:200]
        why = "is UTF-16" if utf16 else f"is not UTF-8 (byte 0x{raw[e.start]:02x} at {e.start})"
        raise ConfigError(str(file), "", f"{why}; save the file as UTF-8") from None
    except OSError as e:
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
        problems = describe_errors(e, doc, Settings)
        # a key typed wrong is the mistake; the key it should have been, "missing", follows
        first = next((p for p in problems if p.message.startswith("unknown key")), problems[0])
        raise ConfigError(source, first.key, first.message, first.line) from e
    settings._source = source
    settings._document = doc
    check_digest_names(settings)
    check_digest_templates(settings)
    return settings


def check_digest_names(settings: Settings) -> None:
    """Each newsletter's name is its own: subscriptions, runs and ``--name`` find a
    newsletter by it (a second ``weekly`` was listed, and never sent).

    :raises ConfigError: naming the second one's line.
    """
    seen: dict[str, int] = {}
    for index, digest in enumerate(settings.digests):
        if digest.name in seen:
            raise settings.error(
                f"digests.{index}.name",
                f"{digest.name!r} is the name of digests.{seen[digest.name]} already; "
                "give each newsletter a name of its own",
            )
        seen[digest.name] = index


def check_digest_templates(settings: Settings) -> None:
    """Each newsletter's ``template`` names files that exist, so a typo is a config error
    at start-up, not a failed send on Monday morning.

    :raises ConfigError: naming the file, the line and ``digests.N.template``.
    """
    folders = settings.email.template_dirs
    for index, digest in enumerate(settings.digests):
        missing = [
            f"{digest.template}.{kind}"
            for kind in ("html", "txt")
            if not any((folder / f"{digest.template}.{kind}").is_file() for folder in folders)
        ]
        if missing:
            where = " or ".join(str(folder) for folder in folders)
            raise settings.error(
                f"digests.{index}.template",
                f"newsletter {digest.name!r} names template {digest.template!r}, but "
                f"{' and '.join(missing)} are not in {where}; write them there (copy "
                "digest.html and digest.txt to start), or leave template out to use those",
            )
