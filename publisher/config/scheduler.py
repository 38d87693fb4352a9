"""The ``scheduler:`` section: ``publisher run``'s health file and leader election."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from .values import Section, beside_config


class SchedulerSettings(Section):
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
        return None if value is None else beside_config(value, info)
