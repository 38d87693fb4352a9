"""Reading a post file: every problem names the file, the field and the line."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from publisher.content.postfile import default_slug, parse_post_file, parse_when
from publisher.content.values import PostStatus
from publisher.errors import ContentError, PostProblems

BERLIN = ZoneInfo("Europe/Berlin")

GOOD = """\
---
title: Our strategy 2019 – 2021
date: 2019-04-18 10:00
status: published
author:
  name: Thomas Howie
  role: Communications Manager
tags: [Publications, Strategy]
attachments:
  - url: https://example.org/strategy.pdf
    title: Download Strategy (PDF)
    length: 1234
---
Welcome to our **strategy**.
"""


def parse(text: str | bytes, name: str = "posts/2019-04-18-strategy.md"):  # type: ignore[no-untyped-def]
    raw = text.encode() if isinstance(text, str) else text
    return parse_post_file(raw, name, BERLIN)


def test_good_post() -> None:
    draft = parse(GOOD)
    assert draft.title == "Our strategy 2019 – 2021"
    assert draft.slug == "strategy"
    assert draft.status is PostStatus.PUBLISHED
    # a time without offset is local time in the site's zone (CEST in April)
    assert draft.published_at == datetime(2019, 4, 18, 8, 0, tzinfo=UTC)
    assert draft.author is not None and draft.author.role == "Communications Manager"
    assert draft.tags == ("Publications", "Strategy")
    attachment = draft.attachments[0]
    assert (attachment.media_type, attachment.length) == ("application/pdf", 1234)
    assert draft.body_html == "<p>Welcome to our <strong>strategy</strong>.</p>\n"


def test_hash_changes_with_content_only() -> None:
    assert parse(GOOD).source_hash == parse(GOOD).source_hash
    assert parse(GOOD).source_hash != parse(GOOD + "More.\n").source_hash


def error_of(text: str | bytes) -> ContentError:
    with pytest.raises(ContentError) as info:
        parse(text, "posts/bad.md")
    return info.value


def test_bad_yaml_names_file_and_line() -> None:
    error = error_of("---\ntitle: ok\ntags: [unclosed\n---\nbody\n")
    assert str(error).startswith("posts/bad.md:")
    assert "not valid YAML" in str(error)
    assert error.line is not None and error.line >= 3


def test_missing_title_names_the_field() -> None:
    error = error_of("---\ndate: 2019-01-01\n---\nbody\n")
    assert error.field == "title"
    assert "posts/bad.md" in str(error) and "title: is required" in str(error)


def test_unparseable_date_names_field_and_line() -> None:
    error = error_of("---\ntitle: T\ndate: next tuesday\nstatus: published\n---\nbody\n")
    assert error.field == "date"
    assert error.line == 3
    assert "next tuesday" in str(error)
    assert str(error).startswith("posts/bad.md:3: date:")


def test_non_utf8_names_the_offset() -> None:
    error = error_of(b"---\ntitle: caf\xe9\n---\nbody\n")
    assert "not UTF-8" in str(error)
    assert "0xe9" in str(error)
    assert error.line == 2


def test_unknown_key_lists_the_allowed_ones() -> None:
    error = error_of("---\ntitle: T\ntitel: typo\n---\nbody\n")
    assert error.field == "titel"
    assert error.line == 3
    assert "unknown key" in str(error) and "title" in str(error)


def test_published_post_needs_a_date() -> None:
    error = error_of("---\ntitle: T\nstatus: published\n---\nbody\n")
    assert error.field == "date"


def test_no_front_matter() -> None:
    assert "no front matter" in str(error_of("Just text\n"))


def test_bad_video_names_the_body_line() -> None:
    error = error_of("---\ntitle: T\n---\nIntro\n\n::: video https://x.example/\n:::\n")
    assert error.field == "body"
    assert error.line == 6


def test_attachment_without_known_type() -> None:
    error = error_of("---\ntitle: T\nattachments:\n  - url: https://x.example/file\n---\n")
    assert error.field == "attachments.0.type"


def test_title_is_one_line() -> None:
    draft = parse('---\ntitle: "Two\\nlines"\n---\n')
    assert draft.title == "Two lines"


def test_default_slug_drops_the_date() -> None:
    assert default_slug("a/2019-12-05-leave-no-one-behind.md") == "leave-no-one-behind"
    assert default_slug("About Us.md") == "about-us"


# Links in front matter are http(s) or relative: a script URL, however
# disguised, is refused naming the file, the field and its line.
@pytest.mark.parametrize(
    ("field", "line", "yaml"),
    [
        ("canonical_url", 3, "canonical_url: javascript:alert(1)"),
        ("canonical_url", 3, "canonical_url: ' JaVa&#83;cript:alert(1)'"),
        ("image", 3, "image: data:image/svg+xml,<svg onload=alert(1)>"),
        ("image.url", 4, "image:\n  url: vbscript:msgbox(1)"),
        ("attachments.0.url", 4, 'attachments:\n  - url: "java\\tscript:alert(1)"\n    type: a/b'),
        ("canonical_url", 3, "canonical_url: mailto:a@example.org"),
        ("canonical_url", 3, "canonical_url: https://exa mple.org/"),
    ],
)
def test_unsafe_front_matter_links_are_refused(field: str, line: int, yaml: str) -> None:
    error = error_of(f"---\ntitle: T\n{yaml}\n---\nbody\n")
    assert error.field == field
    assert error.line == line


def test_relative_links_in_front_matter_stay_relative() -> None:
    draft = parse("---\ntitle: T\nimage: /img/a.png\ncanonical_url: https://example.org/a\n---\n")
    assert draft.image_url == "/img/a.png"
    assert draft.canonical_url == "https://example.org/a"


# A script link in the body is refused with the body line it is on (the
# sanitiser would remove it anyway; the editor should know).
@pytest.mark.parametrize(
    "body",
    [
        "[click](javascript:alert(1))",
        "[click](&#106;avascript:alert(1))",
        "<javascript:alert(1)>",
        '<a href="java&#x09;script:alert(1)">x</a>',
        "<img src='data:image/png;base64,AAAA'>",
        "<a href=vbscript:msgbox(1)>x</a>",
        "![x](data:image/svg+xml;base64,PHN2Zz4=)",
    ],
)
def test_unsafe_links_in_the_body_are_refused_with_their_line(body: str) -> None:
    error = error_of(f"---\ntitle: T\n---\nIntro\n\n{body}\n")
    assert error.field == "body"
    assert error.line == 6
    assert "only http, https and mailto" in str(error)


# An element the sanitiser would drop with what it holds (an embed, a script, a
# style sheet) is refused with its line, and the editor is told what to do
# instead, rather than vanishing from the post without a word.
@pytest.mark.parametrize(
    ("body", "advice"),
    [
        ('<iframe src="https://www.youtube.com/embed/x"></iframe>', "::: video URL"),
        ("<IFRAME\nsrc=https://maps.example.org/></iframe>", "::: video URL"),
        ("<style>p { color: red }</style>", "templates"),
        ("Text <script>alert(1)</script> more", "nothing runs"),
        ('<form action="https://x.example/"><input name="q"></form>', "link to a page"),
    ],
)
def test_elements_the_sanitiser_would_drop_are_refused_with_their_line(
    body: str, advice: str
) -> None:
    error = error_of(f"---\ntitle: T\n---\nIntro\n\n{body}\n")
    assert error.field == "body"
    assert error.line == 6
    assert "would be removed" in str(error) and advice in str(error)


# Shown as code, the same markup is text, and kept as text.
@pytest.mark.parametrize(
    "body", ["`<iframe src=x>`", "```html\n<script>alert(1)</script>\n```", "&lt;style&gt;"]
)
def test_markup_shown_as_code_is_not_refused(body: str) -> None:
    draft = parse(f"---\ntitle: T\n---\n{body}\n")
    assert "&lt;" in draft.body_html


@pytest.mark.parametrize("date", ["9999-12-31T23:00:00-05:00", "0001-01-01", "1899-12-31"])
def test_dates_outside_1900_to_2200_are_refused_with_the_field(date: str) -> None:
    error = error_of(f"---\ntitle: T\nstatus: published\ndate: {date}\n---\n")
    assert (error.field, error.line) == ("date", 4)
    assert "outside 1900–2200" in str(error)


def test_impossible_date_is_an_error_with_its_line() -> None:
    error = error_of("---\ntitle: T\nstatus: published\ndate: 2019-02-30\n---\n")
    assert error.line == 4 and "2019-02-30" in str(error)


def test_tags_differing_only_in_case_are_reported() -> None:
    error = error_of("---\ntitle: T\ntags: [SDGs, sdgs]\n---\n")
    assert error.field == "tags" and error.line == 3
    assert "'SDGs' and 'sdgs' are the same tag" in str(error)


def test_tags_with_signs_keep_distinct_slugs() -> None:
    draft = parse("---\ntitle: T\ntags: [C++, C, C#]\n---\n")
    assert draft.tags == ("C++", "C", "C#")


def test_duplicate_key_names_both_lines() -> None:
    error = error_of("---\ntitle: First\ndate: 2019-01-01\ntitle: Second\n---\n")
    assert error.line == 4
    assert "'title' is written twice (lines 2 and 4)" in str(error)


def test_limits_name_the_file_and_field() -> None:
    tags = ", ".join(f"t{i}" for i in range(51))
    assert error_of(f"---\ntitle: T\ntags: [{tags}]\n---\n").field == "tags"
    long_name = "x" * 201
    assert error_of(f"---\ntitle: T\nauthor: {long_name}\n---\n").field == "author"
    error = error_of("---\ntitle: T\n---\n" + "word " * 250_000)
    assert "larger than 1000 kB" in str(error) and str(error).startswith("posts/bad.md")
    many = "".join(f"  - url: https://example.org/{i}.pdf\n" for i in range(21))
    assert error_of(f"---\ntitle: T\nattachments:\n{many}---\n").field == "attachments"


def test_file_names_in_any_script_get_a_slug() -> None:
    assert parse("---\ntitle: T\n---\n", "posts/2019-12-05-李明.md").slug == "li-ming"
    assert parse("---\ntitle: Иван Петров\n---\n", "posts/🎉.md").slug == "ivan-petrov"
    with pytest.raises(ContentError, match="slug"):
        parse("---\ntitle: 🎉\n---\n", "posts/🎉.md")


# A draft travels from a parse worker to the importer pickled (as plain values:
# enums by value, author and attachments as tuples): it arrives equal, every field
# included, each of its own type.
def test_a_draft_survives_pickling() -> None:
    import pickle

    draft = parse_post_file(GOOD.encode(), "strategy.md", BERLIN)
    assert draft.author is not None and draft.attachments and draft.published_at
    arrived = pickle.loads(pickle.dumps(draft))
    assert arrived == draft
    assert repr(arrived) == repr(draft)  # the enums are enums, the author an AuthorDraft
    bare = parse_post_file(b"---\ntitle: T\n---\n", "t.md", BERLIN)
    assert bare.author is None and pickle.loads(pickle.dumps(bare)) == bare


# Invariant: a YAML escape cannot put a character XML forbids into a post, whichever
# way the front matter is read (one-line keys the short way, nested ones the long way).
@pytest.mark.parametrize(
    "head",
    [
        'title: "a\\u0000b\\bc\\fd"\ntags: ["x\\by"]\n',
        'title: "a\\x00b\\ec\\fd"\ntags:\n  - "x\\by"\n',
    ],
)
def test_escaped_characters_xml_forbids_are_dropped(head: str) -> None:
    draft = parse(f"---\n{head}---\nBody.\n")
    assert (draft.title, draft.tags) == ("abcd", ("xy",))


# A post's own id becomes the feeds' entry id (Atom's <id>, an IRI): one that is no
# URI is refused at its line (it was written into every feed as given).
def test_an_id_must_be_a_uri() -> None:
    error = error_of("---\ntitle: T\nid: not a uri <b>&\n---\nbody\n")
    assert (error.field, error.line) == ("id", 3) and "must be a URI" in str(error)
    for good in ("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "tag:example.org,2019:a"):
        assert parse(f"---\ntitle: T\nid: '{good}'\n---\nbody\n").uid == good


# YAML reads `title: 1984` as a number: the error says to quote it.
def test_a_number_where_text_goes_says_to_quote_it() -> None:
    error = error_of("---\ntitle: 1984\n---\nbody\n")
    assert error.field == "title" and "put it in quotes" in str(error)


# Invariant: a file with several problems names all of them at once, in the order of its
# lines (its author fixes them in one go, not one import at a time), whether the front
# matter's fields are refused (then the body is still checked) or accepted.
def test_every_problem_of_a_file_is_named_in_line_order() -> None:
    refused = error_of(
        "---\ntitel: typo\ndate: 2019-01-01\ntags: [a, A]\n---\nIntro\n\n"
        "::: video https://x.example/\n:::\n"
    )
    assert isinstance(refused, PostProblems)
    assert [(e.field, e.line) for e in refused.each] == [
        ("title", 2),
        ("titel", 2),
        ("tags", 4),
        ("body", 8),
    ]
    accepted = error_of(
        "---\ntitle: T\ndate: 2019-01-01\nupdated: someday\nattachments:\n"
        "  - url: https://x.example/a\n  - url: https://x.example/b\n---\n"
        "<script>alert(1)</script>\n"
    )
    assert [(e.field, e.line) for e in accepted.each] == [
        ("updated", 4),
        ("attachments.0.type", 6),
        ("attachments.1.type", 7),
        ("body", 9),
    ]
    assert str(accepted).splitlines()[0].startswith("posts/bad.md:4: updated:")
    assert len(str(accepted).splitlines()) == 4


# Invariant: a parse worker hands the file's problems to the importer whole.
def test_problems_of_a_file_survive_pickling() -> None:
    import pickle

    error = error_of("---\ntitle: T\nstatus: published\nupdated: x\n---\n")
    arrived = pickle.loads(pickle.dumps(error))
    assert [str(e) for e in arrived.each] == [str(e) for e in error.each]
    assert len(arrived.each) == 2


# Invariant: a field the front matter refuses hides nothing else: the other fields are
# still checked (a date, an attachment's type), and every unsafe thing in the body is
# named, each with its line, not only the first.
def test_a_refused_field_hides_no_other_problem() -> None:
    error = error_of(
        "---\ntitle: T\ndate: 5 Dec 2019\nstatus: publised\nslug: Annual Report\n"
        "attachments:\n  - url: https://x.example/a\n  - url: javascript:alert(1)\n---\n"
        "<script>x</script>\n\n<iframe src='https://x.example/'></iframe>\n\n"
        "[click](javascript:alert(1))\n"
    )
    assert [(e.field, e.line) for e in error.each] == [
        ("date", 3),
        ("status", 4),
        ("slug", 5),
        ("attachments.0.type", 7),
        ("attachments.1.url", 8),
        ("body", 10),
        ("body", 12),
        ("body", 14),
    ]
    slug = next(e for e in error.each if e.field == "slug")
    assert "lower-case letters and digits" in slug.message and "[a-z" not in slug.message


# Invariant: a video directive that would not be one is refused with its line: one
# left open (the rest of the post would become its caption) and `::: Video` (shown
# as text); a directive shown in a code block is not one.
def test_video_directives_written_wrong_are_refused() -> None:
    unclosed = error_of(
        "---\ntitle: T\n---\nIntro\n\n::: video https://www.youtube.com/watch?v=dQw4w9WgXcQ\nCap\n\nMore.\n"
    )
    assert (unclosed.field, unclosed.line) == ("body", 6) and "not closed" in unclosed.message
    capital = error_of(
        "---\ntitle: T\n---\n::: Video https://www.youtube.com/watch?v=dQw4w9WgXcQ\n:::\n"
    )
    assert (capital.line, "lower case" in capital.message) == (4, True)
    shown = parse(
        "---\ntitle: T\n---\n```\n::: video https://www.youtube.com/watch?v=dQw4w9WgXcQ\n```\n"
    )
    assert "::: video" in shown.body_html


# The commonest slips of a front matter get the cause with the line: a colon in an
# unquoted title, a tab, an empty title, a file saved as UTF-16.
@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (b"---\ntitle: Strategy: 2019\n---\n", 'goes in quotes: title: "Strategy: 2019"'),
        (b"---\ntitle: T\ntags:\n\t- a\n---\n", "a tab: YAML indents with spaces"),
        (b"---\ntitle:\n---\n", "title: is empty"),
        ("---\ntitle: T\n---\n".encode("utf-16"), "is UTF-16; save the file as UTF-8"),
    ],
)
def test_common_slips_say_their_cause(raw: bytes, said: str) -> None:
    assert said in str(error_of(raw))


# A local time the clocks skip (the spring change) is refused, not moved an hour on
# unseen; the autumn's repeated hour is taken as its first (summer) instance; a date
# alone, where the clocks skip midnight itself, is the first hour that day has.
def test_a_local_time_that_does_not_exist_is_refused() -> None:
    santiago = ZoneInfo("America/Santiago")  # 2019-09-08 began at 01:00
    for day in (date(2019, 9, 8), "2019-09-08"):
        assert parse_when(day, santiago).astimezone(UTC) == datetime(2019, 9, 8, 4, tzinfo=UTC)
    error = error_of("---\ntitle: T\ndate: 2024-03-31 02:30\nstatus: published\n---\n")
    assert (error.field, error.line) == ("date", 3) and "does not exist in Europe/Berlin" in str(
        error
    )
    draft = parse("---\ntitle: T\ndate: 2024-10-27 02:30\n---\n")
    assert draft.published_at is not None
    assert draft.published_at.astimezone(UTC) == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)


# A post that ends with its video (no caption, or its one caption paragraph) and no
# closing line is as meant: nothing follows to be swallowed.
def test_a_video_at_the_end_needs_no_closing_line() -> None:
    url = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    for body in (f"Intro.\n\n::: video {url}\n", f"Intro.\n\n::: video {url}\nLaunch\n\n"):
        draft = parse(f"---\ntitle: T\n---\n{body}")
        assert 'data-video-id="dQw4w9WgXcQ"' in draft.body_html


# Each unsafe thing is named every time it is written, not once per kind.
def test_every_occurrence_of_an_unsafe_element_is_named() -> None:
    error = error_of(
        "---\ntitle: T\n---\n<script>a</script>\n\nText.\n\n<script>b</script>\n\n"
        "[a](javascript:x)\n\n[b](javascript:x)\n"
    )
    assert [(e.field, e.line) for e in error.each] == [
        ("body", 4),
        ("body", 8),
        ("body", 10),
        ("body", 12),
    ]
