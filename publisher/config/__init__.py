"""config.yaml → frozen :class:`Settings`.

The models are the one declared table of settings: the loader, the README's
configuration reference (checked by ``tests/test_docs.py``) and the error
messages all come from them. A module per part of the file: ``site`` (the
``site:``, ``database:`` and ``feeds:`` sections), ``mail`` (``email:``,
``digests:``, ``bounces:``), ``web``, ``scheduler``; the kinds of value they
share (one-line text, URLs, addresses, durations, paths) in ``values``; the
whole file and its loading in ``settings``. Every name is re-exported here:
callers import ``publisher.config``.

Relative paths are resolved against the folder of the config file, so the
publisher behaves the same from any cwd. Secrets never live in the file: it
names environment variables instead.

May import ``addresses``, ``links``, ``errors`` and ``yamlsource``; nothing
else of the publisher (every family reads its settings from here).
"""

from __future__ import annotations

from .mail import (
    SUBJECT_VARIABLES,
    BounceSettings,
    DigestSettings,
    DkimSettings,
    EmailSettings,
    SmtpSettings,
)
from .scheduler import SchedulerSettings
from .settings import DEFAULT_CONFIG, Settings, load_settings, parse_settings
from .site import DATABASE_URL_ENV, DatabaseSettings, FeedSettings, SiteSettings
from .values import OneLine, Text, WebUrl, parse_duration
from .web import WebSettings

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_CONFIG",
    "SUBJECT_VARIABLES",
    "BounceSettings",
    "DatabaseSettings",
    "DigestSettings",
    "DkimSettings",
    "EmailSettings",
    "FeedSettings",
    "OneLine",
    "SchedulerSettings",
    "Settings",
    "SiteSettings",
    "SmtpSettings",
    "Text",
    "WebSettings",
    "WebUrl",
    "load_settings",
    "parse_duration",
    "parse_settings",
]
