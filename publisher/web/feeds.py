"""The web server: the feed folder with the HTTP caching feed readers rely on,
and the links every digest carries (unsubscribe, preferences).

``GET /feeds/<path>`` serves a generated file with its media type, a strong
``ETag`` (a hash of its bytes) and ``Last-Modified`` (its mtime, which builds
leave alone when the bytes do not change), answers conditional requests with
``304 Not Modified``, and compresses with gzip when the client asks.
``GET /`` is an index page with feed autodiscovery links.

``/unsubscribe/<token>``: ``GET`` asks to confirm (mail scanners follow
links, so a GET must not unsubscribe), ``POST`` unsubscribes, which is also
RFC 8058 one-click unsubscription from the mail client.
``/preferences/<token>``: choose the topics (tags) the digest is about.
Tokens are signed (itsdangerous); a bad one gets a 400 page saying so.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import BadRequest, HTTPException, NotFound, ServiceUnavailable
from werkzeug.routing import Map, Rule
from werkzeug.security import safe_join
from werkzeug.wrappers import Request, Response

from .. import queries
from ..audience.subscribers import set_topics, unsubscribe
from ..audience.tokens import make_signer
from ..config import Settings
from ..models import Subscriber

MEDIA_TYPES = (
    (re.compile(r"^atom(-\d+)?\.xml$"), "application/atom+xml; charset=utf-8"),
    (re.compile(r"^rss(-\d+)?\.xml$"), "application/rss+xml; charset=utf-8"),
    (re.compile(r"^feed(-\d+)?\.json$"), "application/feed+json; charset=utf-8"),
    # web versions of digests ("View in browser")
    (re.compile(r"^[a-z0-9][a-z0-9-]*-\d{4}-\d{2}-\d{2}\.html$"), "text/html; charset=utf-8"),
)


def media_type(name: str) -> str | None:
    """The media type of a generated feed file, or None for anything else."""
    for pattern, kind in MEDIA_TYPES:
        if pattern.match(name):
            return kind
    return None


@dataclass(frozen=True)
class _Cached:
    mtime_ns: int
    size: int
    etag: str
    gzipped: bytes


class FeedApp:
    """WSGI application: ``settings.feeds.output_dir``, and, given a database and
    the signing key, the unsubscribe and preference pages."""

    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session] | None = None,
        secret: str | None = None,
    ) -> None:
        self.settings = settings
        self.root = settings.feeds.output_dir
        self.factory = factory
        self.signer = make_signer(secret) if secret else None
        self.urls = Map(
            [
                Rule("/", endpoint="index", methods=["GET", "HEAD"]),
                Rule("/feeds/<path:path>", endpoint="feed", methods=["GET", "HEAD"]),
                Rule("/unsubscribe/<token>", endpoint="unsubscribe", methods=["GET", "POST"]),
                Rule("/preferences/<token>", endpoint="preferences", methods=["GET", "POST"]),
            ]
        )
        self._cache: dict[str, _Cached] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, values = self.urls.bind_to_environ(environ).match()
            response: Response = getattr(self, endpoint)(request, **values)
        except HTTPException as e:
            return e(environ, start_response)
        return response(environ, start_response)

    # -- subscriptions

    def _subscriber_id(self, token: str) -> int:
        """The subscriber a signed link is for; a 400 page for anything else."""
        if self.factory is None or self.signer is None:
            raise ServiceUnavailable(
                "Subscriptions are not handled here: start `publisher serve` with "
                f"{self.settings.web.secret_key_env} set."
            )
        try:
            key = str(self.signer.loads(token))
        except BadSignature:
            raise BadRequest(
                "This link is not valid (it may have been cut short by your mail program). "
                "Use the link at the bottom of the latest email."
            ) from None
        if not key.isdigit():
            raise BadRequest(
                "This link came in a test message: there is no subscription to change."
            )
        return int(key)

    def unsubscribe(self, request: Request, token: str) -> Response:
        subscriber_id = self._subscriber_id(token)
        assert self.factory is not None
        site = self.settings.site
        if request.method == "POST":
            address = unsubscribe(self.factory, subscriber_id)
            if address is None:
                raise NotFound("There is no such subscription any more.")
            return _html_page(
                site.title,
                f"<h1>Unsubscribed</h1><p>{html.escape(address)} will get no more emails "
                f"from {html.escape(site.title)}.</p>",
            )
        return _html_page(
            site.title,
            "<h1>Unsubscribe?</h1>"
            f"<p>Stop the emails from {html.escape(site.title)}?</p>"
            f'<form method="post"><button type="submit">Unsubscribe</button></form>'
            f'<p>Or <a href="/preferences/{html.escape(token)}">choose your topics</a> '
            "instead.</p>",
        )

    def preferences(self, request: Request, token: str) -> Response:
        subscriber_id = self._subscriber_id(token)
        assert self.factory is not None
        if request.method == "POST":
            chosen = request.form.getlist("topic")
            if set_topics(self.factory, subscriber_id, chosen) is None:
                raise NotFound("There is no such subscription any more.")
        with self.factory() as session:
            subscriber = session.get(Subscriber, subscriber_id)
            if subscriber is None:
                raise NotFound("There is no such subscription any more.")
            mine = {t.slug for t in subscriber.topics}
            boxes = "".join(
                f'<label><input type="checkbox" name="topic" value="{html.escape(t.slug)}"'
                f"{' checked' if t.slug in mine else ''}> {html.escape(t.name)}</label><br>"
                for t in queries.all_tags(session)
            )
            status = subscriber.status.value
        saved = "<p><strong>Saved.</strong></p>" if request.method == "POST" else ""
        return _html_page(
            self.settings.site.title,
            f"<h1>Your topics</h1>{saved}<p>Tick the topics you want news about; "
            f"none ticked means all of them. (Subscription: {status}.)</p>"
            f'<form method="post">{boxes}<p><button type="submit">Save</button></p></form>',
        )

    def feed(self, request: Request, path: str) -> Response:
        name = path.rsplit("/", 1)[-1]
        kind = media_type(name)
        target = safe_join(str(self.root), path)
        if kind is None or target is None or not Path(target).is_file():
            raise NotFound(f"No feed at /feeds/{path}; run `publisher build` to write the feeds.")
        file = Path(target)
        data = file.read_bytes()
        stat = file.stat()
        cached = self._cache.get(path)
        if cached is None or (cached.mtime_ns, cached.size) != (stat.st_mtime_ns, stat.st_size):
            # mtime=0: the same bytes always compress to the same bytes
            cached = _Cached(
                stat.st_mtime_ns,
                stat.st_size,
                hashlib.sha256(data).hexdigest()[:32],
                gzip.compress(data, mtime=0),
            )
            self._cache[path] = cached
        use_gzip = request.accept_encodings["gzip"] > 0
        response = Response(cached.gzipped if use_gzip else data, content_type=kind)
        response.set_etag(cached.etag + ("-gz" if use_gzip else ""))
        response.last_modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        response.vary.add("Accept-Encoding")
        response.cache_control.public = True
        response.cache_control.max_age = 300
        if use_gzip:
            response.content_encoding = "gzip"
        return response.make_conditional(request)

    def index(self, request: Request) -> Response:
        """The feeds, with autodiscovery links."""
        site = self.settings.site
        feeds = []
        for atom in sorted(self.root.glob("**/atom.xml")):
            folder = atom.parent.relative_to(self.root).as_posix()
            prefix = "" if folder == "." else folder + "/"
            feeds.append((prefix, folder if prefix else "All posts"))
        discovery = "\n".join(
            f'<link rel="alternate" type="{kind}" title="{html.escape(site.title)} ({label})" '
            f'href="/feeds/{name}">'
            for kind, name, label in (
                ("application/atom+xml", "atom.xml", "Atom"),
                ("application/rss+xml", "rss.xml", "RSS"),
                ("application/feed+json", "feed.json", "JSON Feed"),
            )
        )
        rows = "\n".join(
            f"<li>{html.escape(label)}: "
            + " · ".join(
                f'<a href="/feeds/{html.escape(prefix)}{name}">{fmt}</a>'
                for fmt, name in (("Atom", "atom.xml"), ("RSS", "rss.xml"), ("JSON", "feed.json"))
            )
            + "</li>"
            for prefix, label in feeds
        )
        body = (
            f'<!doctype html>\n<html lang="{html.escape(site.language)}">\n<head>\n'
            '<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(site.title)}: feeds</title>\n{discovery}\n"
            "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;"
            "padding:0 1rem}li{margin:.3rem 0}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(site.title)}</h1>\n"
            "<p>Follow the news in your feed reader: copy a link below into it.</p>\n"
            f"<ul>\n{rows or '<li>No feeds yet: run <code>publisher build</code>.</li>'}\n</ul>\n"
            "</body>\n</html>\n"
        )
        return Response(body, content_type="text/html; charset=utf-8")


def _html_page(title: str, body: str) -> Response:
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>body{{font:16px/1.5 system-ui,sans-serif;"
        "max-width:36rem;margin:2rem auto;padding:0 1rem}</style></head>"
        f"<body>{body}</body></html>\n"
    )
    return Response(page, content_type="text/html; charset=utf-8")
