"""What leaves is checked again: a post row written by another tool (never
imported, never sanitised) cannot put a script URL or an event handler into a
feed, a digest message or the digest's web page."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from publisher.audience.recipients import Recipient
from publisher.config import Settings
from publisher.content.values import PostStatus
from publisher.feeds.build import publish_feeds
from publisher.mail.compose import compose, publish_web_version
from publisher.models import Attachment, Post
from tests.feedcheck import check_atom, check_json, check_rss

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SITE = "https://news.example.org/"
#: anything that would run a script or load a data document in a reader
DANGER = re.compile(
    r"javascript|vbscript|data:|&#|\bon[a-z]+\s*=|<script|<iframe|<object|<embed", re.I
)

HOSTILE_BODY = (
    '<p>Hi <a href="javascript:alert(1)">one</a> <a href=" JaVaScRiPt:alert(2)">two</a>'
    '<img src="data:image/svg+xml,&lt;svg onload=alert(3)&gt;" onerror="alert(4)">'
    '<a href="&#106;avascript:alert(5)">five</a><a href="vbscript:msgbox(6)">six</a>'
    "<script>alert(7)</script><iframe src=https://evil.example/></iframe>"
    '<a href="/ok">relative</a></p>'
)


def plant_hostile_row(sessions: sessionmaker[Session]) -> None:
    """As another tool might: straight into the table, past every import check."""
    with sessions.begin() as session:
        post = Post(
            uid="urn:planted",
            slug="planted",
            title="Planted",
            body_source="",
            body_html=HOSTILE_BODY,
            status=PostStatus.PUBLISHED,
            published_at=datetime(2026, 11, 20, tzinfo=UTC),
            updated_at=datetime(2026, 11, 20, tzinfo=UTC),
            canonical_url="javascript:alert(8)",
            image_url="data:image/png;base64,AAAA",
            image_alt="alt",
        )
        post.attachments = [
            Attachment(position=0, url="vbscript:msgbox(9)", media_type="application/pdf"),
            Attachment(position=1, url="/files/ok.pdf", media_type="application/pdf"),
        ]
        session.add(post)


def test_a_planted_row_leaks_nothing_into_feeds(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    plant_hostile_row(sessions)
    publish_feeds(sessions, settings, NOW)
    out = settings.feeds.output_dir
    feeds = SITE + "feeds/"
    atom, rss, json_feed = ((out / n).read_bytes() for n in ("atom.xml", "rss.xml", "feed.json"))
    for data in (atom, rss, json_feed):
        text = data.decode()
        # the XML escapes markup inside content: look at it unescaped too
        for view in (text, text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")):
            assert not DANGER.search(view), DANGER.search(view)
        assert SITE + "news/planted/" in text, "an unsafe canonical URL falls back to the post"
        assert SITE + "ok" in text and SITE + "files/ok.pdf" in text
    check_atom(atom, feeds + "atom.xml", SITE)
    check_rss(rss, feeds + "rss.xml", SITE)
    check_json(json_feed)


def test_a_planted_row_leaks_nothing_into_the_digest(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    plant_hostile_row(sessions)
    recipient = Recipient("zoe@example.org", "Zoë", 1)
    with sessions() as session:
        _, composed = compose(
            session,
            settings,
            settings.digests[0],
            recipient,
            NOW,
            since=datetime(2026, 1, 1, tzinfo=UTC),
        )
    message = email.message_from_bytes(composed.message, policy=email.policy.strict)
    for part in message.walk():
        if part.get_content_maintype() == "text":
            body = part.get_content()
            assert not DANGER.search(body), DANGER.search(body)
            assert SITE + "news/planted/" in body
    page = publish_web_version(settings, composed.rendered).read_text()
    assert not DANGER.search(page), DANGER.search(page)


def test_stored_body_is_sanitised_again(tmp_path: Path) -> None:
    from publisher.content.public import public_post
    from publisher.urls import Urls

    class Row:
        uid, slug, title, summary = "u", "s", "T", None
        body_html = HOSTILE_BODY
        published_at = updated_at = NOW
        canonical_url = "  java\tscript:alert(1)"
        image_url = "//cdn.example.org/a.png"
        image_alt = None

    public = public_post(Row(), [], Urls(SITE, SITE + "feeds/"))
    assert not DANGER.search(public.body_html)
    assert public.link == SITE + "news/s/"
    assert public.image == "https://cdn.example.org/a.png"


# A tag or author row with a slug no import makes ("../..", empty) or a name
# with characters XML forbids gets its feed inside the feed folder, valid.
def test_planted_names_and_slugs_stay_inside_the_feed_folder(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    from publisher.models import Author, Tag

    with sessions.begin() as session:
        post = Post(
            uid="urn:names",
            slug="names",
            title="Names",
            body_source="",
            body_html="<p>x</p>",
            status=PostStatus.PUBLISHED,
            published_at=datetime(2026, 11, 20, tzinfo=UTC),
            updated_at=datetime(2026, 11, 20, tzinfo=UTC),
        )
        post.author = Author(slug="", name="Esc\x1bape")
        post.tags = [Tag(slug="../../escape", name="Evil\x0bTag")]
        session.add(post)
    publish_feeds(sessions, settings, NOW)
    out = settings.feeds.output_dir
    assert not (out.parent / "escape").exists() and not (out / "authors/atom.xml").exists()
    atoms = sorted(out.rglob("atom.xml"))
    assert len(atoms) == 3
    for atom in atoms:
        folder = atom.parent.relative_to(out).as_posix()
        prefix = "" if folder == "." else folder + "/"
        check_atom(atom.read_bytes(), SITE + "feeds/" + prefix + "atom.xml", SITE)
