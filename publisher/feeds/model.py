"""Feed documents: our own model, serialised as Atom 1.0, RSS 2.0 and JSON Feed 1.1.

Pure: values in, bytes out. Atom and RSS are written by feedgen 1.0, wrapped
so that its known traps cannot reach a reader:

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
- Characters XML 1.0 forbids (NUL, form feed, lone surrogates) raise only at
  serialisation: :func:`markup.xml_safe` removes them when an entry is made
  (and, before that, when a post is imported).

JSON Feed is plain ``json``. Specs: https://www.rfc-editor.org/rfc/rfc4287
(Atom), https://www.rssboard.org/rss-specification (RSS),
https://www.jsonfeed.org/version/1.1/ (JSON Feed),
https://www.rfc-editor.org/rfc/rfc5005 (archived feeds).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from feedgen.entry import FeedEntry as FeedgenEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from .. import __version__
from ..content.values import Enclosure
from ..errors import ContentError

ATOM_NS = "http://www.w3.org/2005/Atom"
FH_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
MEDIA_NS = "http://search.yahoo.com/mrss/"
DC_NS = "http://purl.org/dc/elements/1.1/"
GENERATOR = ("publisher", __version__, "https://pypi.org/project/publisher/")


def rfc3339(when: datetime) -> str:
    """``2019-12-05T11:00:00Z``: UTC, no fractions (Atom §3.3, JSON Feed)."""
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Person:
    name: str
    email: str | None = None
    uri: str | None = None


@dataclass(frozen=True)
class Category:
    """A tag, as an entry's category.

    Atom's ``term`` is what several readers show, so it carries the tag's name
    ("Civic Space"), as RSS's ``<category>`` and JSON Feed's ``tags`` do; the
    slug stays out of the feeds (it is only the tag feed's folder).
    """

    slug: str
    name: str


@dataclass(frozen=True)
class Entry:
    """One post as every feed format sees it: absolute URLs, XML-safe text."""

    id: str
    title: str
    link: str
    published: datetime
    updated: datetime
    author: Person | None = None
    categories: tuple[Category, ...] = ()
    summary: str | None = None
    content_html: str | None = None
    enclosures: tuple[Enclosure, ...] = ()
    image: str | None = None


@dataclass(frozen=True)
class FeedMeta:
    """What a feed says about itself; one per feed (site, tag, author)."""

    id: str
    title: str
    home: str
    subtitle: str | None = None
    language: str | None = None
    icon: str | None = None
    logo: str | None = None
    rights: str | None = None
    hub: str | None = None
    #: the feed's own author (the organisation), for entries that name none
    author: str | None = None


@dataclass(frozen=True)
class Links:
    """The document's own URL and its RFC 5005 neighbours, for one format."""

    self: str
    #: for archive documents: the subscription document
    current: str | None = None
    #: the next older archive document
    prev_archive: str | None = None
    #: the next newer archive document (RFC 5005 §4: archive pages link both ways)
    next_archive: str | None = None


@dataclass(frozen=True)
class Document:
    """A feed document: a subscription feed, or one page of its archive."""

    meta: FeedMeta
    entries: Sequence[PreparedEntry]
    is_archive: bool = False
    links: dict[str, Links] = field(default_factory=dict)

    @property
    def updated(self) -> datetime:
        """Derived from the entries, never "now", so rebuilding changes nothing."""
        if not self.entries:
            return datetime(1970, 1, 1, tzinfo=UTC)
        return max(e.entry.updated for e in self.entries)


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


@dataclass
class PreparedEntry:
    """An entry made ready once and reused by every document that lists it."""

    entry: Entry
    feedgen: FeedgenEntry
    #: the JSON Feed item, encoded once
    json: str


def prepare_entry(entry: Entry) -> PreparedEntry:
    """Build the feedgen entry and the JSON item of ``entry``, once."""
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
    item = json.dumps(_json_item(entry), ensure_ascii=False, separators=(",", ":"))
    return PreparedEntry(entry=entry, feedgen=fe, json=item)


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
    for prepared in document.entries:
        fg.add_entry(prepared.feedgen, order="append")
    return fg


def render_atom(document: Document) -> bytes:
    """The document as Atom 1.0 (RFC 4287)."""
    try:
        result: bytes = _generator(document, "atom").atom_str(pretty=True, encoding="UTF-8")
    except ValueError as e:  # feedgen's bare "Required fields not set"
        raise ContentError(document.meta.id, f"cannot be written as Atom: {e}") from e
    return result


def render_rss(document: Document) -> bytes:
    """The document as RSS 2.0."""
    try:
        result: bytes = _generator(document, "rss").rss_str(pretty=True, encoding="UTF-8")
    except ValueError as e:
        raise ContentError(document.meta.id, f"cannot be written as RSS: {e}") from e
    return result


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
    # items were encoded once per entry (prepare_entry); splice them in, one per line
    head = json.dumps(feed, ensure_ascii=False, indent=1)[:-2]
    items = ",\n".join(prepared.json for prepared in document.entries)
    return f'{head},\n "items": [\n{items}\n ]\n}}\n'.encode()


RENDERERS = {"atom": render_atom, "rss": render_rss, "json": render_json}
