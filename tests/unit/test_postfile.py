"""Reading a post file: every problem names the file, the field and the line."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from publisher.content.postfile import default_slug, parse_post_file
from publisher.content.values import PostStatus
from publisher.errors import ContentError

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
