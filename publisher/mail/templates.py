"""The Jinja2 environment of the email templates: the deployment's folder first,
then the templates we ship; autoescape for HTML, strict about undefined names.

Small on purpose: the confirmation mail of the subscription pages uses it
without loading the digest renderer (premailer, cssutils).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from ..config import Settings
from ..content.html import human_size


def template_dirs(settings: Settings) -> list[Path]:
    """Where templates are looked up: the deployment's folder first, then ours."""
    return list(settings.email.template_dirs)


def make_environment(dirs: Sequence[Path], zone: ZoneInfo) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["local_date"] = lambda when: local_date(when, zone)
    env.filters["filesize"] = human_size
    return env


def local_date(when: datetime, zone: ZoneInfo) -> str:
    return f"{when.astimezone(zone):%-d %B %Y}"
