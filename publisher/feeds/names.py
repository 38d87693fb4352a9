"""Authors and tags of a build, by id: small tables, loaded once per build (and per worker).

Plain values for the hot loops over every post (ORM attribute access is slow).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from .. import queries
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
            {a.id: a.slug for a in authors},
            {str(t.id): t.slug for t in tags},
            {a.id: Person(a.name) for a in authors},
            {t.slug: Category(t.slug, t.name) for t in tags},
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
