"""Rendering (publisher/mail/render.py): the subject, the preheader, what premailer writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest

from publisher.config import Settings
from publisher.errors import ConfigError, TemplateError
from publisher.mail.digest import make_digest, make_post
from publisher.mail.render import (
    SUBJECT_CHARS,
    check_subjects,
    cut_at_word,
    render_digest,
    render_subject,
)

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


# Invariant: a subject or "nothing new" subject that names what it does not have fails
# the check the scheduler makes as it starts (not the first send, days later), each
# named by its newsletter and key; the shipped ones pass it.
@pytest.mark.parametrize(
    ("key", "template"),
    [
        ("subject", "{{ site.titel }}: news"),
        ("note_subject", "Nothing new since {{ digest.posts[0].title }}"),
    ],
)
def test_a_subject_that_cannot_be_made_fails_the_check(
    settings: Settings, key: str, template: str
) -> None:
    check_subjects(settings, T0)
    broken = settings.digests[0].model_copy(update={key: template})
    changed = settings.model_copy(update={"digests": [broken]})
    with pytest.raises(ConfigError, match=rf"config.yaml:\d+: digests\.0\.{key}: "):
        check_subjects(changed, T0)


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


# The "nothing new" note is rendered like a digest (base layout, CSS inlined by premailer,
# the subscription footer) from its own templates, with its own subject and preheader, and
# says since when nothing is new, in the site's time zone.
def test_the_nothing_new_note_has_its_own_templates_subject_and_preheader(
    settings: Settings,
) -> None:
    config = settings.digests[0].model_copy(update={"empty": "note"})
    since = datetime(2019, 11, 25, 8, tzinfo=UTC)
    note = make_digest("weekly", [], since, T0)
    rendered = render_digest(note, config, settings)
    assert rendered.html_template == "note.html"
    assert rendered.subject == "Test Centre: nothing new since 25 November 2019"
    page = lxml.html.fromstring(rendered.html)
    hidden = page.xpath('//div[contains(@style, "display:none")]')[0]
    assert hidden.text_content().split("\u034f")[0] == "Nothing new since 25 November 2019"
    intro = page.xpath('//p[contains(@class, "intro")]')[0]
    assert "nothing new was published on Test Centre since 25 November 2019" in (
        intro.text_content()
    )
    assert "font-family" in page.xpath('//td[contains(@class, "inner")]')[0].get("style")
    assert rendered.placeholders.token("unsubscribe_url") in rendered.html
    assert "since 25 November 2019" in rendered.text
    assert rendered.placeholders.token("unsubscribe_url") in rendered.text
    assert rendered.text.count("\n-- \n") == 1
    assert "Read more" not in rendered.text and "Read more" not in rendered.html


# Each newsletter names its own templates (`template: monthly` → monthly.html and
# monthly.txt, the deployment's folder first, then ours), and its own note beside them
# (monthly-note.*) when the deployment wrote one; the others keep digest.* and note.*.
def test_two_newsletters_render_with_their_own_templates(
    settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "mytemplates"
    folder.mkdir()
    (folder / "monthly.html").write_text(
        '{% extends "base.html" %}{% block content %}<p class="monthly">Monthly: '
        "{% for p in digest.posts %}{{ p.title }} {% endfor %}</p>{% endblock %}"
    )
    (folder / "monthly.txt").write_text("Monthly text: {{ digest.posts | length }} posts\n")
    (folder / "monthly-note.txt").write_text(
        "Quiet month since {{ digest.period_start | local_date }}\n"
    )
    custom = settings.model_copy(
        update={"email": settings.email.model_copy(update={"templates": folder})}
    )
    weekly = custom.digests[0]
    monthly = weekly.model_copy(update={"name": "monthly", "template": "monthly"})
    digest = digest_of("Alpha", "Beta")
    mine, theirs = render_digest(digest, monthly, custom), render_digest(digest, weekly, custom)
    assert mine.html_template == "monthly.html" and theirs.html_template == "digest.html"
    assert '<p class="monthly"' in mine.html and "Monthly: Alpha Beta" in mine.html
    assert 'class="monthly"' not in theirs.html and "Read more" in theirs.html
    assert mine.text == "Monthly text: 2 posts\n" and "Monthly" not in theirs.text
    note = make_digest("monthly", [], T0 - timedelta(days=30), T0)
    quiet = render_digest(note, monthly, custom)
    assert quiet.text == "Quiet month since 5 November 2019\n"
    assert quiet.html_template == "note.html", "no monthly-note.html: the shipped note"
    assert "nothing new was published" in render_digest(note, weekly, custom).text


# A template the folders do not have is a TemplateError that names what was looked for.
def test_a_missing_template_names_itself(settings: Settings) -> None:
    config = settings.digests[0].model_copy(update={"template": "nowhere"})
    with pytest.raises(TemplateError, match=r"nowhere\.html"):
        render_digest(digest_of("A"), config, settings)


# An expression that fails as it runs, in the config's subject or in a template of
# email.templates, is a TemplateError naming where (the template's line), not a
# traceback; and a template that is not UTF-8 says so.
def test_a_failing_expression_names_its_template_and_line(
    settings: Settings, tmp_path: Path
) -> None:
    config = settings.digests[0].model_copy(update={"subject": "{{ 1/0 }}"})
    with pytest.raises(TemplateError, match=r"digests\[weekly\]\.subject:1: ZeroDivisionError"):
        render_subject(config, settings, digest_of("A"))
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "digest.html").write_text(
        '{% extends "base.html" %}\n{% block content %}\n{{ digest.period_end.strftime(1) }}\n'
        "{% endblock %}"
    )
    custom = settings.model_copy(
        update={"email": settings.email.model_copy(update={"templates": folder})}
    )
    with pytest.raises(TemplateError, match=r"digest\.html:3: TypeError"):
        render_digest(digest_of("A"), custom.digests[0], custom)
    (folder / "digest.html").write_bytes(b"caf\xe9 {{ digest.name }}")
    with pytest.raises(TemplateError, match="not UTF-8"):
        render_digest(digest_of("A"), custom.digests[0], custom)
