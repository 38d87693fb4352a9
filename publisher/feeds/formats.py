"""The feed model (:mod:`model`) serialised as Atom 1.0, RSS 2.0 and JSON Feed 1.1.

Pure: values in, bytes out. An entry is serialised once per format
(:func:`serialise_entry`), into the exact bytes it has inside a document;
a document is then its head, written by feedgen with no entries, with the
parts of its entries spliced in where feedgen would have put them. So an
entry listed by five documents (its archive page, three tag feeds, its
author's feed) is written once, not five times, and the bytes are the
same as feedgen writing each whole document (tests/unit/test_feeds.py
checks this).

Atom and RSS are written by feedgen 1.0, wrapped so that its known traps
cannot reach a reader:

- In Atom, feedgen drops ``rel``, ``type`` and ``length`` from entry links
  (feedgen issue #135), so an enclosure would become a second alternate
  link. We give feedgen only the alternate link and write enclosures
  ourselves, through an entry extension.
- The RSS channel ``<link>`` is the href of the *last* ``link()`` call
  (feedgen issue #122). We call it for the self link first and the site last,
  and write hub and archive links ourselves, in both formats.
- ``updated``/``lastBuildDate`` default to now: we always set them, from the
  entries, so the same entries give the same bytes.
- ``add_entry`` prepends by default: we always append.
- feedgen writes RSS dates (``util.formatRFC2822``) by switching the whole
  process's locale to C and back, twice per date: not thread-safe, and a
  tenth of an RSS document's cost. :func:`rfc2822` writes the same text
  (``email.utils.format_datetime``); it replaces feedgen's where feedgen calls it.
- Characters XML 1.0 forbids (NUL, form feed, lone surrogates) raise only at
  serialisation: :func:`content.text.xml_safe` removes them when an entry is made
  (and, before that, when a post is imported).

JSON Feed is plain ``json``. Specs: https://www.rfc-editor.org/rfc/rfc4287
(Atom), https://www.rssboard.org/rss-specification (RSS),
https://www.jsonfeed.org/version/1.1/ (JSON Feed),
https://www.rfc-editor.org/rfc/rfc5005 (archived feeds).
"""

from __future__ import annotations

import json
from datetime import datetime
from email.utils import format_datetime
from typing import Any

import feedgen.entry
import feedgen.feed
from feedgen.entry import FeedEntry as FeedgenEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from .. import __version__
from ..errors import ContentError
from .model import Document, Entry, EntryParts, rfc3339

ATOM_NS = "http://www.w3.org/2005/Atom"
FH_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
MEDIA_NS = "http://search.yahoo.com/mrss/"
DC_NS = "http://purl.org/dc/elements/1.1/"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
GENERATOR = ("publisher", __version__, "https://pypi.org/project/publisher/")
#: the namespaces feedgen declares on a document's root element (our extension's,
#: then for RSS its own): an entry serialised under the same root gets the same prefixes
_ATOM_NSMAP = {"fh": FH_NS, "media": MEDIA_NS, "dc": DC_NS}
_RSS_NSMAP = {**_ATOM_NSMAP, "atom": ATOM_NS, "content": CONTENT_NS}


def rfc2822(when: datetime) -> str:
    """``Thu, 05 Dec 2019 10:00:00 +0000``: feedgen's C-locale
    ``%a, %d %b %Y %H:%M:%S %z``, without touching the process's locale."""
    return format_datetime(when)


feedgen.entry.formatRFC2822 = feedgen.feed.formatRFC2822 = rfc2822


class _EntryExtension(BaseEntryExtension):  # type: ignore[misc]
    """Writes what feedgen would get wrong for one entry."""

    entry: Entry

    def extend_atom(self, element: Any) -> Any:
        for link in element.findall("link"):
            link.set("rel", "alternate")
            link.set("type", "text/html")
        for enclosure in self.entry.enclosures:
            link = etree.SubElement(element, "link", rel="enclosure", href=enclosure.url)
            link.set("type", enclosure.media_type)
            if enclosure.length:
                link.set("length", str(enclosure.length))
            if enclosure.title:
                link.set("title", enclosure.title)
        self._thumbnail(element)
        return element

    def extend_rss(self, element: Any) -> Any:
        if self.entry.author is not None:
            etree.SubElement(element, f"{{{DC_NS}}}creator").text = self.entry.author.name
        if self.entry.enclosures:
            # RSS allows one enclosure per item (RSS profile); the rest stay in the body
            first = self.entry.enclosures[0]
            etree.SubElement(
                element,
                "enclosure",
                url=first.url,
                length=str(first.length or 0),
                type=first.media_type,
            )
        self._thumbnail(element)
        return element

    def _thumbnail(self, element: Any) -> None:
        if self.entry.image:
            etree.SubElement(element, f"{{{MEDIA_NS}}}thumbnail", url=self.entry.image)


class _FeedExtension(BaseExtension):  # type: ignore[misc]
    """Feed-level links feedgen cannot write right: hub, archive, fh:archive."""

    document: Document
    kind: str

    def extend_ns(self) -> dict[str, str]:
        return {"fh": FH_NS, "media": MEDIA_NS, "dc": DC_NS}

    def _extra(self, parent: Any, link_tag: str) -> None:
        # Atom (RFC 4287 §4.1.1) wants feed metadata before the first entry.
        entries = [i for i, child in enumerate(parent) if child.tag in ("entry", "item")]
        position = entries[0] if entries else len(parent)
        links = self.document.links[self.kind]
        extra: list[Any] = []
        for rel, href in (
            ("hub", self.document.meta.hub),
            ("current", links.current),
            ("prev-archive", links.prev_archive),
            ("next-archive", links.next_archive),
        ):
            if href:
                element = etree.Element(link_tag, rel=rel, href=href)
                extra.append(element)
        if self.document.is_archive:
            extra.append(etree.Element(f"{{{FH_NS}}}archive"))
        for offset, element in enumerate(extra):
            parent.insert(position + offset, element)

    def extend_atom(self, feed: Any) -> Any:
        self._extra(feed, "link")
        return feed

    def extend_rss(self, rss: Any) -> Any:
        self._extra(rss[0], f"{{{ATOM_NS}}}link")
        return rss


def _feedgen_entry(entry: Entry) -> FeedgenEntry:
    fe = FeedgenEntry()
    fe.register_extension("publisher", _EntryExtension, atom=True, rss=True)
    fe.publisher.entry = entry
    fe.id(entry.id)
    fe.guid(entry.id, permalink=False)
    fe.title(entry.title)
    fe.link(href=entry.link, rel="alternate")
    fe.published(entry.published)
    fe.updated(entry.updated)
    if entry.author is not None:
        person = {"name": entry.author.name}
        if entry.author.email:
            person["email"] = entry.author.email
        if entry.author.uri:
            person["uri"] = entry.author.uri
        fe.author(person)
    if entry.categories:
        # feedgen writes Atom's term from "term" and RSS's text from "label"
        fe.category([{"term": c.name, "label": c.name} for c in entry.categories])
    if entry.summary:
        fe.summary(entry.summary)
    if entry.content_html:
        fe.content(entry.content_html, type="html")
    return fe


def serialise_entry(entry: Entry) -> EntryParts:
    """``entry`` in every format, once: feedgen builds the elements, lxml writes them.

    Each element is written under a root like the document's (same namespace
    declarations, same depth), and cut out of it, so its bytes are the ones
    it has inside any document.

    :raises ContentError: when feedgen refuses the entry (a required field is empty).
    """
    fe = _feedgen_entry(entry)
    try:
        atom_entry, rss_item = fe.atom_entry(), fe.rss_entry()
    except ValueError as e:  # feedgen's bare "Required fields not set"
        raise ContentError(entry.id, f"cannot be written as a feed entry: {e}") from e
    feed = etree.Element("feed", xmlns=ATOM_NS, nsmap=_ATOM_NSMAP)
    feed.append(atom_entry)
    atom = etree.tostring(feed, pretty_print=True, encoding="UTF-8", xml_declaration=False)
    rss = etree.Element("rss", version="2.0", nsmap=_RSS_NSMAP)
    etree.SubElement(rss, "channel").append(rss_item)
    channel = etree.tostring(rss, pretty_print=True, encoding="UTF-8", xml_declaration=False)
    item = json.dumps(_json_item(entry), ensure_ascii=False, separators=(",", ":"))
    return EntryParts(
        # after the root's start tag (one line), before its end tag
        atom=atom[atom.index(b"\n") + 1 : atom.rindex(b"</feed>")],
        rss=channel[channel.index(b"<item>") - 4 : channel.rindex(b"  </channel>")],
        json=item.encode(),
        updated=entry.updated,
    )


def _json_item(entry: Entry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": entry.id,
        "url": entry.link,
        "title": entry.title,
        "date_published": rfc3339(entry.published),
        "date_modified": rfc3339(entry.updated),
    }
    if entry.content_html:
        item["content_html"] = entry.content_html
    else:
        item["content_text"] = entry.summary or entry.title
    if entry.summary:
        item["summary"] = entry.summary
    if entry.image:
        item["image"] = entry.image
    if entry.author is not None:
        author: dict[str, str] = {"name": entry.author.name}
        if entry.author.uri:
            author["url"] = entry.author.uri
        item["authors"] = [author]
    if entry.categories:
        item["tags"] = [c.name for c in entry.categories]
    if entry.enclosures:
        item["attachments"] = [
            {
                "url": e.url,
                "mime_type": e.media_type,
                **({"title": e.title} if e.title else {}),
                **({"size_in_bytes": e.length} if e.length else {}),
            }
            for e in entry.enclosures
        ]
    return item


def _generator(document: Document, kind: str) -> FeedGenerator:
    meta = document.meta
    fg = FeedGenerator()
    fg.register_extension("publisher", _FeedExtension, None, atom=True, rss=True)
    fg.publisher.document = document
    fg.publisher.kind = kind
    fg.id(meta.id)
    fg.title(meta.title)
    fg.subtitle(meta.subtitle or meta.title)
    # RFC 4287 §4.1.1: a feed whose entries may lack an author needs one of its own
    fg.author({"name": meta.author or meta.title})
    # self first, the site last: RSS takes the channel <link> from the last call (#122)
    self_type = "application/atom+xml" if kind == "atom" else "application/rss+xml"
    fg.link(href=document.links[kind].self, rel="self", type=self_type)
    fg.link(href=meta.home, rel="alternate", type="text/html")
    if meta.language:
        fg.language(meta.language)
    if meta.icon:
        fg.icon(meta.icon)
    if meta.logo:
        fg.logo(meta.logo)
    if meta.rights:
        fg.rights(meta.rights)
    fg.generator(*GENERATOR)
    fg.updated(document.updated)
    fg.lastBuildDate(document.updated)
    return fg


def render_atom(document: Document) -> bytes:
    """The document as Atom 1.0 (RFC 4287): feedgen's head, then the entries' parts."""
    try:
        head: bytes = _generator(document, "atom").atom_str(pretty=True, encoding="UTF-8")
    except ValueError as e:  # feedgen's bare "Required fields not set"
        raise ContentError(document.meta.id, f"cannot be written as Atom: {e}") from e
    end = head.rindex(b"</feed>")
    return b"".join([head[:end], *(parts.atom for parts in document.entries), head[end:]])


def render_rss(document: Document) -> bytes:
    """The document as RSS 2.0: feedgen's channel, then the entries' items."""
    try:
        head: bytes = _generator(document, "rss").rss_str(pretty=True, encoding="UTF-8")
    except ValueError as e:
        raise ContentError(document.meta.id, f"cannot be written as RSS: {e}") from e
    end = head.rindex(b"  </channel>")
    return b"".join([head[:end], *(parts.rss for parts in document.entries), head[end:]])


def render_json(document: Document) -> bytes:
    """The document as JSON Feed 1.1; ``next_url`` walks the archive backwards."""
    meta = document.meta
    links = document.links["json"]
    feed: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": meta.title,
        "home_page_url": meta.home,
        "feed_url": links.self,
    }
    if meta.subtitle:
        feed["description"] = meta.subtitle
    if links.prev_archive:
        feed["next_url"] = links.prev_archive
    if meta.icon:
        feed["icon"] = meta.icon
    if meta.language:
        feed["language"] = meta.language
    if meta.hub:
        feed["hubs"] = [{"type": "WebSub", "url": meta.hub}]
    # items were encoded once per entry (serialise_entry); splice them in, one per line
    head = json.dumps(feed, ensure_ascii=False, indent=1)[:-2]
    items = b",\n".join(parts.json for parts in document.entries)
    return f'{head},\n "items": [\n'.encode() + items + b"\n ]\n}\n"


RENDERERS = {"atom": render_atom, "rss": render_rss, "json": render_json}
