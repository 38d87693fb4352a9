"""The feed folder over HTTP, with the caching feed readers rely on.

``GET /feeds/<path>`` serves a generated file with its media type, a strong
``ETag`` (a hash of its bytes) and ``Last-Modified``, answers conditional
requests with ``304 Not Modified`` (RFC 9110 13.1), and compresses with gzip
when the client asks. Body and validators come from one read of the file
(:mod:`.folder`). ``GET /`` lists the feeds by the name of their tag or
author, with autodiscovery links for the main feed.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template, request
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from .. import queries
from ..urls import FEED_FILES
from .app import EMAIL_POLICY, web_context

blueprint = Blueprint("feeds", __name__)

#: how the formats are offered, in order
FORMATS = (
    ("Atom", FEED_FILES["atom"]),
    ("RSS", FEED_FILES["rss"]),
    ("JSON Feed", FEED_FILES["json"]),
)


@dataclass(frozen=True)
class FeedLink:
    """A feed folder as the index shows it."""

    label: str
    #: the folder inside the feed folder, ending in "/" (empty for the main feed)
    prefix: str


@blueprint.get("/feeds/<path:path>")
def feed(path: str) -> Response:
    context = web_context()
    file = context.folder.read(path)
    if file is None:
        raise NotFound(f"No feed at /feeds/{path}; run `publisher build` to write the feeds.")
    use_gzip = request.accept_encodings["gzip"] > 0
    body = context.folder.gzipped(file) if use_gzip else file.data
    response = Response(body, content_type=file.media_type)
    response.set_etag(file.etag + ("-gz" if use_gzip else ""))
    response.last_modified = file.modified
    response.vary.add("Accept-Encoding")
    response.cache_control.public = True
    response.cache_control.max_age = 300
    if use_gzip:
        response.content_encoding = "gzip"
    if response.mimetype == "text/html":
        # a digest's web version: the email's HTML, with its inline styles
        response.headers["Content-Security-Policy"] = EMAIL_POLICY
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response.make_conditional(request)


@blueprint.get("/")
def index() -> str:
    """The feeds, by the name of their tag or author, with autodiscovery links."""
    context = web_context()
    names: dict[str, str] = {}
    if context.factory is not None:
        with context.factory() as session:
            names.update({f"tags/{t.slug}": t.name for t in queries.all_tags(session)})
            names.update({f"authors/{a.slug}": a.name for a in queries.all_authors(session)})
    main: list[FeedLink] = []
    groups: dict[str, list[FeedLink]] = {"tags": [], "authors": [], "other": []}
    for folder in context.folder.feed_folders():
        if folder == "":
            main.append(FeedLink("All posts", ""))
            continue
        kind = folder.split("/", 1)[0]
        label = names.get(folder, folder.split("/")[-1] if kind in groups else folder)
        groups[kind if kind in groups else "other"].append(FeedLink(label, folder + "/"))
    for links in groups.values():
        links.sort(key=lambda link: link.label.casefold())
    return render_template(
        "index.html",
        main=main,
        sections=[
            ("Topics", groups["tags"]),
            ("Authors", groups["authors"]),
            ("Other feeds", groups["other"]),
        ],
        formats=FORMATS,
        newsletters=len(context.settings.digests),
        discovery=[
            ("application/atom+xml", "Atom", FEED_FILES["atom"]),
            ("application/rss+xml", "RSS", FEED_FILES["rss"]),
            ("application/feed+json", "JSON Feed", FEED_FILES["json"]),
        ],
    )
