"""Staff preview of the upcoming digest, served on 127.0.0.1.

Every request renders afresh through the same path as a send (build →
render → message), so what staff see is what subscribers get. The page shows
the HTML at desktop and phone widths side by side, the text part, the
headers and the size against Gmail's clipping limit, and reloads by itself
when a template, the config or a post changes.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .. import db
from ..audience.recipients import Recipient
from ..config import Settings, load_settings
from ..errors import PublisherError
from ..mail.compose import compose
from ..mail.render import GMAIL_CLIP_BYTES, template_dirs
from ..mail.window import digest_settings
from ..models import DigestRun, Post

RELOAD_SCRIPT = """<script>
(function () {
  var seen = null;
  setInterval(function () {
    fetch('/version').then(function (r) { return r.text(); }).then(function (v) {
      if (seen !== null && v !== seen) { location.reload(); }
      seen = v;
    }).catch(function () {});
  }, 1000);
})();
</script>"""


class PreviewApp:
    """WSGI app: ``/`` the preview page, ``/email.html``, ``/email.txt``, ``/digest.eml``."""

    def __init__(
        self,
        config_path: str,
        name: str | None,
        since: datetime | None,
        until: datetime | None,
        recipient: Recipient,
    ) -> None:
        self.config_path = Path(config_path)
        self.name, self.since, self.until = name, since, until
        self.recipient = recipient
        self.routes = Map(
            [
                Rule("/", endpoint="page"),
                Rule("/email.html", endpoint="html"),
                Rule("/email.txt", endpoint="text"),
                Rule("/digest.eml", endpoint="eml"),
                Rule("/version", endpoint="version"),
            ]
        )
        self._engines: dict[str, Any] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, _ = self.routes.bind_to_environ(environ).match()
            response: Response = getattr(self, f"_{endpoint}")(request)
        except HTTPException as e:
            return e(environ, start_response)
        return response(environ, start_response)

    # -- the digest, rendered as a send would render it

    def _settings(self) -> Settings:
        return load_settings(self.config_path)

    def _factory(self, settings: Settings) -> Any:
        url = settings.database.url or ""
        if url not in self._engines:
            self._engines[url] = db.make_engine(url)
        return db.make_sessionmaker(self._engines[url])

    def _window(self, session: Any, request: Request) -> tuple[datetime | None, datetime | None]:
        """The window to show: a past run's (``?run=ID``), else the command line's."""
        run_id = request.args.get("run", type=int)
        if run_id is None:
            return self.since, self.until
        run = session.get(DigestRun, run_id)
        if run is None:
            raise NotFound(f"No digest run {run_id}.")
        return run.period_start, run.period_end

    def _message(self, request: Request) -> tuple[Settings, Any, bytes]:
        settings = self._settings()
        config = digest_settings(settings, self.name)
        now = datetime.now(UTC)
        with self._factory(settings)() as session:
            since, until = self._window(session, request)
            _, composed = compose(session, settings, config, self.recipient, now, since, until)
        return settings, composed.rendered, composed.message

    def _parts(self, request: Request) -> tuple[Any, EmailMessage, str, str]:
        _, rendered, message = self._message(request)
        parsed = email.message_from_bytes(message, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        html_part, text_part = parsed.get_body(("html",)), parsed.get_body(("plain",))
        assert html_part is not None and text_part is not None
        return rendered, parsed, html_part.get_content(), text_part.get_content()

    def _runs(self) -> list[DigestRun]:
        settings = self._settings()
        with self._factory(settings)() as session:
            name = digest_settings(settings, self.name).name
            query = select(DigestRun).where(DigestRun.name == name)
            return list(session.scalars(query.order_by(DigestRun.period_end.desc()).limit(20)))

    # -- endpoints

    def _html(self, request: Request) -> Response:
        try:
            body = self._parts(request)[2]
        except PublisherError as e:
            body = f"<p>{html.escape(str(e))}</p>"
        return Response(body, content_type="text/html; charset=utf-8")

    def _text(self, request: Request) -> Response:
        return Response(self._parts(request)[3], content_type="text/plain; charset=utf-8")

    def _eml(self, request: Request) -> Response:
        response = Response(self._message(request)[2], content_type="message/rfc822")
        response.headers["Content-Disposition"] = 'attachment; filename="digest.eml"'
        return response

    def _version(self, request: Request) -> Response:
        """Changes whenever what the preview shows could change."""
        digest = hashlib.sha256()
        settings = None
        try:
            settings = self._settings()
        except PublisherError as e:
            digest.update(str(e).encode())
        files = [self.config_path]
        if settings is not None:
            for folder in template_dirs(settings):
                files += sorted(p for p in folder.rglob("*") if p.is_file())
            with self._factory(settings)() as session:
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

    def _page(self, request: Request) -> Response:
        try:
            rendered, parsed, html_body, text_body = self._parts(request)
        except PublisherError as e:
            return Response(
                _page("Digest preview", f'<p class="error">{html.escape(str(e))}</p>'),
                content_type="text/html; charset=utf-8",
            )
        size = len(html_body.encode("utf-8"))
        headers = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in parsed.items()
        )
        verdict = "ok" if size < GMAIL_CLIP_BYTES else "clipped"
        condensed = (
            "<p class='note'>Shrunk to summaries to stay under its size budget.</p>"
            if rendered.digest.condensed
            else ""
        )
        query = f"?run={request.args['run']}" if "run" in request.args else ""
        past = "".join(
            f'<li><a href="/?run={run.id}">{run.period_start:%Y-%m-%d} – {run.period_end:%Y-%m-%d}'
            f"</a>{'' if run.finished_at else ' (not finished)'}</li>"
            for run in self._runs()
        )
        past_html = f"<h2>Past digests</h2><ul>{past}</ul>" if past else ""
        body = f"""
<p><a href="/">Upcoming digest</a></p>
<h1>{html.escape(rendered.subject)}</h1>
<p class="size {verdict}">HTML part: {size / 1024:.1f} KB of Gmail's {GMAIL_CLIP_BYTES // 1024} KB
({len(rendered.digest.posts)} posts) · <a href="/digest.eml{query}">digest.eml</a>
· <a href="/email.html{query}" target="_blank">HTML alone</a></p>
{condensed}
<div class="frames">
<figure><figcaption>Desktop, 600 px</figcaption>
<iframe id="desktop" title="Desktop" src="/email.html{query}" width="640" height="900">
</iframe></figure>
<figure><figcaption>Phone, 375 px</figcaption>
<iframe id="phone" title="Phone" src="/email.html{query}" width="375" height="900">
</iframe></figure>
</div>
<h2>Headers</h2><table class="headers">{headers}</table>
<h2>Text part</h2><pre>{html.escape(text_body)}</pre>
{past_html}"""
        return Response(_page("Digest preview", body), content_type="text/html; charset=utf-8")


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; margin: 1.5rem; color: #111827; }}
.frames {{ display: flex; gap: 1.5rem; align-items: flex-start; flex-wrap: wrap; }}
figure {{ margin: 0; }} figcaption {{ font-weight: 600; margin-bottom: .3rem; }}
iframe {{ border: 1px solid #d1d5db; background: #fff; }}
.headers th {{ text-align: left; padding-right: 1rem; vertical-align: top; white-space: nowrap; }}
.headers td {{ word-break: break-all; }}
pre {{ background: #f9fafb; padding: 1rem; white-space: pre-wrap; max-width: 80ch; }}
.size.ok {{ color: #065f46; }} .size.clipped {{ color: #b91c1c; font-weight: 600; }}
.error {{ color: #b91c1c; font-weight: 600; }} .note {{ color: #92400e; }}
</style></head><body>{body}
{RELOAD_SCRIPT}
</body></html>"""
