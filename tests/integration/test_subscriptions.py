"""The reader's pages over real HTTP (waitress) with a real SMTP server (aiosmtpd):
subscribe with double opt-in, confirm, preferences, unsubscribe (RFC 8058 one-click).
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.orm import Session, sessionmaker

from publisher import db, queries
from publisher.audience import subscribers as audience
from publisher.audience.links import confirm_token, preferences_token, unsubscribe_token
from publisher.audience.tokens import make_signer
from publisher.config import Settings, parse_settings
from publisher.content.importer import import_target
from publisher.mail.send import send_digest
from publisher.models import SubscriberStatus
from publisher.web.app import create_app, public_app
from publisher.web.confirmation import Outbox
from publisher.web.server import ServerThread
from tests.conftest import CONFIG_TEXT
from tests.integration.test_messages import smtp_server, smtp_settings  # noqa: F401
from tests.webclient import Browser, csrf_token

pytestmark = pytest.mark.integration
NOW = datetime(2019, 12, 6, 9, 0, tzinfo=UTC)  # the Friday after the three posts of 5 December
SECRET = "test-secret"
CONFIG = (
    CONFIG_TEXT
    + '  - name: monthly\n    schedule: "0 9 1 * *"\n'
    # plain HTTP on 127.0.0.1: the form cookie may not be HTTPS-only here
    + "web:\n  secure_cookies: false\n"
)


@dataclass
class Site:
    url: str
    settings: Settings
    sessions: sessionmaker[Session]
    outbox: Outbox
    received: list[Any]
    app: Flask

    def browser(self) -> Browser:
        return Browser(self.url)

    def mails(self) -> list[EmailMessage]:
        """Every email the SMTP server took, once the outbox is empty."""
        self.outbox.join()
        parsed = []
        for envelope in self.received:
            message = email.message_from_bytes(envelope.content, policy=email.policy.strict)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed

    def subscriber(self, address: str) -> audience.Profile | None:
        with self.sessions() as session:
            found = queries.subscriber_by_email(session, address)
            return audience.profile_of(found) if found else None

    def status(self, address: str) -> SubscriberStatus | None:
        found = self.subscriber(address)
        return found.status if found else None

    def id_of(self, address: str) -> int:
        found = self.subscriber(address)
        assert found is not None
        return found.id


@pytest.fixture
def make_site(
    sessions: sessionmaker[Session],
    tmp_path: Path,
    sample_dir: Path,
    smtp_server: tuple[int, list[Any]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Site]]:
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", SECRET)  # the digest's links
    servers: list[ServerThread] = []

    def make(**web: Any) -> Site:
        settings = parse_settings(CONFIG, "test-config.yaml", tmp_path)
        settings = smtp_settings(settings, smtp_server[0])
        settings = settings.model_copy(update={"web": settings.web.model_copy(update=web)})
        import_target(sessions, str(sample_dir), settings, NOW)
        audience.add_subscriber(sessions, settings, "zoe@example.org", "Zoë", ["SDGs"], now=NOW)
        audience.add_subscriber(sessions, settings, "gone@example.org", None, now=NOW)
        with sessions() as session:
            gone = queries.subscriber_by_email(session, "gone@example.org")
            assert gone is not None
        audience.unsubscribe(sessions, gone.id, now=NOW)
        outbox = Outbox(settings)
        app = create_app(settings, sessions, SECRET, outbox=outbox)
        server = ServerThread(app, settings.web)
        servers.append(server.__enter__())
        return Site(server.url, settings, sessions, outbox, smtp_server[1], app)

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()


def subscribe(site: Site, address: str, **fields: str | list[str]) -> Any:
    form: dict[str, str | list[str]] = {
        "address": address,
        "name": "New Reader",
        "newsletter": ["weekly"],
        "topic": ["sdgs"],
        **fields,
    }
    return site.browser().submit("/subscribe", form)


def confirm_path(message: EmailMessage) -> str:
    text = message.get_body(("plain",))
    assert text is not None
    found = re.search(r"https://news\.example\.org/(confirm/[\w.\-]+)", text.get_content())
    assert found, "the confirmation email has no confirmation link"
    return "/" + found.group(1)


# Double opt-in: a subscriber is active only after the click on the emailed link.
def test_subscribe_then_confirm_makes_the_address_active(site: Site) -> None:
    answer = subscribe(site, "new@example.org")
    assert answer.status == 200 and "Check your inbox" in answer.text
    assert site.status("new@example.org") is SubscriberStatus.PENDING
    (mail,) = site.mails()
    assert mail["To"] == "new@example.org"
    assert "Confirm your subscription to Test Centre" in mail["Subject"]
    # whoever sent the form, their words (the name field) do not reach this inbox
    assert "New Reader" not in mail.as_string()
    html = mail.get_body(("html",))
    assert html is not None and "Confirm my subscription" in html.get_content()
    path = confirm_path(mail)
    browser = site.browser()
    page = browser.get(path)
    assert page.status == 200 and "Yes, subscribe me" in page.text
    assert "<li>Weekly: SDGs</li>" in page.text and "already" not in page.text
    # the name the request gave is shown before it is taken: anyone may send the form
    assert "greet you as “<bdi>New Reader</bdi>”" in page.text
    assert site.status("new@example.org") is SubscriberStatus.PENDING, "a GET confirms nothing"
    done = browser.submit(path, {})
    assert done.status == 200 and "You are subscribed" in done.text
    found = site.subscriber("new@example.org")
    assert found is not None and found.status is SubscriberStatus.ACTIVE
    assert [(c.newsletter, c.topics) for c in found.choices] == [("weekly", ("sdgs",))]


# A known subscriber keeps their name whoever sends the form for their address (its
# name field is anyone's words): their confirmation page promises no other name, and
# confirming leaves theirs as it was.
def test_a_known_subscriber_s_page_promises_no_other_name(site: Site) -> None:
    assert subscribe(site, "zoe@example.org", name="Mallory").status == 200
    (mail,) = site.mails()
    browser = site.browser()
    page = browser.get(confirm_path(mail))
    assert page.status == 200 and "Mallory" not in page.text and "greet you as" not in page.text
    assert browser.submit(confirm_path(mail), {}).status == 200
    zoe = site.subscriber("zoe@example.org")
    assert zoe is not None and zoe.name == "Zoë"


# HEAD is GET without the body (RFC 9110 §9.3.2): a link checker or mail scanner that
# sends HEAD to a confirmation or unsubscribe link, or to the form with fields and no
# CSRF token, confirms, unsubscribes and subscribes no one, and sends no email.
def test_head_changes_nothing(site: Site) -> None:
    subscribe(site, "new@example.org")
    (mail,) = site.mails()
    browser = site.browser()
    assert browser.head(confirm_path(mail)).status == 200
    assert site.status("new@example.org") is SubscriberStatus.PENDING
    token = unsubscribe_token(SECRET, str(site.id_of("zoe@example.org")), "weekly")
    assert browser.head(f"/unsubscribe/{token}").status == 200
    zoe = site.subscriber("zoe@example.org")
    assert zoe is not None and {c.newsletter for c in zoe.choices} == {"weekly", "monthly"}
    form = {"address": "robot@example.org", "newsletter": ["weekly"]}
    assert browser.head("/subscribe", form).status == 200
    assert site.status("robot@example.org") is None
    assert len(site.mails()) == 1


# A method a page does not take is answered 405 with the methods it does (RFC 9110
# §15.5.6), in our error page.
def test_a_wrong_method_says_which_are_allowed(site: Site) -> None:
    answer = site.browser().request("/subscribe", {"address": "x@example.org"}, method="PUT")
    assert answer.status == 405 and "Method Not Allowed" in answer.text
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) == {
        "GET",
        "HEAD",
        "OPTIONS",
        "POST",
    }


# A confirmation link works once, and not after web.confirm_days.
def test_a_used_or_expired_confirmation_is_refused(site: Site) -> None:
    subscribe(site, "new@example.org")
    path = confirm_path(site.mails()[0])
    browser = site.browser()
    assert browser.submit(path, {}).status == 200
    again = browser.get(path)
    assert again.status == 400 and "used already" in again.text
    assert "subscribe page" in again.text
    consent_id = confirm_token_id(site, path)
    # an older link, superseded by the one confirmed: its page says so, with no button
    subscribe(site, "two@example.org", newsletter=["weekly"])
    subscribe(site, "two@example.org", newsletter=["monthly"])
    first, second = (confirm_path(m) for m in site.mails()[1:])
    assert browser.submit(second, {}).status == 200
    superseded = browser.get(first)
    assert superseded.status == 400 and "A newer confirmation link" in superseded.text

    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 8 * 86400

    old = URLSafeTimedSerializer(SECRET, salt="publisher.confirm", signer=EightDaysAgo)
    expired = browser.get(f"/confirm/{old.dumps(str(consent_id))}")
    assert expired.status == 400 and "expired" in expired.text


def confirm_token_id(site: Site, path: str) -> int:
    from publisher.audience.links import read_confirm_token

    return read_confirm_token(SECRET, path.rsplit("/", 1)[1], 86400)


# No address enumeration: the form answers the same for a new, an active and an
# unsubscribed address (only the address itself differs in the page).
def test_the_answer_is_the_same_for_new_known_and_unsubscribed(site: Site) -> None:
    answers = {}
    for address in ("new@example.org", "zoe@example.org", "gone@example.org"):
        answer = subscribe(site, address)
        answers[address] = (answer.status, answer.text.replace(address, "ADDRESS"))
    assert len(set(answers.values())) == 1
    assert site.status("zoe@example.org") is SubscriberStatus.ACTIVE, "untouched until a click"
    assert site.status("gone@example.org") is SubscriberStatus.UNSUBSCRIBED
    assert sorted(m["To"] for m in site.mails()) == [
        "gone@example.org",
        "new@example.org",
        "zoe@example.org",
    ]


def test_the_honeypot_refuses_silently(site: Site) -> None:
    answer = subscribe(site, "robot@example.org", website="http://spam.example")
    assert answer.status == 200 and "Check your inbox" in answer.text
    assert site.status("robot@example.org") is None
    assert site.mails() == []


def test_a_form_without_its_csrf_token_is_refused(site: Site) -> None:
    answer = site.browser().post(
        "/subscribe", {"address": "new@example.org", "newsletter": "weekly"}
    )
    assert answer.status == 400 and "This form has expired" in answer.text
    assert site.status("new@example.org") is None


def test_too_many_requests_from_one_client_are_refused(make_site: Callable[..., Site]) -> None:
    site = make_site(subscribe_limit_per_client="3/hour")
    for n in range(3):
        assert subscribe(site, f"reader{n}@example.org").status == 200
    refused = subscribe(site, "reader9@example.org")
    assert refused.status == 429 and "try again later" in refused.text
    assert site.status("reader9@example.org") is None


def test_confirmations_to_one_address_are_limited(make_site: Callable[..., Site]) -> None:
    site = make_site(subscribe_limit_per_address="2/day")
    answers = {subscribe(site, "new@example.org").text for _ in range(4)}
    assert len(answers) == 1, "the answer does not say the limit was reached"
    assert len(site.mails()) == 2


def test_bad_fields_are_named_and_kept(site: Site) -> None:
    answer = subscribe(site, "not an address", newsletter=[], name="Ann")
    assert answer.status == 400
    assert "This is not an address we can write to" in answer.text
    assert "Tick at least one newsletter" in answer.text
    assert 'value="Ann"' in answer.text and 'value="not an address"' in answer.text


# A name no store can keep (a control character: a NUL, which PostgreSQL cannot
# store; longer than the column) is a form error on the name saying which, not a
# server error.
@pytest.mark.parametrize(
    ("name", "advice"),
    [("x\x00y", "without control characters"), ("x" * 201, "under 200 characters")],
)
def test_a_name_the_store_cannot_keep_is_refused(site: Site, name: str, advice: str) -> None:
    answer = subscribe(site, "nul@example.org", name=name)
    assert answer.status == 400 and advice in answer.text
    assert site.status("nul@example.org") is None


# Behind a proxy the page's links follow X-Forwarded-Prefix, which a client can set
# where the proxy does not clear it: each answer still links its own prefix, and the
# server keeps a few rendered pages, not one per value sent (memory grew without end).
def test_forwarded_prefixes_do_not_grow_the_page_cache(
    make_site: Callable[..., Site],
) -> None:
    from publisher.web.subscriptions import MAX_CACHED_PAGES

    site = make_site(trusted_proxies=1, subscribe_limit_per_client="1000/hour")
    browser = site.browser()
    token = csrf_token(browser.get("/subscribe").text)
    for n in range(3 * MAX_CACHED_PAGES):
        prefix = f"/p{n}"
        form = {"csrf_token": token, "address": f"r{n}@example.org", "website": "spam"}
        answer = browser.post("/subscribe", form, **{"X-Forwarded-Prefix": prefix})
        assert answer.status == 200 and f"{prefix}/static/" in answer.text
        assert f"r{n}@example.org" in answer.text
    assert len(site.app.extensions["publisher"].pages) <= MAX_CACHED_PAGES


# The forms list the topics by name, as a reader looks for one; a topic that is not
# on the list (an old page, a made-up form) saves nothing and says so (400, not 404).
def test_topics_are_listed_by_name_and_an_unknown_one_is_refused(site: Site) -> None:
    page = site.browser().get("/subscribe").text
    names = re.findall(r'name="topic" value="[^"]+"[^>]*> ([^<]+)<', page)
    assert len(names) > 3 and names == sorted(names, key=str.lower)
    zoe = str(site.id_of("zoe@example.org"))
    path = f"/preferences/{preferences_token(SECRET, zoe)}"
    browser = site.browser()
    form = {"newsletter": ["weekly"], "topic-weekly": ["nope"]}
    answer = browser.post(path, {"csrf_token": csrf_token(browser.get(path).text), **form})
    assert answer.status == 400 and "Nothing was saved" in answer.text
    kept = site.subscriber("zoe@example.org")
    assert kept is not None and {c.newsletter for c in kept.choices} == {"weekly", "monthly"}


# A GET on the unsubscribe link (a mail scanner) changes nothing; the RFC 8058
# one-click POST leaves the newsletter the link came with, and answers no page.
def test_get_changes_nothing_and_one_click_post_leaves_that_newsletter(site: Site) -> None:
    token = unsubscribe_token(SECRET, str(site.id_of("zoe@example.org")), "weekly")
    browser = site.browser()
    page = browser.get(f"/unsubscribe/{token}")
    assert page.status == 200 and "Stop Weekly" in page.text
    before = site.subscriber("zoe@example.org")
    assert before is not None and {c.newsletter for c in before.choices} == {"weekly", "monthly"}
    answer = browser.post(f"/unsubscribe/{token}", {"List-Unsubscribe": "One-Click"})
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain")
    after = site.subscriber("zoe@example.org")
    assert after is not None and after.status is SubscriberStatus.ACTIVE
    assert [c.newsletter for c in after.choices] == ["monthly"]
    assert browser.post(f"/unsubscribe/{token}", {"List-Unsubscribe": "One-Click"}).status == 200


def test_links_in_digests_already_sent_still_unsubscribe(site: Site) -> None:
    legacy = make_signer(SECRET).dumps(str(site.id_of("zoe@example.org")))
    answer = site.browser().post(f"/unsubscribe/{legacy}", {})
    assert answer.status == 200 and "will get no more" in answer.text
    assert site.status("zoe@example.org") is SubscriberStatus.UNSUBSCRIBED


# A preferences change limits the next digest to those newsletters and topics.
def test_preferences_limit_the_next_digest(site: Site) -> None:
    zoe = str(site.id_of("zoe@example.org"))
    path = f"/preferences/{preferences_token(SECRET, zoe)}"
    browser = site.browser()
    page = browser.get(path)
    assert page.status == 200 and 'value="sdgs" checked' in page.text
    saved = browser.submit(path, {"newsletter": ["weekly"], "topic-weekly": ["innovation"]})
    assert saved.status == 200 and "Saved." in saved.text
    site.outbox.join()

    def zoes_copies(name: str) -> list[Any]:
        before = len(site.received)
        send_digest(site.sessions, site.settings, NOW, name)
        return [e for e in site.received[before:] if "zoe@example.org" in e.rcpt_tos]

    (weekly,) = zoes_copies("weekly")
    assert zoes_copies("monthly") == [], "she left the monthly newsletter"
    message = email.message_from_bytes(weekly.content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert "Innovation Report, get involved!" in body
    assert "Leave No One Behind news round-up" not in body  # SDGs, her old topic
    assert "A new playbook for international civil society" not in body


def test_preferences_need_the_form_token(site: Site) -> None:
    zoe = str(site.id_of("zoe@example.org"))
    answer = site.browser().post(
        f"/preferences/{preferences_token(SECRET, zoe)}", {"newsletter": ["monthly"]}
    )
    assert answer.status == 400 and "This form has expired" in answer.text
    found = site.subscriber("zoe@example.org")
    assert found is not None and len(found.choices) == 2


# A token opens only the page it was made for, and a forged or cut one none.
def test_forged_cut_and_wrong_purpose_tokens_are_refused(site: Site) -> None:
    zoe = str(site.id_of("zoe@example.org"))
    unsubscribe = unsubscribe_token(SECRET, zoe, "weekly")
    preferences = preferences_token(SECRET, zoe)
    confirm = confirm_token(SECRET, 1)
    browser = site.browser()
    cases = [
        (f"/preferences/{unsubscribe}", "for unsubscribe, not preferences"),
        (f"/preferences/{confirm}", "for confirm, not preferences"),
        (f"/unsubscribe/{preferences}", "for preferences, not unsubscribe"),
        (f"/confirm/{preferences}", "for preferences, not confirm"),
        (f"/preferences/{preferences[:-4]}", "not valid"),
        (f"/unsubscribe/{unsubscribe_token('another key', zoe, None)}", "not valid"),
        ("/unsubscribe/garbage", "not valid"),
        (f"/unsubscribe/{make_signer(SECRET).dumps('t0123456789ab')}", "test message"),
    ]
    for path, words in cases:
        # the other pages' POSTs stop at their CSRF check before reading the token
        posts = [browser.post(path, {})] if path.startswith("/unsubscribe/") else []
        for answer in (browser.get(path), *posts):
            assert answer.status == 400, path
            assert words in answer.text and "This link cannot be used" in answer.text, path
    found = site.subscriber("zoe@example.org")
    assert found is not None and found.status is SubscriberStatus.ACTIVE
    assert len(found.choices) == 2


# The app as `publisher serve` runs it on SQLite (write-ahead log; one connection the
# server's threads take turns with): forms sent at once by many clients are all
# answered and all recorded, none refused because the database is locked.
def test_the_served_app_takes_forms_sent_at_once_on_sqlite(
    tmp_path: Path,
    sample_dir: Path,
    smtp_server: tuple[int, list[Any]],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", SECRET)
    url = f"sqlite:///{tmp_path / 'served.db'}"
    text = CONFIG + f'  subscribe_limit_per_client: "1000/hour"\ndatabase:\n  url: "{url}"\n'
    settings = smtp_settings(parse_settings(text, "test-config.yaml", tmp_path), smtp_server[0])
    engine = db.make_engine(settings.database.url or "")
    db.upgrade(engine)
    import_target(db.make_sessionmaker(engine), str(sample_dir), settings, NOW)
    app = public_app(settings)
    served = app.extensions["publisher"]
    assert served.factory.kw["bind"].pool.size() == 1

    def reader(n: int) -> list[int]:
        browser = Browser(server.url)
        form: dict[str, str | list[str]] = {"newsletter": ["weekly"], "topic": ["sdgs"]}
        return [
            browser.submit("/subscribe", {**form, "address": f"r{n}.{i}@example.org"}).status
            for i in range(8)
        ]

    with ServerThread(app, settings.web) as server, ThreadPoolExecutor(6) as pool:
        answers = [status for statuses in pool.map(reader, range(6)) for status in statuses]
    assert answers == [200] * 48
    served.outbox.join()
    with served.factory() as session:
        pending = [
            s for s in queries.all_subscribers(session) if s.status is SubscriberStatus.PENDING
        ]
    assert len(pending) == 48
    assert len(smtp_server[1]) == 48, "a confirmation email each"


# Invariant: an erased person's links open nothing of whoever signs up after them. The
# newest subscriber's id and request id are never handed out again (SQLite's AUTOINCREMENT
# since 0012; PostgreSQL's sequences), so their confirmation link does not confirm the
# next request, and their preferences and unsubscribe links do not show or change the
# next subscriber's.
def test_an_erased_person_s_links_open_nothing_of_the_next_subscriber(site: Site) -> None:
    from publisher.audience.staff import erase_person

    assert subscribe(site, "bob@example.org").status == 200
    (bob_mail,) = site.mails()
    bob_confirm = confirm_path(bob_mail)
    bob_id = site.id_of("bob@example.org")
    erase_person(site.sessions, "bob@example.org", NOW)
    site.received.clear()
    assert subscribe(site, "carol@example.org", name="Carol").status == 200
    (carol_mail,) = site.mails()
    assert site.id_of("carol@example.org") != bob_id
    assert confirm_token_id(site, confirm_path(carol_mail)) != confirm_token_id(site, bob_confirm)
    browser = site.browser()
    page = browser.get(bob_confirm)
    assert page.status == 404 and "carol" not in page.text.lower()
    preferences = browser.get(f"/preferences/{preferences_token(SECRET, str(bob_id))}")
    assert preferences.status == 404 and "carol" not in preferences.text.lower()
    leave = browser.get(f"/unsubscribe/{unsubscribe_token(SECRET, str(bob_id), 'weekly')}")
    assert leave.status == 404 and "carol" not in leave.text.lower()
    assert site.status("carol@example.org") is SubscriberStatus.PENDING


# Invariant: a subscriber's pages (their address and choices, a form's token) are kept
# by no cache: every page of the subscription pages says no-store; the feeds' index,
# the same for everyone, does not. The confirmation email counts its days right.
def test_subscriber_pages_are_not_cached(make_site: Callable[..., Site]) -> None:
    site = make_site(confirm_days=1)
    browser = site.browser()
    zoe = preferences_token(SECRET, str(site.id_of("zoe@example.org")))
    for path in ("/subscribe", f"/preferences/{zoe}", "/preferences/forged"):
        assert browser.get(path).headers["Cache-Control"] == "no-store", path
    assert "no-store" not in browser.get("/").headers.get("Cache-Control", "")
    assert subscribe(site, "new@example.org").headers["Cache-Control"] == "no-store"
    (mail,) = site.mails()
    text = mail.get_body(("plain",))
    assert text is not None and "The link works for 1 day." in text.get_content()


# Invariant: the confirmation page shows what confirming sets, each newsletter with its
# topics, and tells a subscriber already receiving them that it changes their topics:
# a request anyone may send for their address changes nothing they were not shown.
def test_the_confirmation_page_shows_the_topics_it_sets(site: Site) -> None:
    form = {"newsletter": ["weekly", "monthly"], "topic": ["events"], "name": "Mallory"}
    assert subscribe(site, "zoe@example.org", **form).status == 200
    (mail,) = site.mails()
    page = site.browser().get(confirm_path(mail))
    assert "<li>Monthly: Events</li>" in page.text and "<li>Weekly: Events</li>" in page.text
    assert "already: confirming sets these newsletters to the topics above" in page.text
