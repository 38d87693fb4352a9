"""The links in every digest: unsubscribe (RFC 8058 one-click) and topic preferences."""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from publisher import queries
from publisher.audience import subscribers as mailing
from publisher.audience.tokens import make_signer
from publisher.config import Settings
from publisher.content.importer import import_target
from publisher.models import SubscriberStatus
from publisher.web.feeds import FeedApp

NOW = datetime(2026, 11, 25, tzinfo=UTC)
SECRET = "test-secret"


@pytest.fixture
def site(sessions: sessionmaker[Session], settings: Settings, sample_dir: Path) -> Iterator[str]:
    import_target(sessions, str(sample_dir), settings, NOW)
    mailing.add_subscriber(sessions, "zoe@example.org", "Zoë", ["SDGs"], NOW)
    server = make_server("127.0.0.1", 0, FeedApp(settings, sessions, SECRET), threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def call(url: str, form: dict[str, str | list[str]] | None = None) -> tuple[int, str]:
    data = urllib.parse.urlencode(form or {}, doseq=True).encode() if form is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def token_for(sessions: sessionmaker[Session], address: str) -> str:
    with sessions() as session:
        subscriber = queries.subscriber_by_email(session, address)
        assert subscriber is not None
        return str(make_signer(SECRET).dumps(str(subscriber.id)))


def status_of(sessions: sessionmaker[Session], address: str) -> SubscriberStatus:
    with sessions() as session:
        subscriber = queries.subscriber_by_email(session, address)
        assert subscriber is not None
        return subscriber.status


def test_get_only_asks_and_one_click_post_unsubscribes(
    site: str, sessions: sessionmaker[Session]
) -> None:
    token = token_for(sessions, "zoe@example.org")
    status, page = call(f"{site}/unsubscribe/{token}")
    assert status == 200 and '<form method="post">' in page
    assert status_of(sessions, "zoe@example.org") is SubscriberStatus.ACTIVE, (
        "a GET (a mail scanner following links) must not unsubscribe"
    )
    status, page = call(f"{site}/unsubscribe/{token}", {"List-Unsubscribe": "One-Click"})
    assert status == 200 and "zoe@example.org will get no more emails" in page
    assert status_of(sessions, "zoe@example.org") is SubscriberStatus.UNSUBSCRIBED
    assert call(f"{site}/unsubscribe/{token}", {})[0] == 200, "repeating it is harmless"


@pytest.mark.parametrize("token", ["garbage", "IjQyIg.forged-signature"])
def test_bad_tokens_get_a_clear_400(site: str, token: str) -> None:
    status, page = call(f"{site}/unsubscribe/{token}", {})
    assert status == 400 and "This link is not valid" in page


def test_links_of_a_test_message_change_nothing(site: str) -> None:
    token = make_signer(SECRET).dumps("t0123456789ab")
    status, page = call(f"{site}/unsubscribe/{token}", {})
    assert status == 400 and "test message" in page


def test_preferences_choose_topics(site: str, sessions: sessionmaker[Session]) -> None:
    token = token_for(sessions, "zoe@example.org")
    status, page = call(f"{site}/preferences/{token}")
    assert status == 200 and 'value="sdgs" checked' in page
    status, page = call(f"{site}/preferences/{token}", {"topic": ["events", "innovation"]})
    assert status == 200 and "Saved." in page
    with sessions() as session:
        subscriber = queries.subscriber_by_email(session, "zoe@example.org")
        assert subscriber is not None
        assert [t.name for t in subscriber.topics] == ["Events", "Innovation"]
