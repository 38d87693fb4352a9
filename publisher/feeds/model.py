"""Feed documents as plain values: entries, feed metadata, links, documents.

Pure, and free of any serialiser, so planning a build (which documents exist,
which changed) loads no XML library. :mod:`formats` writes these values as
Atom 1.0, RSS 2.0 and JSON Feed 1.1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..content.values import Enclosure

__all__ = [
    "Category",
    "Document",
    "Enclosure",
    "Entry",
    "EntryParts",
    "FeedMeta",
    "Links",
    "Person",
    "rfc3339",
]


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
class EntryParts:
    """One entry serialised once in every format, spliced into each document that lists it.

    The parts are the exact bytes the entry has inside a document (indented
    as the document indents it), so assembling a document is concatenation.
    """

    #: the ``<entry>`` element of an Atom document
    atom: bytes
    #: the ``<item>`` element of an RSS channel
    rss: bytes
    #: the JSON Feed item, on one line
    json: bytes
    updated: datetime


@dataclass(frozen=True)
class Document:
    """A feed document: a subscription feed, or one page of its archive."""

    meta: FeedMeta
    entries: Sequence[EntryParts]
    is_archive: bool = False
    links: dict[str, Links] = field(default_factory=dict)

    @property
    def updated(self) -> datetime:
        """Derived from the entries, never "now", so rebuilding changes nothing."""
        if not self.entries:
            return datetime(1970, 1, 1, tzinfo=UTC)
        return max(e.updated for e in self.entries)
