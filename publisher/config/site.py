"""The ``site:``, ``database:`` and ``feeds:`` sections: what the site is,
where its posts are stored, and where its feeds are written."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator

from .values import OneLine, Section, Text, WebUrl, base_dir, beside_config

#: environment variable that overrides ``database.url`` (keeps passwords out of the file)
DATABASE_URL_ENV = "PUBLISHER_DATABASE_URL"


class SiteSettings(Section):
    title: OneLine = Field(
        min_length=1, max_length=200, description="Name of the site, used as feed and email title."
    )
    base_url: WebUrl = Field(description="Public URL of the site; post links are made under it.")
    description: OneLine = Field(
        "", max_length=500, description="One line about the site (feed subtitle)."
    )
    language: str = Field("en", description="BCP 47 language tag of the content.")
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

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        # a language (ISO 639: two or three letters), then region, script… subtags
        if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", value):
            raise ValueError(
                f"must be a language tag such as en, de or pt-BR (BCP 47), got {value!r}"
            )
        return value


class DatabaseSettings(Section):
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
        from_env = os.environ.get(DATABASE_URL_ENV)
        value = from_env or value
        if not value:
            return f"sqlite:///{base_dir(info) / 'publisher.db'}"
        if "://" not in value:
            where = f" (from the environment variable {DATABASE_URL_ENV})" if from_env else ""
            raise ValueError(
                f"must be a URL such as sqlite:///publisher.db or postgresql://…, got "
                f"{value!r}{where}"
            )
        prefix = "sqlite:///"
        if value.startswith(prefix) and not value.startswith(prefix + "/") and value != prefix:
            relative = value[len(prefix) :]
            if relative != ":memory:":
                return prefix + str(base_dir(info) / relative)
        return value


class FeedSettings(Section):
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
        path = beside_config(value, info)
        # the build owns what it finds there (a manifest of its files, a lock, a staging
        # folder beside it): a root or a home folder would be walked and littered
        resolved = path.resolve()
        try:
            home: Path | None = Path.home().resolve()
        except RuntimeError:  # no HOME and no passwd entry (a container's arbitrary uid)
            home = None
        if resolved == Path(resolved.anchor) or resolved == home:
            raise ValueError(f"{path} is a root or home folder; name a folder of its own")
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} is a file, not a folder")
        return path
