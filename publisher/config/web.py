"""The ``web:`` section: ``publisher serve``, its limits, and the key that signs links."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from .values import Section, WebUrl, beside_config, template_folder


class WebSettings(Section):
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
        return None if value is None else template_folder(beside_config(value, info))

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
