"""Digest → HTML and text, with CSS inlined by premailer once per digest.

Compile once, personalise per recipient (as listmonk does): the templates
are rendered and inlined a single time with *placeholders* where each
subscriber's values go (``personal.name``, ``personal.unsubscribe_url`` …).
A placeholder is letters and digits around a random nonce, so neither
premailer nor an escaper changes it and no post can forge one; ``mail``
later swaps each for the subscriber's value, HTML-escaped.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import jinja2
import jinja2.sandbox
from premailer import Premailer

from ..config import DigestSettings, Settings
from ..errors import TemplateError
from ..urls import Urls
from .digest import Digest, DigestPost, DigestSection, condense
from .headers import one_line
from .templates import local_date, make_environment, template_dirs

_T = TypeVar("_T")

#: what a template can personalise: ``{{ personal.<field> }}``
PERSONAL_FIELDS = ("greeting", "name", "email", "unsubscribe_url", "preferences_url", "topics")
#: Gmail clips an HTML part larger than this ("[Message clipped]")
GMAIL_CLIP_BYTES = 102 * 1024
#: a subject longer than this is cut at a word: 200 characters of any script are at
#: most 800 octets of UTF-8, well before RFC 5322's 998, however a client unfolds them
SUBJECT_CHARS = 200
#: the preheader (the line after the subject in an inbox) is cut at a word here
PREHEADER_CHARS = 150


@dataclass(frozen=True)
class Placeholders:
    """Tokens that stand for per-subscriber values until a message is made."""

    nonce: str

    @classmethod
    def fresh(cls) -> Placeholders:
        return cls(secrets.token_hex(6))

    def token(self, field: str) -> str:
        return f"PUBLISHER{self.nonce}{field.replace('_', '')}X"

    @property
    def pattern(self) -> re.Pattern[str]:
        names = "|".join(f.replace("_", "") for f in PERSONAL_FIELDS)
        return re.compile(f"PUBLISHER{self.nonce}({names})X")


class _Personal:
    """``personal`` in templates: each field is its placeholder."""

    def __init__(self, placeholders: Placeholders) -> None:
        self._placeholders = placeholders

    def __getattr__(self, field: str) -> str:
        if field not in PERSONAL_FIELDS:
            raise AttributeError(
                f"personal.{field} does not exist; use one of {', '.join(PERSONAL_FIELDS)}"
            )
        return self._placeholders.token(field)


@dataclass(frozen=True)
class RenderedDigest:
    """A digest rendered for everyone: HTML (CSS inlined) and text, with placeholders."""

    digest: Digest
    subject: str
    html: str
    text: str
    placeholders: Placeholders
    #: the HTML template it was rendered from (the web version uses it too)
    html_template: str = "digest.html"

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


def template_names(config: DigestSettings, digest: Digest) -> tuple[list[str], list[str]]:
    """The HTML and text templates of this newsletter's ``digest``, each a list to try
    in turn (in the deployment's folder, then ours).

    A digest uses ``<template>.html`` and ``.txt`` (``template: monthly`` →
    ``monthly.html``; default ``digest``). The "nothing new" note uses
    ``<template>-note.html`` and ``.txt`` where a deployment wrote them, else
    ``note.html`` and ``note.txt``.
    """
    if digest.is_note:
        return (
            [f"{config.template}-note.html", "note.html"],
            [f"{config.template}-note.txt", "note.txt"],
        )
    return [f"{config.template}.html"], [f"{config.template}.txt"]


def describe_period(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """``between 18 November and 5 December 2019``, in the site's time zone."""
    first, last = start.astimezone(zone), end.astimezone(zone)
    if first.year == last.year:
        return f"between {first:%-d %B} and {last:%-d %B %Y}"
    return f"between {first:%-d %B %Y} and {last:%-d %B %Y}"


def inline_css(html: str) -> str:
    """premailer: move stylesheet rules into style attributes; media queries stay in <head>.

    premailer also writes some CSS back as HTML attributes; not ``width`` and
    ``height``: from ``height: auto`` it would write ``height="auto"`` over an
    image's numeric height, which Outlook for Windows then reads. The templates
    set both attributes themselves, in pixels.
    """
    return str(
        Premailer(
            html,
            allow_network=False,
            disable_validation=True,
            strip_important=False,
            disable_basic_attributes=["width", "height"],
            cssutils_logging_level=logging.CRITICAL,
        ).transform()
    )


def cut_at_word(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: cut at a word, with an ellipsis.

    A text without spaces (Chinese, say) is cut where the limit falls.
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if text[limit - 1] != " " and " " in cut.strip():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(",;:.–—- ") + "…"


def _guard(template: str, action: Callable[[], _T]) -> _T:
    try:
        return action()
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(f"{e.filename or e.name or template}:{e.lineno}: {e.message}") from e
    except jinja2.TemplatesNotFound as e:
        tried = ", ".join(str(n) for n in e.templates)
        raise TemplateError(f"none of the templates {tried} is in the template folders") from e
    except jinja2.TemplateNotFound as e:
        raise TemplateError(f"template {e.name!r} not found in the template folders") from e
    except jinja2.exceptions.SecurityError as e:
        raise TemplateError(f"{template}: not allowed in a template: {e}") from e
    except (jinja2.UndefinedError, AttributeError) as e:
        raise TemplateError(f"{template}: {_plain_names(str(e))}") from e
    except UnicodeDecodeError as e:
        raise TemplateError(f"{template}: a template is not UTF-8 ({e.reason})") from e
    except (ArithmeticError, LookupError, TypeError, ValueError) as e:
        # an expression that fails as it runs ({{ 1/0 }}, strftime(1)): the template's
        # line, where Jinja's traceback names it
        line = _template_line(e)
        where = f"{template}{f':{line}' if line else ''}"
        raise TemplateError(f"{where}: {type(e).__name__}: {e}") from e


#: what a template calls the objects it is given, by their class
_TEMPLATE_NAMES = {"SiteSettings": "site", "Digest": "digest", "DigestPost": "post"}


def _plain_names(message: str) -> str:
    """Jinja's "'publisher.config.site.SiteSettings object' has no attribute …" as the
    template names it: "site has no attribute …"."""
    return re.sub(
        r"'(?:[\w]+\.)*(\w+) object'",
        lambda found: _TEMPLATE_NAMES.get(found[1], found[1]),
        message,
    )


def _template_line(error: BaseException) -> int | None:
    """The line of the template where ``error`` was raised (Jinja maps its frames)."""
    found = None
    tb = error.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.endswith((".html", ".txt")) or name == "<template>":
            found = tb.tb_lineno
        tb = tb.tb_next
    return found


def render_subject(config: DigestSettings, settings: Settings, digest: Digest) -> str:
    """The subject line: one line, whatever the template or the posts contain.

    The template comes from the config, so it runs in Jinja's sandbox (no
    attribute walks to Python internals). Control characters go, white space
    runs become one space, and a subject over 200 characters is cut at a word.
    """
    env = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    zone = settings.site.zone
    key, source = (
        ("note_subject", config.note_subject) if digest.is_note else ("subject", config.subject)
    )
    text = _guard(
        f"digests[{config.name}].{key}",
        lambda: env.from_string(source).render(
            site=settings.site,
            digest=digest,
            period_start=digest.period_start.astimezone(zone),
            period_end=digest.period_end.astimezone(zone),
        ),
    )
    # no CR/LF may reach a header: every run of white space becomes one space
    return cut_at_word(one_line(text), SUBJECT_CHARS)


def check_subjects(settings: Settings, now: datetime) -> None:
    """Make every newsletter's subject and "nothing new" subject for a sample week,
    so a template that names what a subject does not have (``site.titel``) fails
    when the scheduler starts, not at the first send days later.

    :raises ConfigError: naming the file, the line and the key (``digests.0.subject``).
    """
    post = DigestPost(
        title="A post",
        link=settings.site.base_url,
        published=now,
        author="An author",
        excerpt_html="",
        summary="",
    )
    week = (now - timedelta(days=7), now)
    for index, config in enumerate(settings.digests):
        for key, sections in (("subject", (DigestSection(None, (post,)),)), ("note_subject", ())):
            try:
                render_subject(config, settings, Digest(config.name, *week, sections))
            except TemplateError as e:
                why = str(e).split(": ", 1)[-1]  # (the config's key says where)
                raise settings.error(f"digests.{index}.{key}", why) from e


def _context(
    digest: Digest,
    subject: str,
    settings: Settings,
    placeholders: Placeholders,
    web_version: bool = False,
) -> dict[str, Any]:
    zone = settings.site.zone
    if digest.is_note:
        preheader = f"Nothing new since {local_date(digest.period_start, zone)}"
    else:
        titles = ", ".join(p.title for p in digest.posts[:3])
        preheader = f"{len(digest.posts)} new: {titles}"
    return {
        "site": settings.site,
        "digest": digest,
        "subject": subject,
        "preheader": cut_at_word(preheader, PREHEADER_CHARS),
        "period": describe_period(digest.period_start, digest.period_end, settings.site.zone),
        "personal": _Personal(placeholders),
        "view_in_browser": Urls.from_settings(settings).digest_page(digest.name, digest.period_end),
        "web_version": web_version,
    }


def _render(
    env: jinja2.Environment, names: Sequence[str], context: dict[str, Any]
) -> tuple[str, str]:
    """The first of ``names`` found, rendered; and its name."""
    template = _guard(" or ".join(names), lambda: env.select_template(list(names)))
    name = template.name or names[0]
    return _guard(name, lambda: template.render(context)), name


def render_digest(
    digest: Digest,
    config: DigestSettings,
    settings: Settings,
    env: jinja2.Environment | None = None,
    placeholders: Placeholders | None = None,
) -> RenderedDigest:
    """Render and inline once; shrink to summaries when over the size budget.

    :raises TemplateError: naming the template and line at fault.
    """
    env = env or make_environment(template_dirs(settings), settings.site.zone)
    placeholders = placeholders or Placeholders.fresh()
    subject = render_subject(config, settings, digest)
    html_names, text_names = template_names(config, digest)
    page, name = _render(env, html_names, _context(digest, subject, settings, placeholders))
    html = inline_css(page)
    if len(html.encode("utf-8")) > config.size_budget_kb * 1024 and not digest.condensed:
        digest = condense(digest)
        context = _context(digest, subject, settings, placeholders)
        html = inline_css(_render(env, [name], context)[0])
    text = _render(env, text_names, _context(digest, subject, settings, placeholders))[0]
    return RenderedDigest(digest, subject, html, text, placeholders, name)


def render_web_page(rendered: RenderedDigest, settings: Settings) -> str:
    """The digest for anyone, at its "View in browser" address: the same layout and
    posts (condensed if the email was), with no personal values and no subscription
    links to misuse. Rendered only where it is published, not per edition."""
    env = make_environment(template_dirs(settings), settings.site.zone)
    context = _context(
        rendered.digest, rendered.subject, settings, rendered.placeholders, web_version=True
    )
    return inline_css(_render(env, [rendered.html_template], context)[0])
