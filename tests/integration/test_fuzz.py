"""Fuzzing the ways in: generated posts (titles, names, tags, bodies with random
HTML and URLs, in every script) and config values, through import, build and
digest, against the invariants of the Safety section of the README:

- every feed stays valid (feedparser, the Atom RELAX NG schema, the JSON Feed schema);
- no output holds a script or data URL, or an event handler attribute;
- every digest message parses with ``email.policy.strict``, no line over 998 octets;
- a refused import leaves the database as it was.

A few fixed examples by default (a few seconds); a long random run:
``PUBLISHER_FUZZ_EXAMPLES=400 pytest -k fuzz``.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st
from lxml import etree
from sqlalchemy import Engine

from publisher import db
from publisher.audience.recipients import Recipient
from publisher.config import parse_settings
from publisher.content.importer import import_target
from publisher.errors import ConfigError, ImportFailed
from publisher.feeds.build import publish_feeds
from publisher.links import revealed_scheme
from publisher.mail.compose import compose
from tests.conftest import CONFIG_TEXT
from tests.feedcheck import check_atom, check_json, check_rss
from tests.integration.test_store import snapshot

pytestmark = pytest.mark.integration

#: examples per test: few by default (each imports, builds every feed and renders
#: a digest, about a second), the same ones on every run so CI never flakes on a
#: new find; PUBLISHER_FUZZ_EXAMPLES=400 for a long, random run. Applied per
#: test, so the suite's own Hypothesis profile (conftest) stays as it is.
EXAMPLES = int(os.environ.get("PUBLISHER_FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(
    max_examples=EXAMPLES or 5,
    derandomize=EXAMPLES is None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
SITE = "https://news.example.org/"

# --- strategies ----------------------------------------------------------------

#: URLs as attackers and careless editors write them
URLS = st.one_of(
    st.sampled_from(
        [
            "https://example.org/a?b=1&c=2",
            "http://example.org/",
            "/relative/path",
            "mailto:news@example.org",
            "javascript:alert(1)",
            " JaVaScRiPt:alert(1)",
            "java\tscript:alert(1)",
            "&#106;avascript:alert(1)",
            "jav&#x09;ascript:alert(1)",
            "data:text/html;base64,PHNjcmlwdD4=",
            "vbscript:msgbox(1)",
            "file:///etc/passwd",
            "//cdn.example.org/x.png",
            "https://exa mple.org/",
            "https://例え.jp/パス",
        ]
    ),
    st.text(max_size=30),
)
#: text in every script, with the odd control character and markup
TEXT = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    st.sampled_from(
        ["李明", "Иван Петров", "محمد", "🎉", "C++", "SDGs", "<b>x</b>", "a\r\nBcc: x"]
    ),
)
#: names a post gives (authors, tags): mostly plausible, sometimes anything
NAME = st.one_of(TEXT, st.sampled_from(["SDGs", "sdgs", "C", "C++", "Li Ming", "李明"]))


@st.composite
def bodies(draw: st.DrawFn) -> str:
    """Markdown with raw HTML: links, images, handlers, scripts, video directives."""
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        url, text = draw(URLS), draw(TEXT)
        parts.append(
            draw(
                st.sampled_from(
                    [
                        f"[{text}]({url})",
                        f"![{text}]({url})",
                        f'<a href="{url}">{text}</a>',
                        f"<a href={url}>x</a>",
                        f"<img src='{url}' onerror=\"alert(1)\">",
                        f'<p onclick="alert(1)">{text}</p>',
                        "<script>alert(1)</script>",
                        f'<svg onload="alert(1)"><a xlink:href="{url}">s</a></svg>',
                        f'<iframe src="{url}"></iframe>',
                        f"<{url}>",
                        f"::: video {url}\n{text}\n:::",
                        text,
                    ]
                )
            )
        )
    return "\n\n".join(parts)


@st.composite
def post_files(draw: st.DrawFn) -> str:
    front: dict[str, Any] = {
        "title": draw(TEXT),
        "date": draw(
            st.one_of(
                st.datetimes(
                    min_value=datetime(1850, 1, 1),
                    max_value=datetime(2300, 1, 1),
                    timezones=st.just(UTC),
                ),
                st.just(datetime(2026, 6, 1, tzinfo=UTC)),
            )
        ).isoformat(),
        "status": "published",
    }
    if draw(st.booleans()):
        front["author"] = draw(NAME)
    if draw(st.booleans()):
        front["tags"] = draw(st.lists(NAME, max_size=4))
    if draw(st.booleans()):
        front["canonical_url"] = draw(URLS)
    if draw(st.booleans()):
        front["image"] = draw(URLS)
    if draw(st.booleans()):
        front["attachments"] = [{"url": draw(URLS), "type": "application/pdf"}]
    head = yaml.safe_dump(front, allow_unicode=True, sort_keys=False)
    return f"---\n{head}---\n{draw(bodies())}\n"


# --- the invariants ---------------------------------------------------------------

_URL_ATTRIBUTES = {"href", "src", "url", "uri", "cite", "action", "poster", "background"}


def assert_no_active_content_in_html(fragment: str) -> None:
    """No event handler, and no URL a browser would run or load as a document."""
    if not fragment.strip():
        return
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    for element in root.iter():
        assert element.tag not in ("script", "iframe", "object", "embed"), element.tag
        for name, value in element.attrib.items():
            name = name.lower().rsplit("}", 1)[-1]
            assert not name.startswith("on"), f"event handler {name}={value!r}"
            if name in _URL_ATTRIBUTES or name.endswith("href"):
                assert revealed_scheme(value) in (None, "http", "https", "mailto"), value


def assert_feed_is_clean(xml: bytes) -> None:
    for element in etree.fromstring(xml).iter():
        for name, value in element.attrib.items():
            if name in _URL_ATTRIBUTES:
                assert revealed_scheme(value) in ("http", "https"), value
        tag = str(element.tag).rsplit("}", 1)[-1]
        if tag in ("link", "url", "icon", "logo", "comments") and element.text:
            assert revealed_scheme(element.text) in ("http", "https"), element.text
        if tag in ("content", "summary", "description", "subtitle") and element.text:
            assert_no_active_content_in_html(element.text)


def assert_json_feed_is_clean(data: bytes) -> None:
    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str):
            if key in ("content_html", "summary"):
                assert_no_active_content_in_html(value)
            elif key.endswith("url") or key in ("image", "banner_image", "icon", "favicon"):
                assert revealed_scheme(value) in ("http", "https"), value

    walk(json.loads(data))


def check_every_feed(out: Path) -> None:
    for atom in out.rglob("atom*.xml"):
        folder = atom.parent.relative_to(out).as_posix()
        prefix = "" if folder == "." else folder + "/"
        feeds = SITE + "feeds/" + prefix
        rss, json_feed = atom.with_name(atom.name.replace("atom", "rss")), None
        json_feed = atom.with_name(atom.name.replace("atom", "feed").replace(".xml", ".json"))
        check_atom(atom.read_bytes(), feeds + atom.name, SITE)
        check_rss(rss.read_bytes(), feeds + rss.name, SITE)
        check_json(json_feed.read_bytes())
        assert_feed_is_clean(atom.read_bytes())
        assert_feed_is_clean(rss.read_bytes())
        assert_json_feed_is_clean(json_feed.read_bytes())


def check_message(raw: bytes) -> None:
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998, f"a line of {len(line)} octets"
    message = email.message_from_bytes(raw, policy=email.policy.strict)
    for part in message.walk():
        if part.get_content_type() == "text/html":
            page = part.get_content()
            root = lxml.html.document_fromstring(page)
            assert_no_active_content_in_html(
                etree.tostring(root.body, encoding="unicode", method="html")
            )


# --- the harness ------------------------------------------------------------------


@cache
def _migrated_template() -> Path:
    """One migrated, empty SQLite file, copied for every example (migrating is slow)."""
    folder = Path(tempfile.mkdtemp(prefix="publisher-fuzz-"))
    engine = db.make_engine(f"sqlite:///{folder / 'template.db'}")
    db.upgrade(engine)
    engine.dispose()
    return folder / "template.db"


def fresh_site(config_text: str = CONFIG_TEXT) -> tuple[Path, Any, Engine]:
    folder = Path(tempfile.mkdtemp(prefix="publisher-fuzz-"))
    shutil.copy(_migrated_template(), folder / "publisher.db")
    site = parse_settings(config_text, source="fuzz-config.yaml", base_dir=folder)
    engine = db.make_engine(f"sqlite:///{folder / 'publisher.db'}")
    return folder, site, engine


GOOD_POST = "---\ntitle: Known good\ndate: 2026-06-01\nstatus: published\ntags: [News]\n---\nHi.\n"


def run_everything(site: Any, engine: Engine, folder: Path, posts: list[str]) -> None:
    sessions = db.make_sessionmaker(engine)
    (folder / "good.md").write_text(GOOD_POST)
    import_target(sessions, str(folder / "good.md"), site, NOW)
    posts_dir = folder / "posts"
    posts_dir.mkdir()
    for index, text in enumerate(posts):
        (posts_dir / f"p{index}.md").write_text(text, encoding="utf-8")
    before = snapshot(engine)
    try:
        if posts:
            import_target(sessions, str(posts_dir), site, NOW)
    except ImportFailed as refused:
        for error in refused.errors:
            assert str(error).startswith(str(posts_dir)), str(error)
        assert snapshot(engine) == before, "a refused import wrote something"
    publish_feeds(sessions, site, NOW)
    check_every_feed(site.feeds.output_dir)
    with sessions() as session:
        for recipient in (Recipient("zoe@example.org", "Zoë Reader", 7),):
            _, composed = compose(session, site, site.digests[0], recipient, NOW, since=SINCE)
            check_message(composed.message)


@FUZZ
@given(st.lists(post_files(), min_size=1, max_size=3))
def test_fuzz_posts(posts: list[str]) -> None:
    folder, site, engine = fresh_site()
    try:
        run_everything(site, engine, folder, posts)
    finally:
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    config = yaml.safe_load(CONFIG_TEXT)
    site = config["site"]
    site["title"] = draw(st.one_of(st.just("Test Centre"), TEXT))
    if draw(st.booleans()):
        site["description"] = draw(TEXT)
    if draw(st.booleans()):
        site["logo"] = draw(URLS)
    if draw(st.booleans()):
        site["rights"] = draw(TEXT)
    if draw(st.booleans()):
        config["feeds"] = {"websub_hub": draw(URLS)}
    if draw(st.booleans()):
        config["digests"][0]["subject"] = draw(
            st.one_of(TEXT, st.sampled_from(["{{ site.title ", "{{ x }}", "{{ site.title }}!"]))
        )
    return yaml.safe_dump(config, allow_unicode=True)


@FUZZ
@given(config_texts())
def test_fuzz_config(text: str) -> None:
    try:
        folder, site, engine = fresh_site(text)
    except ConfigError as refused:
        assert str(refused).startswith("fuzz-config.yaml"), str(refused)
        return
    try:
        run_everything(site, engine, folder, [])
    finally:
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)
