"""WebSub: a build that changed feeds pings the hub; a failing hub never fails a build."""

from __future__ import annotations

import functools
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.feeds.build import publish_feeds
from publisher.feeds.websub import ping_hub

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Hub:
    """A real HTTP server on 127.0.0.1 that records publish pings."""

    def __init__(self, failures: int = 0) -> None:
        self.pings: list[dict[str, list[str]]] = []
        self.failures = failures
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers["Content-Length"])
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if hub.failures > 0:
                    hub.failures -= 1
                    self.send_response(503)
                else:
                    hub.pings.append(form)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def topics(self) -> list[str]:
        return sorted(p["hub.url"][0] for p in self.pings)


@pytest.fixture
def hub() -> Iterator[Hub]:
    server = Hub()
    yield server
    server.server.shutdown()


def with_hub(settings: Settings, url: str) -> Settings:
    return settings.model_copy(
        update={"feeds": settings.feeds.model_copy(update={"websub_hub": url})}
    )


def test_changed_feeds_are_announced_once(
    hub: Hub, sessions: sessionmaker[Session], settings: Settings, sample_dir: Path
) -> None:
    settings = with_hub(settings, hub.url)
    import_target(sessions, str(sample_dir), settings, NOW)
    publish_feeds(sessions, settings, NOW)
    topics = hub.topics()
    assert "https://news.example.org/feeds/atom.xml" in topics
    assert "https://news.example.org/feeds/tags/events/rss.xml" in topics
    assert all(p["hub.mode"] == ["publish"] for p in hub.pings)
    assert b'rel="hub"' in (settings.feeds.output_dir / "atom.xml").read_bytes()
    hub.pings.clear()
    publish_feeds(sessions, settings, NOW)
    assert hub.pings == [], "nothing changed, nothing announced"


def test_a_failing_hub_is_retried_then_reported_never_fatal(
    sessions: sessionmaker[Session], settings: Settings, sample_dir: Path
) -> None:
    dead = "http://127.0.0.1:9/"  # discard port: connection refused
    settings = with_hub(settings, dead)
    import_target(sessions, str(sample_dir), settings, NOW)
    quick = functools.partial(ping_hub, attempts=2, sleep=lambda _: None, timeout=2)
    report = publish_feeds(sessions, settings, NOW, ping=quick)
    assert (settings.feeds.output_dir / "atom.xml").exists()
    assert "https://news.example.org/feeds/atom.xml" in report.failed_pings


def test_ping_retries_until_the_hub_accepts() -> None:
    hub = Hub(failures=2)
    try:
        waits: list[float] = []
        failed = ping_hub(hub.url, ["https://x.example/atom.xml"], attempts=3, sleep=waits.append)
        assert failed == []
        assert waits == [1.0, 2.0]
        assert hub.topics() == ["https://x.example/atom.xml"]
    finally:
        hub.server.shutdown()
