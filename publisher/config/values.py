"""The kinds of value a config file holds, and the checks every section shares.

One line or plain text (no control characters where a header could be split),
absolute http(s) URLs, mail addresses, durations, and paths taken beside the
config file. The sections (``site``, ``mail``, ``web``, ``scheduler``) build on
these; nothing here knows a section.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator

from ..addresses import parse_mailbox
from ..errors import AddressError
from ..links import WEB_SCHEMES, UnsafeUrl, check_url


class Section(BaseModel):
    """A section of the file: unknown keys are refused, values frozen, and a number is
    never read from ``true`` or ``false`` (pydantic would take ``port: true`` as 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_truth_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if {int, float} & {annotation, *get_args(annotation)}:
                raise ValueError(f"must be a number, got the yes/no value {str(value).lower()}")
        return value


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


def base_dir(info: ValidationInfo) -> Path:
    """The config file's folder, from the validation context (``.`` without one)."""
    context = info.context or {}
    return Path(context.get("base_dir", "."))


def beside_config(value: Path, info: ValidationInfo) -> Path:
    """A path from the file, taken relative to the config file's folder."""
    return value if value.is_absolute() else base_dir(info) / value


def template_folder(path: Path) -> Path:
    """A folder of templates that override the shipped ones: it must be one (a typo
    fell back to the shipped templates without a word)."""
    if not path.is_dir():
        raise ValueError(f"{path} is not a folder ({'a file' if path.exists() else 'none'})")
    return path


def check_address(value: str) -> str:
    """``value`` if :func:`publisher.addresses.parse_mailbox` reads it (the one
    address validator), else a ``ValueError`` saying why."""
    try:
        parse_mailbox(value)
    except AddressError as e:
        why = e.why
        name = value.split("<", 1)[0]
        if "<" in value and "," in name and '"' not in name:
            # read as two addresses: a name with a comma needs quotes
            why += f'; a name with a comma goes in double quotes: "{name.strip()}" <…>'
        raise ValueError(why) from None
    return value


def parse_duration(value: Any) -> Any:
    """``90s``, ``30m``, ``6h`` or ``2d`` as a timedelta; anything else is left to pydantic."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", value)
        if match:
            unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
            return timedelta(**{unit: float(match[1])})
    return value
