"""How big a post may be: the store's column sizes and the limits that keep a build sane.

Pure. Every draft, from a file or a feed, is checked here before anything is
written, so an over-long name is refused the same way on SQLite (which would
store it) and on PostgreSQL (which would fail mid-transaction), and one post
cannot make a build write thousands of feeds. ``tests/unit/test_limits.py``
checks the column sizes against :mod:`publisher.models`.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import ContentError
from .drafts import PostDraft

#: ``String(n)`` columns of the store
NAME_LENGTH = 200  # authors.name/role/organisation, tags.name, attachments.media_type
SLUG_LENGTH = 200  # posts.slug, tags.slug, authors.slug
UID_LENGTH = 300  # posts.uid
EMAIL_LENGTH = 320  # authors.email (RFC 5321: 64 + 1 + 255)

#: each tag is a feed of its own (three files): a post needs a handful, not thousands
MAX_TAGS = 50
MAX_ATTACHMENTS = 20
#: a post file (or one feed entry's HTML); a book belongs in an attachment
MAX_POST_BYTES = 1_000_000
#: a feed document to migrate from
MAX_FEED_BYTES = 50_000_000
#: a title is a line in a feed reader and an email subject
MAX_TITLE = 1000


def check_draft(draft: PostDraft) -> Iterator[ContentError]:
    """Every limit ``draft`` exceeds, as errors naming its source and the field."""

    def too_long(field: str, value: str | None, limit: int) -> Iterator[ContentError]:
        if value is not None and len(value) > limit:
            yield ContentError(
                draft.source, f"is {len(value)} characters long; at most {limit} fit", field
            )

    yield from too_long("title", draft.title, MAX_TITLE)
    yield from too_long("id", draft.uid, UID_LENGTH)
    yield from too_long("slug", draft.slug, SLUG_LENGTH)
    if len(draft.body_source.encode("utf-8")) > MAX_POST_BYTES:
        yield ContentError(
            draft.source,
            f"is larger than {MAX_POST_BYTES // 1000} kB; put long documents in an attachment",
            "body",
        )
    if draft.author is not None:
        for name in ("name", "role", "organisation"):
            yield from too_long(f"author.{name}", getattr(draft.author, name), NAME_LENGTH)
        yield from too_long("author.email", draft.author.email, EMAIL_LENGTH)
    if len(draft.tags) > MAX_TAGS:
        yield ContentError(
            draft.source, f"has {len(draft.tags)} tags; a post may have at most {MAX_TAGS}", "tags"
        )
    for index, tag in enumerate(draft.tags):
        yield from too_long(f"tags.{index}", tag, NAME_LENGTH)
    if len(draft.attachments) > MAX_ATTACHMENTS:
        yield ContentError(
            draft.source,
            f"has {len(draft.attachments)} attachments; a post may have at most {MAX_ATTACHMENTS}",
            "attachments",
        )
    for index, attachment in enumerate(draft.attachments):
        yield from too_long(f"attachments.{index}.type", attachment.media_type, NAME_LENGTH)
