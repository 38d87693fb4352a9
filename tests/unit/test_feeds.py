"""The feed writers, and each feedgen trap they must keep from readers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from lxml import etree

from publisher.content.text import xml_safe
from publisher.feeds import formats
from publisher.feeds.formats import render_atom, render_json, render_rss, serialise_entry
from publisher.feeds.model import (
    Category,
    Document,
    Enclosure,
    Entry,
    FeedMeta,
    Links,
    Person,
)
from tests.feedcheck import ATOM_NS, check_atom, check_json, check_rss, parse_ok

HOME = "https://example.org/"
T0 = datetime(2019, 12, 5, 10, 0, tzinfo=UTC)


def entry(n: int, **changes: object) -> Entry:
    values: dict[str, object] = {
        "id": f"tag:example.org,2019:{n}",
        "title": f"Post {n}",
        "link": f"{HOME}news/{n}/",
        "published": T0 + timedelta(hours=n),
        "updated": T0 + timedelta(hours=n),
        "author": Person("Thomas Howie"),
        "categories": (Category("civic-space", "Civic Space"),),
        "content_html": f"<p>Body {n}</p>",
    }
    values.update(changes)
    return Entry(**values)  # type: ignore[arg-type]


def document(*entries: Entry, hub: str | None = None, archive: bool = False) -> Document:
    links = {
        kind: Links(
            self=f"{HOME}feeds/{name}",
            prev_archive=f"{HOME}feeds/archive/{kind}-1" if archive else None,
            next_archive=f"{HOME}feeds/archive/{kind}-3" if archive else None,
            current=f"{HOME}feeds/{name}" if archive else None,
        )
        for kind, name in (("atom", "atom.xml"), ("rss", "rss.xml"), ("json", "feed.json"))
    }
    meta = FeedMeta(id=f"{HOME}feeds/atom.xml", title="Site", home=HOME, hub=hub, language="en")
    return Document(meta, [serialise_entry(e) for e in entries], archive, links)


TWO_FILES = (
    Enclosure("https://example.org/a.pdf", "application/pdf", 1234, "A"),
    Enclosure("https://example.org/b.mp3", "audio/mpeg", None, "B"),
)


def test_atom_enclosures_keep_rel_type_and_length() -> None:
    """feedgen #135: entry links lose rel/type/length, so an enclosure became an alternate."""
    data = render_atom(document(entry(1, enclosures=TWO_FILES)))
    check_atom(data, f"{HOME}feeds/atom.xml", HOME)
    links = etree.fromstring(data).findall(f"{ATOM_NS}entry/{ATOM_NS}link")
    assert [(x.get("rel"), x.get("type"), x.get("length")) for x in links] == [
        ("alternate", "text/html", None),
        ("enclosure", "application/pdf", "1234"),
        ("enclosure", "audio/mpeg", None),
    ]


def test_rss_has_one_enclosure_and_the_site_as_channel_link_even_with_a_hub() -> None:
    """feedgen #122: the channel link was the last link() call (self or hub)."""
    hub = "https://hub.example.net/"
    data = render_rss(document(entry(1, enclosures=TWO_FILES), hub=hub))
    check_rss(data, f"{HOME}feeds/rss.xml", HOME)
    channel = etree.fromstring(data).find("channel")
    assert channel is not None
    assert [x.get("href") for x in channel.findall(f"{ATOM_NS}link[@rel='hub']")] == [hub]
    (enclosure,) = channel.findall("item/enclosure")
    assert enclosure.attrib == {
        "url": "https://example.org/a.pdf",
        "length": "1234",
        "type": "application/pdf",
    }


def test_hub_link_in_every_format() -> None:
    hub = "https://hub.example.net/"
    atom = etree.fromstring(render_atom(document(entry(1), hub=hub)))
    assert atom.find(f"{ATOM_NS}link[@rel='hub']").get("href") == hub  # type: ignore[union-attr]
    assert json.loads(render_json(document(entry(1), hub=hub)))["hubs"] == [
        {"type": "WebSub", "url": hub}
    ]


def test_output_does_not_depend_on_the_clock_and_keeps_order() -> None:
    """updated/lastBuildDate defaulted to now; add_entry prepended."""
    doc = document(entry(3), entry(2), entry(1))
    for render in (render_atom, render_rss, render_json):
        assert render(doc) == render(document(entry(3), entry(2), entry(1)))
    parsed = parse_ok(render_atom(doc))
    assert [e.title for e in parsed.entries] == ["Post 3", "Post 2", "Post 1"]
    assert parsed.feed.updated == "2019-12-05T13:00:00+00:00"


def test_archive_documents_are_marked_and_linked() -> None:
    doc = document(entry(1), archive=True)
    atom = etree.fromstring(render_atom(doc))
    assert atom.find("{http://purl.org/syndication/history/1.0}archive") is not None
    rels = {x.get("rel"): x.get("href") for x in atom.findall(f"{ATOM_NS}link")}
    assert rels["prev-archive"] == f"{HOME}feeds/archive/atom-1"
    assert rels["next-archive"] == f"{HOME}feeds/archive/atom-3"
    assert rels["current"] == f"{HOME}feeds/atom.xml"
    rss = etree.fromstring(render_rss(doc))
    rss_rels = {x.get("rel"): x.get("href") for x in rss.iter(f"{ATOM_NS}link")}
    assert rss_rels["next-archive"] == f"{HOME}feeds/archive/rss-3"
    check_atom(render_atom(doc), f"{HOME}feeds/atom.xml", HOME)
    check_rss(render_rss(doc), f"{HOME}feeds/rss.xml", HOME)
    assert json.loads(render_json(doc))["next_url"] == f"{HOME}feeds/archive/json-1"


# Several readers show Atom's term, not its label: the term is the tag's name,
# so a reader sees "Civic Space" in every format, never the slug.
def test_categories_carry_the_tag_name_in_every_format() -> None:
    doc = document(entry(1))
    atom = etree.fromstring(render_atom(doc))
    (category,) = atom.iter(f"{ATOM_NS}category")
    assert category.get("term") == "Civic Space"
    assert "civic-space" not in render_atom(doc).decode()
    assert [c.text for c in etree.fromstring(render_rss(doc)).iter("category")] == ["Civic Space"]
    assert json.loads(render_json(doc))["items"][0]["tags"] == ["Civic Space"]


NASTY = "a\x00b\x0cc\ud800d\ufffee"


def test_forbidden_characters_are_removed_not_fatal() -> None:
    assert xml_safe(NASTY) == "abcde"
    bad = entry(1, title=xml_safe(NASTY), content_html=xml_safe(f"<p>{NASTY}</p>"))
    doc = document(bad)
    check_atom(render_atom(doc), f"{HOME}feeds/atom.xml", HOME)
    check_rss(render_rss(doc), f"{HOME}feeds/rss.xml", HOME)
    assert check_json(render_json(doc))["items"][0]["title"] == "abcde"


def test_summary_only_entries() -> None:
    doc = document(entry(1, content_html=None, summary="Short & sweet"))
    parsed = parse_ok(render_atom(doc))
    assert parsed.entries[0].summary == "Short & sweet"
    assert "content" not in parsed.entries[0]
    assert check_json(render_json(doc))["items"][0]["content_text"] == "Short & sweet"


def whole_document(doc: Document, entries: list[Entry], kind: str) -> bytes:
    """The document as feedgen writes it in one piece, every entry added to it."""
    fg = formats._generator(doc, kind)
    for e in entries:
        fg.add_entry(formats._feedgen_entry(e), order="append")
    written: bytes = (fg.atom_str if kind == "atom" else fg.rss_str)(pretty=True, encoding="UTF-8")
    return written


# Each entry is serialised once and spliced into every document that lists it:
# the bytes must be exactly those feedgen writes for the whole document.
@pytest.mark.parametrize("archive", [False, True])
def test_documents_assembled_from_parts_equal_feedgen_writing_them_whole(archive: bool) -> None:
    entries = [
        entry(1, enclosures=TWO_FILES, image=f"{HOME}cover.jpg"),
        entry(2, title="Zoë’s <report> & “quotes”", author=Person("Zoë", "z@example.org", HOME)),
        entry(3, content_html=None, summary="Only a summary", author=None, categories=()),
        entry(4, content_html="<p>Ünïcödé ☃ and a <a href='https://x.org/'>link</a></p>"),
    ]
    doc = document(*entries, hub="https://hub.example.net/", archive=archive)
    assert render_atom(doc) == whole_document(doc, entries, "atom")
    assert render_rss(doc) == whole_document(doc, entries, "rss")
    empty = document(archive=archive)
    assert render_atom(empty) == whole_document(empty, [], "atom")
    assert render_rss(empty) == whole_document(empty, [], "rss")


# RSS dates are written without switching the process's locale, and read the same.
@pytest.mark.parametrize("hours", [0, 1, -5, 5.5, 13])
def test_rss_dates_are_what_feedgen_wrote(hours: float) -> None:
    from feedgen.util import formatRFC2822

    zone = timezone(timedelta(hours=hours))
    for day in range(0, 400, 7):
        when = datetime(2019, 1, 1, 9, 5, 7, tzinfo=zone) + timedelta(days=day, minutes=day)
        assert formats.rfc2822(when) == formatRFC2822(when)
