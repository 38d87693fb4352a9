"""Migrating posts from an existing feed keeps each entry's id and content."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from publisher.content.feedimport import looks_like_feed, parse_feed
from publisher.content.values import PostStatus, SourceFormat
from publisher.errors import ContentError

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Old site</title>
  <id>urn:old</id>
  <updated>2019-12-05T12:00:00Z</updated>
  <entry>
    <id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id>
    <title>Our strategy 2019 \xe2\x80\x93 2021</title>
    <link rel="alternate" href="https://old.example.org/news/our-strategy/"/>
    <link rel="enclosure" href="https://old.example.org/s.pdf" type="application/pdf"
          length="5000"/>
    <published>2019-04-18T10:00:00+02:00</published>
    <updated>2019-04-20T10:00:00+02:00</updated>
    <author><name>Thomas Howie</name><email>th@example.org</email></author>
    <category term="publications" label="Publications"/>
    <summary>Short.</summary>
    <content type="html">&lt;p&gt;Hello&lt;script&gt;x()&lt;/script&gt;&lt;/p&gt;</content>
  </entry>
</feed>
"""

RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Old</title><link>https://old.example.org/</link>
<description>d</description>
<item><title>Plain item</title><link>https://old.example.org/p/plain.html</link>
<guid isPermaLink="false">old-42</guid><pubDate>Mon, 11 Feb 2019 10:00:00 +0100</pubDate>
<description>&lt;b&gt;Body&lt;/b&gt;</description></item>
</channel></rss>
"""


def test_atom_entry_becomes_a_published_post() -> None:
    (draft,) = parse_feed(ATOM, "old.xml")
    assert draft.uid == "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"
    assert draft.title == "Our strategy 2019 – 2021"
    assert draft.slug == "our-strategy"
    assert draft.status is PostStatus.PUBLISHED
    assert draft.published_at == datetime(2019, 4, 18, 8, 0, tzinfo=UTC)
    assert draft.updated_at == datetime(2019, 4, 20, 8, 0, tzinfo=UTC)
    assert draft.author is not None and draft.author.name == "Thomas Howie"
    assert draft.tags == ("Publications",)
    assert draft.summary == "Short."
    assert draft.source_format is SourceFormat.HTML
    assert "<script" not in draft.body_html and "Hello" in draft.body_html
    assert draft.attachments[0].url == "https://old.example.org/s.pdf"
    assert draft.attachments[0].length == 5000
    assert draft.canonical_url == "https://old.example.org/news/our-strategy/"


def test_rss_item() -> None:
    (draft,) = parse_feed(RSS, "old.rss")
    assert draft.uid == "old-42"
    assert draft.slug == "plain"
    assert draft.body_html == "<b>Body</b>"
    assert draft.published_at == datetime(2019, 2, 11, 9, 0, tzinfo=UTC)


def test_not_a_feed() -> None:
    with pytest.raises(ContentError, match="not a readable RSS or Atom feed"):
        parse_feed(b"<html><body>hi</body></html>", "page.html")


def test_entry_without_date_is_named() -> None:
    broken = ATOM.replace(b"<published>2019-04-18T10:00:00+02:00</published>", b"").replace(
        b"<updated>2019-04-20T10:00:00+02:00</updated>", b""
    )
    with pytest.raises(ContentError, match=r"old.xml#entry-1: date: .*no published"):
        parse_feed(broken, "old.xml")


def test_sniffing() -> None:
    assert looks_like_feed(ATOM) and looks_like_feed(RSS)
    assert not looks_like_feed(b"---\ntitle: x\n---\n")
