"""Staff preview of the upcoming digest (``publisher preview``, on 127.0.0.1).

Every request renders afresh through the same path as a send (compose:
build → render → message), so what staff see is what subscribers get. The
page shows the HTML at desktop and phone widths side by side, the text
part, the headers and the size against Gmail's clipping limit, lists past
digests (``?run=ID`` shows one), and reloads by itself when a template,
the config or a post changes (``static/reload.js`` polls ``/version``).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.wrappers import Response

from .. import db
from ..audience.recipients import Recipient
from ..config import Settings, load_settings
from ..errors import PublisherError
from ..mail.compose import compose
from ..mail.render import GMAIL_CLIP_BYTES, RenderedDigest
from ..mail.templates import template_dirs as email_template_dirs
from ..mail.window import digest_settings
from ..models import DigestRun, Post
from .app import EMAIL_POLICY, template_dirs

#: the preview page: our stylesheet and script, frames of its own pages, and polling /version
PREVIEW_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "frame-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class PreviewSource:
    """What the preview shows: the config file (read on every request) and the window."""

    config_path: Path
    name: str | None
    since: datetime | None
    until: datetime | None
    recipient: Recipient
    _engines: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> Settings:
        return load_settings(self.config_path)

    def sessions(self, settings: Settings) -> sessionmaker[Session]:
        url = settings.database.url or ""
        if url not in self._engines:
            self._engines[url] = db.make_engine(url)
        return db.make_sessionmaker(self._engines[url])


@dataclass(frozen=True)
class Shown:
    """One rendering of the digest, taken apart for the page."""

    rendered: RenderedDigest
    message: bytes
    parsed: EmailMessage
    html: str
    text: str


def _run_id() -> int | None:
    """``?run=ID``: a past run to show, or None for the upcoming digest."""
    raw = request.args.get("run")
    if raw is None:
        return None
    # ASCII digits only ("²" is a digit to str.isdigit), and no more than a row id holds
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise BadRequest(f"?run= takes the number of a past digest, not {raw!r}.")
    return int(raw)


def make_blueprint(source: PreviewSource) -> Blueprint:
    """The preview's pages, reading ``source`` on every request."""
    blueprint = Blueprint("preview", __name__)

    def show() -> Shown:
        settings = source.settings()
        config = digest_settings(settings, source.name)
        run_id = _run_id()
        with source.sessions(settings)() as session:
            since, until = source.since, source.until
            if run_id is not None:
                run = session.get(DigestRun, run_id)
                if run is None:
                    raise NotFound(f"There is no past digest number {run_id}.")
                since, until = run.period_start, run.period_end
            now = datetime.now(UTC)
            _, composed = compose(session, settings, config, source.recipient, now, since, until)
        parsed = email.message_from_bytes(composed.message, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        html_part, text_part = parsed.get_body(("html",)), parsed.get_body(("plain",))
        assert html_part is not None and text_part is not None
        return Shown(
            composed.rendered,
            composed.message,
            parsed,
            html_part.get_content(),
            text_part.get_content(),
        )

    def past_runs() -> list[DigestRun]:
        settings = source.settings()
        with source.sessions(settings)() as session:
            name = digest_settings(settings, source.name).name
            query = select(DigestRun).where(DigestRun.name == name)
            return list(session.scalars(query.order_by(DigestRun.period_end.desc()).limit(20)))

    @blueprint.get("/")
    def page() -> Response:
        try:
            shown: Shown | None = show()
            error = None
        except PublisherError as e:
            shown, error = None, str(e)
        size = len(shown.html.encode("utf-8")) if shown else 0
        page = render_template(
            "preview.html",
            shown=shown,
            error=error,
            size=size,
            clip=GMAIL_CLIP_BYTES,
            run=_run_id(),
            runs=past_runs() if shown else [],
        )
        response = Response(page, content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = PREVIEW_POLICY
        return response

    @blueprint.get("/email.html")
    def html() -> Response:
        try:
            body = show().html
        except PublisherError as e:
            body = render_template(
                "message.html", title="Cannot render", message=str(e), hint="", links=()
            )
        response = Response(body, content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = EMAIL_POLICY
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        return response

    @blueprint.get("/email.txt")
    def text() -> Response:
        return Response(show().text, content_type="text/plain; charset=utf-8")

    @blueprint.get("/digest.eml")
    def eml() -> Response:
        response = Response(show().message, content_type="message/rfc822")
        response.headers["Content-Disposition"] = 'attachment; filename="digest.eml"'
        return response

    @blueprint.get("/version")
    def version() -> Response:
        """Changes whenever what the preview shows could change."""
        digest = hashlib.sha256()
        settings = None
        try:
            settings = source.settings()
        except PublisherError as e:
            digest.update(str(e).encode())
        files = [source.config_path]
        if settings is not None:
            for folder in [*email_template_dirs(settings), *template_dirs(settings)]:
                files += sorted(p for p in folder.rglob("*") if p.is_file())
            with source.sessions(settings)() as session:
                stamp = session.execute(
                    select(func.count(Post.id), func.max(Post.updated_at), func.max(Post.id))
                ).one()
                digest.update(repr(tuple(stamp)).encode())
        for file in files:
            try:
                stat = file.stat()
            except FileNotFoundError:
                continue
            digest.update(f"{file}:{stat.st_mtime_ns}:{stat.st_size}".encode())
        return Response(digest.hexdigest()[:16], content_type="text/plain")

    return blueprint
