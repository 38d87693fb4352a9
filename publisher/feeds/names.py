"""Authors and tags of a build, by id: small tables, loaded once per build (and per worker).

Plain values for the hot loops over every post (ORM attribute access is slow).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from .. import queries
from ..content.text import xml_safe
from ..models import Author, Tag
from .model import Category, Person
from .plan import Stub


@dataclass(frozen=True)
class Names:
    """Authors and tags by id, and the plain values entries are made of."""

    authors: dict[int, Author]
    tags: dict[int, Tag]
    #: plain values for the hot loops over every post (ORM attribute access is slow)
    author_slugs: dict[int, str]
    tag_slugs: dict[str, str]
    persons: dict[int, Person]
    categories_by_slug: dict[str, Category]

    @classmethod
    def load(cls, session: Session) -> Names:
        tags = queries.all_tags(session)
        authors = queries.all_authors(session)
        return cls(
            {a.id: a for a in authors},
            {t.id: t for t in tags},
            {a.id: folder_name(a.slug) for a in authors},
            {str(t.id): folder_name(t.slug) for t in tags},
            # names are checked when imported; a row from another tool is cleaned here
            {a.id: Person(xml_safe(a.name)) for a in authors},
            {folder_name(t.slug): Category(t.slug, xml_safe(t.name)) for t in tags},
        )

    def stubs(self, rows: Iterable[Any], tag_ids: dict[int, str]) -> list[Stub]:
        """Planning facts per post; a post's tags are part of its version."""
        author_slugs, tag_slugs = self.author_slugs, self.tag_slugs
        stubs = []
        for post_id, author_id, version in rows:
            tags = tag_ids.get(post_id, "")
            stubs.append(
                Stub(
                    post_id,
                    f"{version}|{tags}",
                    author_slugs[author_id] if author_id else None,
                    tuple(map(tag_slugs.__getitem__, tags.split(","))) if tags else (),
                )
            )
        return stubs

    def person(self, author_id: int | None) -> Person | None:
        return self.persons.get(author_id) if author_id is not None else None

    def categories(self, tag_slugs: tuple[str, ...]) -> tuple[Category, ...]:
        found = (self.categories_by_slug[s] for s in tag_slugs)
        return tuple(sorted(found, key=lambda c: c.name))


_FOLDER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,199}$")


def folder_name(slug: str) -> str:
    """A tag's or author's slug as the name of its feed folder.

    Slugs the importer makes are used as they are; any other (a row written
    by another tool: ``../x``, empty, a slash) becomes a hash of it, so no
    feed is ever written outside its folder.
    """
    if _FOLDER.match(slug):
        return slug
    return "x-" + hashlib.sha256(slug.encode()).hexdigest()[:16]
