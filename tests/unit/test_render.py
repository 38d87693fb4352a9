"""Rendering (publisher/mail/render.py): the subject, the preheader, what premailer writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import lxml.html
import pytest

from publisher.config import Settings
from publisher.errors import TemplateError
from publisher.mail.digest import make_digest, make_post
from publisher.mail.render import SUBJECT_CHARS, cut_at_word, render_digest, render_subject

T0 = datetime(2019, 12, 5, 10, tzinfo=UTC)


def digest_of(*titles: str):  # type: ignore[no-untyped-def]
    posts = [
        make_post(
            title=title,
            link=f"https://example.org/news/{n}/",
            published=T0 - timedelta(hours=n),
            body_html="<p>Body.</p>",
            image="https://example.org/cover.jpg",
        )
        for n, title in enumerate(titles)
    ]
    return make_digest("weekly", posts, T0 - timedelta(days=9), T0 + timedelta(days=1))


@pytest.mark.parametrize(
    ("text", "limit", "cut"),
    [
        ("short", 10, "short"),
        ("Leave No One Behind news round-up", 20, "Leave No One Behind…"),
        ("Leave No One Behind news round-up", 19, "Leave No One…"),
        ("one, two, three", 10, "one, two…"),
        ("word " * 10, 11, "word word…"),
        ("李明" * 20, 10, "李明李明李明李明李…"),
    ],
)
def test_cut_at_a_word_with_an_ellipsis(text: str, limit: int, cut: str) -> None:
    assert cut_at_word(text, limit) == cut
    assert len(cut_at_word(text, limit)) <= limit


# The subject template comes from the config: it runs in Jinja's sandbox, so it
# cannot reach Python's internals; a forbidden step is a TemplateError naming it.
def test_the_subject_template_runs_in_the_sandbox(settings: Settings) -> None:
    config = settings.digests[0].model_copy(
        update={"subject": "{{ site.__class__.__init__.__globals__ }}"}
    )
    with pytest.raises(TemplateError, match=r"digests\[weekly\]\.subject"):
        render_subject(config, settings, digest_of("A"))


# A subject made of long titles stays one line, cut at a word, far below 998 octets.
def test_a_long_subject_is_one_line_cut_at_a_word(settings: Settings) -> None:
    titles = ["Conceição e a sociedade civil internacional num mundo em mudança"] * 30
    config = settings.digests[0].model_copy(
        update={"subject": "{% for p in digest.posts %}{{ p.title }}\n{% endfor %}"}
    )
    subject = render_subject(config, settings, digest_of(*titles))
    assert "\n" not in subject and len(subject) <= SUBJECT_CHARS
    assert subject.endswith("…") and len(subject.encode()) < 998
    assert (" ".join(titles)).startswith(subject.removesuffix("…"))


# Outlook for Windows reads an <img>'s height attribute: premailer must not turn
# the templates' numeric heights into height="auto" (from the CSS height: auto).
def test_images_keep_their_numeric_width_and_height(settings: Settings) -> None:
    site = settings.site.model_copy(update={"logo": "https://example.org/logo.png"})
    settings = settings.model_copy(update={"site": site})
    html = render_digest(digest_of("A", "B"), settings.digests[0], settings).html
    sizes = [
        (img.get("width"), img.get("height")) for img in lxml.html.fromstring(html).iter("img")
    ]
    assert sizes == [("200", "50"), ("536", "302"), ("536", "302")]


def test_the_preheader_is_cut_at_a_word(settings: Settings) -> None:
    titles = ("Leave No One Behind news round-up", "x" * 70, "y" * 70, "z")
    html = render_digest(digest_of(*titles), settings.digests[0], settings).html
    hidden = lxml.html.fromstring(html).xpath('//div[contains(@style, "display:none")]')[0]
    preheader = hidden.text_content().split("\u034f")[0]
    assert preheader == "4 new: Leave No One Behind news round-up, " + "x" * 70 + "…"
