"""`publisher serve` facing the internet: one read per response, no symlinks, headers, limits.

Everything here goes over real HTTP to waitress, as `publisher serve` runs it.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.feeds.build import publish_feeds
from publisher.web.app import create_app
from publisher.web.server import ServerThread
from tests.webclient import Browser

NOW = datetime(2026, 11, 25, tzinfo=UTC)
pytestmark = pytest.mark.integration


def no_ping(hub: str, topics: list[str]) -> list[str]:
    return []


@pytest.fixture
def site(
    sessions: sessionmaker[Session], settings: Settings, sample_dir: Path
) -> Iterator[Browser]:
    import_target(sessions, str(sample_dir), settings, NOW)
    publish_feeds(sessions, settings, NOW, ping=no_ping)
    with ServerThread(create_app(settings, sessions), settings.web) as server:
        yield Browser(server.url)


def test_the_index_names_feeds_by_tag_and_author(site: Browser) -> None:
    page = site.get("/").text
    assert "Civic Space" in page and "Leave No One Behind" in page and "Thomas Howie" in page
    assert ">civic-space<" not in page and "tags/civic-space</" not in page
    assert 'href="/feeds/tags/civic-space/atom.xml"' in page


# A server started without the secret key serves the feeds and closes the
# subscription pages: the reader is asked to come back later (not told about
# environment variables); the operator finds what to do in the log.
def test_subscriptions_closed_without_the_key_tell_the_reader_to_come_back(
    site: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    answer = site.get("/subscribe")
    assert answer.status == 503 and "not open at the moment" in answer.text
    assert "PUBLISHER_SECRET_KEY" not in answer.text and "publisher serve" not in answer.text
    assert any("PUBLISHER_SECRET_KEY" in r.getMessage() for r in caplog.records)


def test_html_pages_carry_security_headers(site: Browser) -> None:
    for path in ("/", "/no-such-page"):
        headers = site.get(path).headers
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
    feed = site.get("/feeds/atom.xml").headers
    assert feed["X-Content-Type-Options"] == "nosniff"


def test_symlinks_are_not_followed_out_of_the_feed_folder(
    site: Browser, settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "atom.xml").write_text("<feed>private</feed>")
    out = settings.feeds.output_dir
    (out / "tags" / "leak").symlink_to(secret, target_is_directory=True)
    (out / "tags" / "events" / "rss-9.xml").symlink_to(secret / "atom.xml")
    for path in ("/feeds/tags/leak/atom.xml", "/feeds/tags/events/rss-9.xml"):
        answer = site.get(path)
        assert answer.status == 404 and b"private" not in answer.body
    assert "leak" not in site.get("/").text


def test_a_large_body_is_refused(site: Browser) -> None:
    answer = site.post("/preferences/x", {"topic": "x" * 100_000})
    assert answer.status == 413


def test_a_stalled_client_is_cut_off(settings: Settings, sessions: sessionmaker[Session]) -> None:
    web = settings.web.model_copy(update={"channel_timeout": 1})
    with ServerThread(create_app(settings, sessions), web) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as half_open:
            half_open.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes the request
            # the server closes the connection (recv returns b"") instead of waiting forever
            assert half_open.recv(1024) == b""


# A reader fetching a feed in a loop while builds run never gets an old body
# with a new ETag or the reverse, and the first request after a build has
# finished gets the new version.
def test_body_and_etag_come_from_one_read_while_builds_run(
    site: Browser, sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    post = tmp_path / "changing.md"
    mismatches: list[str] = []
    seen = 0
    stop = threading.Event()

    def read_in_a_loop(gzip: bool) -> None:
        nonlocal seen
        reader = Browser(site.base)
        while not stop.is_set():
            headers = {"Accept-Encoding": "gzip"} if gzip else {}
            answer = reader.get("/feeds/atom.xml", **headers)
            etag = answer.headers["ETag"].strip('"').removesuffix("-gz")
            body = answer.body
            if gzip:
                import gzip as gz

                body = gz.decompress(body)
            if hashlib.sha256(body).hexdigest()[:32] != etag:
                mismatches.append(etag)
            seen += 1

    readers = [threading.Thread(target=read_in_a_loop, args=(g,)) for g in (False, True)]
    for reader in readers:
        reader.start()
    try:
        for edition in range(12):
            post.write_text(
                f"---\ntitle: Edition {edition}\ndate: 2026-11-20\nstatus: published\n---\n"
                f"Body {edition}\n"
            )
            import_target(sessions, str(post), settings, NOW + timedelta(minutes=edition))
            publish_feeds(sessions, settings, NOW + timedelta(minutes=edition), ping=no_ping)
            on_disk = (settings.feeds.output_dir / "atom.xml").read_bytes()
            assert f"Edition {edition}<".encode() in on_disk
            answer = site.get("/feeds/atom.xml")
            assert answer.body == on_disk, f"build {edition} finished, the server sent another"
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert seen > 0
    assert not mismatches, f"{len(mismatches)} of {seen} responses had a body of another ETag"


# Any WSGI server can run the app (publisher.web.wsgi:app reads PUBLISHER_CONFIG),
# and the public pages never load the send loop.
def test_the_wsgi_app_is_importable_without_the_send_loop(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from publisher import db
    from tests.conftest import CONFIG_TEXT

    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT)
    db.upgrade(db.make_engine(f"sqlite:///{tmp_path / 'publisher.db'}"))
    script = (
        "import sys; from publisher.web.wsgi import app; "
        "c = app.test_client(); assert c.get('/').status_code == 200; "
        "print(sorted(m for m in sys.modules if m.startswith('publisher.mail')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PUBLISHER_CONFIG": str(config)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "publisher.mail.send" not in done.stdout
