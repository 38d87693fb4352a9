"""The links in every digest: unsubscribe (RFC 8058 one-click) and topic preferences."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from publisher import queries
from publisher.audience import subscribers as mailing
from publisher.audience.tokens import make_signer
from publisher.config import parse_settings
from publisher.content.importer import import_target
from publisher.models import SubscriberStatus
from publisher.web.app import create_app
from publisher.web.server import ServerThread
from tests.conftest import CONFIG_TEXT
from tests.webclient import Browser, Form

NOW = datetime(2026, 11, 25, tzinfo=UTC)
SECRET = "test-secret"


@pytest.fixture
def site(sessions: sessionmaker[Session], tmp_path: Path, sample_dir: Path) -> Iterator[str]:
    # plain HTTP on 127.0.0.1: the form cookie may not be HTTPS-only here
    settings = parse_settings(
        CONFIG_TEXT + "web:\n  secure_cookies: false\n", "test-config.yaml", tmp_path
    )
    import_target(sessions, str(sample_dir), settings, NOW)
    mailing.add_subscriber(sessions, settings, "zoe@example.org", "Zoë", ["SDGs"], now=NOW)
    with ServerThread(create_app(settings, sessions, SECRET), settings.web) as server:
        yield server.url


def call(url: str, form: Form | None = None) -> tuple[int, str]:
    answer = Browser("").request(url, form)
    return answer.status, answer.text


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
    assert status == 200 and '<form method="post"' in page
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


def test_preferences_need_the_form_token(site: str, sessions: sessionmaker[Session]) -> None:
    token = token_for(sessions, "zoe@example.org")
    status, page = call(f"{site}/preferences/{token}", {"topic": ["events"]})
    assert status == 400 and "This form has expired" in page
    with sessions() as session:
        subscriber = queries.subscriber_by_email(session, "zoe@example.org")
        assert subscriber is not None and [t.name for t in subscriber.topics] == ["SDGs"]


def test_preferences_choose_topics(site: str, sessions: sessionmaker[Session]) -> None:
    token = token_for(sessions, "zoe@example.org")
    status, page = call(f"{site}/preferences/{token}")
    assert status == 200 and 'value="sdgs" checked' in page
    browser = Browser(site)
    answer = browser.submit(f"/preferences/{token}", {"topic": ["events", "innovation"]})
    assert answer.status == 200 and "Saved." in answer.text
    with sessions() as session:
        subscriber = queries.subscriber_by_email(session, "zoe@example.org")
        assert subscriber is not None
        assert [t.name for t in subscriber.topics] == ["Events", "Innovation"]
