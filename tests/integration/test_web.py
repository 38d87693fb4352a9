"""Serving feeds over real HTTP: media types, validators, 304, gzip."""

from __future__ import annotations

import gzip
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from werkzeug.datastructures import Headers

from publisher.config import Settings
from publisher.web.app import create_app
from publisher.web.server import ServerThread

FILES = {
    "atom.xml": b"<feed xmlns='http://www.w3.org/2005/Atom'/>",
    "rss.xml": b"<rss version='2.0'/>",
    "feed.json": b'{"version": "https://jsonfeed.org/version/1.1"}',
    "tags/events/atom.xml": b"<feed xmlns='http://www.w3.org/2005/Atom'/>",
    "archive/atom-1.xml": b"<feed xmlns='http://www.w3.org/2005/Atom'/>",
    ".manifest.json": b"{}",
    "digests/weekly-2026-11-25-1200.html": b"<!DOCTYPE html><p>web version</p>",
    "digests/weekly-2026-11-18.html": b"<!DOCTYPE html><p>named by its day, as before</p>",
}


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    for name, data in FILES.items():
        path = settings.feeds.output_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with ServerThread(create_app(settings), settings.web) as server:
        yield server.url


def get(url: str, **headers: str) -> tuple[int, Headers, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, Headers(list(response.headers.items())), response.read()
    except urllib.error.HTTPError as e:
        return e.code, Headers(list(e.headers.items())), e.read()


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("atom.xml", "application/atom+xml"),
        ("rss.xml", "application/rss+xml"),
        ("feed.json", "application/feed+json"),
        ("tags/events/atom.xml", "application/atom+xml"),
        ("archive/atom-1.xml", "application/atom+xml"),
        ("digests/weekly-2026-11-25-1200.html", "text/html"),
        ("digests/weekly-2026-11-18.html", "text/html"),
    ],
)
def test_media_types(base_url: str, path: str, media_type: str) -> None:
    status, headers, body = get(f"{base_url}/feeds/{path}")
    assert status == 200
    assert headers["Content-Type"] == f"{media_type}; charset=utf-8"
    assert body == FILES[path]


def test_conditional_get_answers_304(base_url: str, settings: Settings) -> None:
    status, headers, _ = get(f"{base_url}/feeds/atom.xml")
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert status == 200 and etag.startswith('"')
    assert get(f"{base_url}/feeds/atom.xml", **{"If-None-Match": etag})[0] == 304
    assert get(f"{base_url}/feeds/atom.xml", **{"If-Modified-Since": modified})[0] == 304
    # a changed file gets a new validator
    (settings.feeds.output_dir / "atom.xml").write_bytes(b"<feed xmlns='x'>changed</feed>")
    status, headers, _ = get(f"{base_url}/feeds/atom.xml", **{"If-None-Match": etag})
    assert status == 200 and headers["ETag"] != etag


def test_gzip_when_asked(base_url: str) -> None:
    status, headers, body = get(f"{base_url}/feeds/rss.xml", **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in headers["Vary"]
    assert gzip.decompress(body) == FILES["rss.xml"]
    again = get(
        f"{base_url}/feeds/rss.xml", **{"Accept-Encoding": "gzip", "If-None-Match": headers["ETag"]}
    )
    assert again[0] == 304


@pytest.mark.parametrize("path", [".manifest.json", "../config.yaml", "nope.xml", "x/../../a"])
def test_only_feeds_are_served(base_url: str, path: str) -> None:
    assert get(f"{base_url}/feeds/{path}")[0] == 404


# The front page lists the feeds with their autodiscovery links, and leads a reader who
# wants the news by email to the subscribe form.
def test_index_has_autodiscovery_links_and_the_way_to_subscribe(base_url: str) -> None:
    status, headers, body = get(f"{base_url}/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '<link rel="alternate" type="application/atom+xml"' in page
    assert 'href="/feeds/rss.xml"' in page and 'href="/feeds/feed.json"' in page
    assert 'href="/feeds/tags/events/atom.xml"' in page
    assert '<a href="/subscribe">subscribe to the newsletter</a>' in page


def test_serve_binds_localhost_by_default(settings: Settings) -> None:
    assert settings.web.host == "127.0.0.1"
