"""Migrating posts from an existing feed keeps each entry's id and content."""

from __future__ import annotations

import re
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


def _entry_feed(entry_xml: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
<title>Old</title><id>urn:old</id><updated>2019-12-05T12:00:00Z</updated>
<entry><id>urn:e1</id><title>Fine</title><link href="https://old.example.org/fine"/>
<updated>2019-01-01T00:00:00Z</updated><content type="html">ok</content></entry>
<entry><id>urn:e2</id><title>Bad one</title><updated>2019-01-01T00:00:00Z</updated>
{entry_xml}</entry></feed>""".encode()


# A migrated feed's links reach every output: a script or data URL in any of
# them refuses the import, naming the entry and the field.
@pytest.mark.parametrize(
    ("xml", "field"),
    [
        ('<link href="javascript:alert(1)"/>', "link"),
        ('<link href=" JaVaScRiPt:alert(1)"/>', "link"),
        ('<link href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"/>', "link"),
        ('<link rel="enclosure" href="vbscript:msgbox(1)" type="a/b"/>', "enclosure"),
        ('<media:thumbnail url="data:image/png;base64,AAAA"/>', "media:thumbnail"),
        (
            '<content type="html">&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;</content>',
            "content",
        ),
        (
            '<content type="html">&lt;a href="&amp;#106;avascript:alert(1)"&gt;x&lt;/a&gt;'
            "</content>",
            "content",
        ),
        ('<content type="html">&lt;img src="data:image/png;base64,AA"&gt;</content>', "content"),
        ('<summary type="html">&lt;a href="java&#9;script:x"&gt;x&lt;/a&gt;</summary>', "content"),
    ],
)
def test_unsafe_links_refuse_the_entry(xml: str, field: str) -> None:
    with pytest.raises(ContentError) as info:
        parse_feed(_entry_feed(xml), "old.xml")
    assert info.value.source == "old.xml#entry-2"
    assert info.value.field == field
    assert "'Bad one'" in str(info.value)


@pytest.mark.parametrize("year", ["9999", "0001"])
def test_dates_out_of_range_are_refused(year: str) -> None:
    feed = _entry_feed(f"<published>{year}-06-01T00:00:00Z</published>")
    with pytest.raises(ContentError, match=f"year {int(year)} is outside") as info:
        parse_feed(feed, "old.xml")
    assert info.value.field == "published"


def test_tags_differing_only_in_case_are_one() -> None:
    feed = _entry_feed('<category term="SDGs"/><category term="sdgs"/><category term="C++"/>')
    assert parse_feed(feed, "old.xml")[1].tags == ("SDGs", "C++")


def test_entry_without_a_sluggable_link_or_title_gets_a_slug_from_its_id() -> None:
    feed = _entry_feed("").replace(b"<title>Bad one</title>", b"<title>\xf0\x9f\x8e\x89</title>")
    slug = parse_feed(feed, "old.xml")[1].slug
    assert slug.startswith("post-") and len(slug) == 15


# A migrated entry keeps what it can: an embedded player or a script is removed
# (feeds and email cannot carry it), the entry is imported all the same, and the
# import says which entry lost what. An entry with nothing removed says nothing.
def test_a_migrated_entry_that_loses_an_embed_says_so() -> None:
    (draft,) = parse_feed(ATOM, "old.xml")
    assert draft.notes == ("<script> removed, with what it held: feeds and email cannot carry it",)
    embed = '<content type="html">&lt;p&gt;Watch&lt;/p&gt;&lt;iframe src="https://player.example/1"&gt;&lt;/iframe&gt;</content>'
    bad = parse_feed(_entry_feed(embed), "old.xml")[1]
    assert "<iframe" not in bad.body_html and "Watch" in bad.body_html
    assert bad.notes and bad.notes[0].startswith("<iframe> removed")
    # each kind removed is named, once: a player and a script both
    both = embed.replace("&lt;/iframe&gt;", "&lt;/iframe&gt;&lt;script&gt;x()&lt;/script&gt;" * 2)
    notes = parse_feed(_entry_feed(both), "old.xml")[1].notes
    assert [note.split(">")[0] for note in notes] == ["<iframe", "<script"]
    (plain,) = parse_feed(RSS, "old.rss")
    assert plain.notes == ()


# Every entry that cannot be a post is named, not only the first: one import lists
# them all (as it does for Markdown files), and the good entries are read.
def test_every_bad_entry_is_named() -> None:
    from publisher.content.feedimport import read_feed

    item = (
        "<item><title>{title}</title><link>https://old.example.org/p/{n}.html</link>"
        "<guid>old-{n}</guid>{date}</item>"
    )
    dated = "<pubDate>Mon, 11 Feb 2019 10:00:00 +0100</pubDate>"
    items = [
        item.format(title="Good", n=1, date=dated),
        item.format(title="", n=2, date=dated),
        item.format(title="Undated", n=3, date=""),
        item.format(title="", n=4, date=dated),
    ]
    rss = RSS.replace(RSS[RSS.index(b"<item>") : RSS.index(b"</channel>")], "".join(items).encode())
    drafts, problems = read_feed(rss, "old.xml")
    assert [d.title for d in drafts] == ["Good"]
    assert [str(p).split(":")[0] for p in problems] == [
        "old.xml#entry-2",
        "old.xml#entry-3",
        "old.xml#entry-4",
    ]


def _feed_of(*entries: tuple[str, str, str, str]) -> bytes:
    """An Atom feed of (id, title, link, updated) entries."""
    body = "".join(
        f'<entry><id>{uid}</id><title>{title}</title><link href="{link}"/>'
        f'<updated>{updated}</updated><content type="html">x</content></entry>'
        for uid, title, link, updated in entries
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Old</title><id>urn:old</id>
<updated>2020-01-01T00:00:00Z</updated>{body}</feed>""".encode()


def test_a_page_named_index_takes_its_folders_name() -> None:
    site, day = "https://old.example.org", "2019-01-01T00:00:00Z"
    feed = _feed_of(
        ("urn:1", "One", f"{site}/news/first-post/index.html", day),
        ("urn:2", "Two", f"{site}/news/second-post/default.htm", day),
        ("urn:3", "Three", f"{site}/index.html", day),
    )
    assert [d.slug for d in parse_feed(feed, "old.xml")] == ["first-post", "second-post", "three"]


# No two entries of one feed share a slug (a feed cannot be edited to rename
# one): the oldest keeps it, a later one gets its date, a later one the same
# day a part of its id's hash; the same feed, in any order, gives the same slugs.
def test_entries_that_would_share_a_slug_each_get_their_own() -> None:
    site, title = "https://old.example.org", "Weekly update"
    entries = [
        ("urn:b", title, f"{site}/?p=2", "2019-02-01T00:00:00Z"),
        ("urn:a", title, f"{site}/?p=1", "2019-01-01T00:00:00Z"),
        ("urn:c", title, f"{site}/?p=3", "2019-02-01T09:00:00Z"),
        ("urn:e", title, f"{site}/?p=5", "2019-03-01T00:00:00Z"),
        ("urn:d", "Other", f"{site}/weekly-update-2019-02-01", "2018-01-01T00:00:00Z"),
    ]
    slugs = {d.uid: d.slug for d in parse_feed(_feed_of(*entries), "old.xml")}
    assert slugs["urn:a"] == "weekly-update"
    assert slugs["urn:e"] == "weekly-update-2019-03-01"
    assert slugs["urn:d"] == "weekly-update-2019-02-01"  # the link's own slug stays
    for uid in ("urn:b", "urn:c"):  # that one's taken: the date and a hash
        assert re.fullmatch(r"weekly-update-2019-02-01-[0-9a-f]{8}", slugs[uid])
    assert len(set(slugs.values())) == len(entries)
    reversed_slugs = {d.uid: d.slug for d in parse_feed(_feed_of(*entries[::-1]), "old.xml")}
    assert reversed_slugs == slugs
