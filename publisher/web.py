"""The local web server: the feed folder, with the HTTP caching feed readers rely on.

``GET /feeds/<path>`` serves a generated file with its media type, a strong
``ETag`` (a hash of its bytes) and ``Last-Modified`` (its mtime, which builds
leave alone when the bytes do not change), answers conditional requests with
``304 Not Modified``, and compresses with gzip when the client asks.
``GET /`` is an index page with feed autodiscovery links.
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

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.security import safe_join
from werkzeug.wrappers import Request, Response

from .config import Settings

MEDIA_TYPES = (
    (re.compile(r"^atom(-\d+)?\.xml$"), "application/atom+xml; charset=utf-8"),
    (re.compile(r"^rss(-\d+)?\.xml$"), "application/rss+xml; charset=utf-8"),
    (re.compile(r"^feed(-\d+)?\.json$"), "application/feed+json; charset=utf-8"),
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
    """WSGI application serving ``settings.feeds.output_dir``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.feeds.output_dir
        self.urls = Map(
            [
                Rule("/", endpoint="index"),
                Rule("/feeds/<path:path>", endpoint="feed"),
            ]
        )
        self._cache: dict[str, _Cached] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            if request.method not in ("GET", "HEAD"):
                raise MethodNotAllowed(valid_methods=["GET", "HEAD"])
            endpoint, values = self.urls.bind_to_environ(environ).match()
            response = self.index(request) if endpoint == "index" else self.feed(request, **values)
        except HTTPException as e:
            return e(environ, start_response)
        return response(environ, start_response)

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
