"""The digest's content, its rendering and its size budget, without a database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from publisher.config import Settings
from publisher.content.html import truncate_html
from publisher.content.values import Enclosure
from publisher.errors import EmptyDigest
from publisher.mail.digest import edition, empty_window, make_digest, make_post
from publisher.mail.render import Placeholders, render_digest, render_subject

T0 = datetime(2019, 12, 5, 10, tzinfo=UTC)
VIDEO_BODY = (
    '<figure class="video" data-provider="youtube" data-video-id="dQw4w9WgXcQ"><p>'
    '<a href="https://www.youtube.com/watch?v=dQw4w9WgXcQ">Watch the video</a></p>'
    "<figcaption><p>Launch</p></figcaption></figure><p>After the video.</p>"
)


def post(n: int, **changes: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "title": f"Post {n}",
        "link": f"https://example.org/news/{n}/",
        "published": T0 - timedelta(days=n),
        "body_html": f"<p>Body of post {n}. " + "Words and more words. " * 40 + "</p>",
        "author": "Thomas Howie",
        "tags": ("Events",) if n % 2 else ("SDGs",),
    }
    values.update(changes)
    return make_post(**values)  # type: ignore[arg-type]


def test_order() -> None:
    posts = [post(n) for n in (2, 0, 1)]
    digest = make_digest("weekly", posts, T0 - timedelta(days=2, hours=12), T0 + timedelta(hours=1))
    assert [p.title for p in digest.posts] == ["Post 0", "Post 1", "Post 2"]
    posts = [post(n) for n in range(5)]
    by_tag = make_digest("weekly", posts, T0 - timedelta(days=9), T0 + timedelta(1), "tag")
    assert [s.title for s in by_tag.sections] == ["Events", "SDGs"]
    assert [p.title for p in by_tag.sections[0].posts] == ["Post 1", "Post 3"]


# An empty window's digest is the "nothing new" note: no section, no post, and every
# reader's edition whatever their topics; where no note may go, the error names the
# window and how to choose another.
def test_an_empty_window_is_the_note_or_a_clear_error() -> None:
    note = make_digest("weekly", [], T0 - timedelta(days=1), T0)
    assert note.is_note and note.sections == () and note.posts == ()
    assert edition(note, ["Events"]) is note
    assert not make_digest("weekly", [post(0)], T0 - timedelta(days=1), T0 + timedelta(1)).is_note
    error = empty_window("weekly", T0 - timedelta(days=1), T0)
    assert isinstance(error, EmptyDigest)
    assert re.match(
        r"no post was published between .* no 'weekly' digest .*--since/--until", str(error)
    )


def test_excerpts_never_break_tags() -> None:
    html = "<p>One <b>two <i>three four five</i> six</b> seven</p><ul><li>eight</li></ul>"
    cut = truncate_html(html, 14)
    assert cut == "<p>One <b>two <i>three…</i></b></p>"
    assert truncate_html("<p>short</p>", 50) == "<p>short</p>"


def test_a_video_becomes_a_linked_thumbnail() -> None:
    item = post(1, body_html=VIDEO_BODY)
    assert item.video is not None and item.video.video_id == "dQw4w9WgXcQ"
    assert '<a href="https://www.youtube.com/watch?v=dQw4w9WgXcQ"><img' in item.excerpt_html
    assert "<iframe" not in item.excerpt_html
    assert item.summary == "After the video."


# Invariant: the summary an editor wrote is what both parts of the digest show (HTML
# escaped, with every video of the post as a thumbnail), and the text part links every
# video, not only the first.
def test_the_editor_s_summary_and_every_video_are_in_both_parts(settings: Settings) -> None:
    vimeo = VIDEO_BODY.replace(
        '"youtube" data-video-id="dQw4w9WgXcQ"', '"vimeo" data-video-id="76979871"'
    )
    item = post(1, body_html=VIDEO_BODY + vimeo, summary="Three things <happened>.")
    assert item.excerpt_html.startswith("<p>Three things &lt;happened&gt;.</p>")
    assert item.excerpt_html.count("Watch the video") == 2
    assert "After the video" not in item.excerpt_html
    rendered = render_digest(
        make_digest("weekly", [item], T0 - timedelta(9), T0), settings.digests[0], settings
    )
    assert "Three things &lt;happened&gt;." in rendered.html
    assert "Three things <happened>." in rendered.text
    assert "Watch the video: https://www.youtube.com/watch?v=dQw4w9WgXcQ" in rendered.text
    assert "Watch the video: https://vimeo.com/76979871" in rendered.text


def test_subject_is_one_line_whatever_the_template(settings: Settings) -> None:
    config = settings.digests[0].model_copy(
        update={"subject": "News\r\nBcc: x@evil.example {{ site.title }}"}
    )
    digest = make_digest("weekly", [post(1)], T0 - timedelta(days=9), T0)
    assert render_subject(config, settings, digest) == "News Bcc: x@evil.example Test Centre"


def test_css_is_inlined_once_and_media_queries_survive(settings: Settings) -> None:
    digest = make_digest("weekly", [post(1, body_html=VIDEO_BODY), post(2)], T0 - timedelta(9), T0)
    rendered = render_digest(
        digest, settings.digests[0], settings, placeholders=Placeholders("abc")
    )
    html = rendered.html
    # elements carry their styles inline (what Gmail and Outlook read)...
    assert re.search(r'<td class="inner" style="[^"]*font-family: ?Arial', html)
    assert re.search(r'<a class="button-link"[^>]*style="[^"]*padding', html)
    assert re.search(r'<h2 class="card-title" style="', html)
    # ...and the rules that cannot be inlined stay in the head, flat (premailer #290)
    head = html.split("</head>")[0]
    assert "@media (prefers-color-scheme: dark)" in head
    assert "@media screen and (max-width: 620px)" in head
    assert "PUBLISHERabcgreetingX" in html and "PUBLISHERabcunsubscribeurlX" in html


def test_over_budget_shrinks_to_summaries_and_says_so(settings: Settings) -> None:
    posts = [post(n, body_html="<p>" + "Long text. " * 400 + "</p>") for n in range(40)]
    digest = make_digest("weekly", posts, T0 - timedelta(days=60), T0 + timedelta(1))
    config = settings.digests[0].model_copy(update={"size_budget_kb": 10})
    rendered = render_digest(digest, config, settings)
    assert rendered.digest.condensed
    assert "shows short summaries" in rendered.html and "More on the site" in rendered.html
    assert "shows short summaries" in rendered.text
    roomy = render_digest(digest, settings.digests[0], settings)
    assert rendered.html_bytes < roomy.html_bytes


def test_attachments_are_links(settings: Settings) -> None:
    pdf = Enclosure("https://example.org/s.pdf", "application/pdf", 1_200_000, "Strategy (PDF)")
    digest = make_digest("weekly", [post(1, attachments=(pdf,))], T0 - timedelta(9), T0)
    rendered = render_digest(digest, settings.digests[0], settings)
    assert re.search(
        r'<a href="https://example.org/s.pdf"[^>]*>Strategy \(PDF\)</a> \(1.2 MB\)', rendered.html
    )
    assert "Strategy (PDF): https://example.org/s.pdf" in rendered.text


def test_a_deployment_can_override_a_template(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "mytemplates"
    (folder / "partials").mkdir(parents=True)
    (folder / "partials/post_card.html").write_text("<p class='mine'>{{ post.title }}</p>")
    custom = settings.model_copy(
        update={"email": settings.email.model_copy(update={"templates": folder})}
    )
    digest = make_digest("weekly", [post(1)], T0 - timedelta(9), T0)
    html = render_digest(digest, custom.digests[0], custom).html
    assert '<p class="mine"' in html and "Post 1" in html
    assert "Unsubscribe" in html  # the base layout still comes from templates/email


def test_an_excerpt_does_not_end_on_a_heading() -> None:
    html = "<p>" + "word " * 10 + "</p><h2>India: a new study</h2><p>More text here.</p>"
    assert truncate_html(html, 55) == "<p>" + "word " * 10 + "</p>"
