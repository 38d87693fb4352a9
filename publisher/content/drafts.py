"""Values an import produces before anything touches the database."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from .slugs import slugify
from .values import PostStatus, SourceFormat


@dataclass(frozen=True)
class AuthorDraft:
    name: str
    role: str | None = None
    organisation: str | None = None
    bio: str | None = None
    email: str | None = None

    @property
    def slug(self) -> str:
        """The slug wanted (the importer adds a suffix when another author has it)."""
        return slugify(self.name) or "author"


@dataclass(frozen=True)
class AttachmentDraft:
    url: str
    media_type: str
    title: str | None = None
    length: int | None = None


@dataclass(frozen=True)
class PostDraft:
    """One post as read from a file or a feed entry, validated and rendered."""

    #: where it came from, for messages: a file path or ``feed-url#entry-id``
    source: str
    slug: str
    title: str
    body_source: str
    body_html: str
    source_hash: str
    source_format: SourceFormat = SourceFormat.MARKDOWN
    #: the permanent id, when the source states one (else assigned at creation)
    uid: str | None = None
    summary: str | None = None
    status: PostStatus = PostStatus.DRAFT
    published_at: datetime | None = None
    #: stated explicitly by the source; None means "derive from the edit history"
    updated_at: datetime | None = None
    author: AuthorDraft | None = None
    tags: tuple[str, ...] = ()
    attachments: tuple[AttachmentDraft, ...] = ()
    image_url: str | None = None
    image_alt: str | None = None
    canonical_url: str | None = None
    #: what the import should tell the editor about this post (it is written anyway)
    notes: tuple[str, ...] = ()
    #: someone can change the slug (a post file's name or ``slug:``); a feed entry's is
    #: made from its link or title, and an import may change it to keep it unique
    slug_chosen: bool = True

    def __reduce__(self) -> tuple[Any, ...]:
        # A large import sends every draft from a parse worker to the main process:
        # pickled as a dataclass (its dict) ~27 µs, as the tuple of its fields ~17, as
        # plain values (enums by value, the author and attachments as tuples) ~9
        values = list(map(self.__getattribute__, _POST_FIELDS))
        values[_FORMAT] = self.source_format.value
        values[_STATUS] = self.status.value
        author = self.author
        values[_AUTHOR] = None if author is None else _author_values(author)
        values[_ATTACHMENTS] = tuple(map(_attachment_values, self.attachments))
        return (_unpickle_post, tuple(values))


#: PostDraft's fields in the order its constructor takes them
_POST_FIELDS = tuple(field.name for field in fields(PostDraft))
_FORMAT, _STATUS, _AUTHOR, _ATTACHMENTS = map(
    _POST_FIELDS.index, ("source_format", "status", "author", "attachments")
)
_FORMATS = {item.value: item for item in SourceFormat}
_STATUSES = {item.value: item for item in PostStatus}


def _author_values(author: AuthorDraft) -> tuple[Any, ...]:
    return (author.name, author.role, author.organisation, author.bio, author.email)


def _attachment_values(attachment: AttachmentDraft) -> tuple[Any, ...]:
    return (attachment.url, attachment.media_type, attachment.title, attachment.length)


def _unpickle_post(*values: Any) -> PostDraft:
    """A :class:`PostDraft` from what its ``__reduce__`` gave."""
    fields = list(values)
    fields[_FORMAT] = _FORMATS[fields[_FORMAT]]
    fields[_STATUS] = _STATUSES[fields[_STATUS]]
    author = fields[_AUTHOR]
    fields[_AUTHOR] = None if author is None else AuthorDraft(*author)
    fields[_ATTACHMENTS] = tuple(AttachmentDraft(*item) for item in fields[_ATTACHMENTS])
    return PostDraft(*fields)
