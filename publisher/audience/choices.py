"""What a subscriber receives: newsletters, and the topics followed in each.

A *newsletter* is a digest of config.yaml, by its ``name``; a *topic* is a
tag. :class:`Choice` is the value that crosses modules (the web form, the
CSV import, the store); :class:`Catalogue` checks choices against the
config and the tags once, so every way in refuses the same mistakes with
the same words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from .. import queries
from ..config import Settings
from ..errors import NotFound
from ..models import Subscriber, Subscription, Tag


@dataclass(frozen=True)
class Choice:
    """One newsletter, and the tags followed in it: slugs; empty means every topic."""

    newsletter: str
    topics: tuple[str, ...] = ()


def newsletter_names(settings: Settings) -> list[str]:
    """The newsletters a subscriber may choose: the digests of config.yaml."""
    return [d.name for d in settings.digests]


def display_name(newsletter: str) -> str:
    """A newsletter as pages and emails name it to readers: ``weekly`` is "Weekly"
    (the forms' labels, Jinja2's ``capitalize``)."""
    return newsletter.capitalize()


@dataclass(frozen=True)
class TagRef:
    """A tag as plain values (for writers that use no ORM objects)."""

    id: int
    slug: str
    name: str


#: a catalogue holds ORM tags (for code that puts them on subscriptions) or plain ones
T = TypeVar("T", Tag, TagRef)


class Catalogue(Generic[T]):
    """The newsletters and tags there are, to check choices against (read once)."""

    def __init__(self, newsletters: Sequence[str], tags: Sequence[T]) -> None:
        self.newsletters = list(newsletters)
        self.tags: dict[str, T] = {t.slug: t for t in tags}
        self._by_name: dict[str, T] = {t.name.lower(): t for t in tags}

    @staticmethod
    def load(session: Session, settings: Settings) -> Catalogue[Tag]:
        """With ORM tags, for code that puts them on subscriptions."""
        return Catalogue(newsletter_names(settings), queries.all_tags(session))

    @staticmethod
    def read(session: Session, settings: Settings) -> Catalogue[TagRef]:
        """With plain tags (one query of three columns, no ORM objects)."""
        tags = [TagRef(*row) for row in queries.tag_values(session)]
        return Catalogue(newsletter_names(settings), tags)

    def newsletter(self, name: str) -> str:
        """``name`` as configured. :raises NotFound: naming the newsletters there are."""
        wanted = name.strip().lower()
        if wanted in self.newsletters:
            return wanted
        known = ", ".join(self.newsletters) or "none (config.yaml has no digests)"
        raise NotFound(f"no newsletter {name.strip()!r}; the newsletters are: {known}")

    def tag(self, text: str) -> T:
        """The tag a slug or a name stands for. :raises NotFound: naming the tags there are."""
        tag = self.tags.get(text.strip()) or self._by_name.get(text.strip().lower())
        if tag is None:
            known = ", ".join(sorted(t.name for t in self.tags.values())) or "none yet"
            raise NotFound(f"no topic {text.strip()!r}; the topics (tags) are: {known}")
        return tag

    def resolve(self, choices: Iterable[Choice]) -> dict[str, list[T]]:
        """Newsletter → tags, checked; a newsletter chosen twice keeps the last topics."""
        resolved: dict[str, list[T]] = {}
        for choice in choices:
            tags = {t.id: t for t in (self.tag(topic) for topic in choice.topics)}
            resolved[self.newsletter(choice.newsletter)] = sorted(
                tags.values(), key=lambda t: t.name
            )
        return resolved

    def everything(self, topics: Iterable[str] = ()) -> list[Choice]:
        """Every newsletter, each with the same ``topics``."""
        slugs = tuple(self.tag(t).slug for t in topics)
        return [Choice(name, slugs) for name in self.newsletters]


def as_json(resolved: Mapping[str, Sequence[T]]) -> dict[str, list[str]]:
    """Resolved choices as a consent record keeps them: newsletter → tag slugs."""
    return {name: [t.slug for t in tags] for name, tags in sorted(resolved.items())}


def choices_of(subscriber: Subscriber) -> tuple[Choice, ...]:
    """The newsletters a subscriber receives now (left ones excluded), with their topics."""
    return tuple(
        Choice(s.newsletter, tuple(t.slug for t in s.topics))
        for s in subscriber.subscriptions
        if s.unsubscribed_at is None
    )


def apply_choices(
    subscriber: Subscriber, resolved: dict[str, list[Tag]], now: datetime, replace: bool
) -> None:
    """Put ``resolved`` on the subscriber's subscriptions.

    :param replace: leave every newsletter not in ``resolved`` (a preferences
        page); otherwise the others are kept as they are (adding newsletters).
    """
    rows = {s.newsletter: s for s in subscriber.subscriptions}
    for name, tags in resolved.items():
        row = rows.get(name)
        if row is None:
            row = Subscription(newsletter=name, created_at=now)
            subscriber.subscriptions.append(row)
        row.unsubscribed_at = None
        row.topics = list(tags)
    if replace:
        for name, row in rows.items():
            if name not in resolved and row.unsubscribed_at is None:
                row.unsubscribed_at = now
