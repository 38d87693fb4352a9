"""Nothing a visitor sends comes back as markup: every query parameter and form field
of every page, fed `<script>` and `"><svg onload=…>`, is found escaped (or refused).
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from publisher import db
from publisher.audience.links import confirm_token, preferences_token, unsubscribe_token
from publisher.audience.recipients import Recipient
from publisher.config import load_settings
from publisher.content.importer import import_target
from publisher.web.app import create_app
from publisher.web.preview import PreviewSource
from publisher.web.server import ServerThread
from tests.conftest import CONFIG_TEXT
from tests.integration.test_messages import smtp_server  # noqa: F401
from tests.integration.test_subscriptions import SECRET, Site, make_site  # noqa: F401
from tests.webclient import Answer, Browser

pytestmark = pytest.mark.integration
PAYLOADS = ("<script>alert(1)</script>", '"><svg onload=alert(1)>')
FIELDS = ("q", "run", "address", "name", "newsletter", "topic", "token", "website")


def assert_escaped(answer: Answer, payload: str, where: str) -> None:
    body = answer.body.decode("utf-8", "replace")
    assert payload not in body, f"{where}: the payload came back as markup"
    assert "<svg onload" not in body.lower() and "<script>alert" not in body.lower(), where


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_page_escapes_what_it_is_sent(
    make_site: Callable[..., Site],  # noqa: F811
    payload: str,
) -> None:
    site = make_site(subscribe_limit_per_client="1000/hour")
    zoe = str(site.id_of("zoe@example.org"))
    pages = [
        "/",
        "/feeds/atom.xml",
        "/subscribe",
        f"/preferences/{preferences_token(SECRET, zoe)}",
        f"/unsubscribe/{unsubscribe_token(SECRET, zoe, 'weekly')}",
        f"/confirm/{confirm_token(SECRET, 1)}",
        "/no-such-page",
    ]
    browser = site.browser()
    query = "?" + urlencode({name: payload for name in FIELDS})
    for page in pages:
        assert_escaped(browser.get(page + query), payload, f"GET {page}{query}")
    for prefix in ("/preferences/", "/unsubscribe/", "/confirm/", "/feeds/", "/"):
        path = prefix + quote(payload, safe="")
        assert_escaped(browser.get(path), payload, f"GET {path}")
        assert_escaped(browser.post(path, {"x": payload}), payload, f"POST {path}")
    fields: dict[str, str | list[str]] = {name: payload for name in FIELDS}
    for form in (
        {**fields, "website": ""},
        {**fields, "website": "", "address": "new@example.org", "newsletter": "weekly"},
        fields,  # the honeypot filled
    ):
        answer = browser.submit("/subscribe", form)
        assert_escaped(answer, payload, f"POST /subscribe {form}")
    preferences = pages[3]
    form = {"newsletter": [payload, "weekly"], "topic-weekly": [payload], "q": payload}
    assert_escaped(browser.submit(preferences, form), payload, "POST preferences")
    assert_escaped(browser.get(preferences), payload, "GET preferences after saving")
    one_click = {"List-Unsubscribe": payload}
    assert_escaped(browser.post(pages[4], one_click), payload, "POST unsubscribe")
    for envelope in site.received:  # the confirmation to new@ greets them by the name sent
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        html = message.get_body(("html",))
        assert html is not None and payload not in html.get_content()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_preview_escapes_its_query(tmp_path: Path, sample_dir: Path, payload: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEXT + f"database:\n  url: sqlite:///{tmp_path / 'p.db'}\n")
    settings = load_settings(config)
    engine = db.make_engine(settings.database.url or "")
    db.upgrade(engine)
    import_target(db.make_sessionmaker(engine), str(sample_dir), settings, datetime.now(UTC))
    source = PreviewSource(
        config, None, datetime(2019, 1, 1, tzinfo=UTC), None, Recipient("a@example.org")
    )
    app: Any = create_app(settings, feeds=False, preview=source)
    with ServerThread(app, settings.web) as server:
        browser = Browser(server.url)
        query = "?" + urlencode({name: payload for name in FIELDS})
        for page in ("/", "/email.html", "/email.txt", "/version", "/no-such-page"):
            assert_escaped(browser.get(page + query), payload, f"GET {page}{query}")
