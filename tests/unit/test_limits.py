"""The limits a draft is checked against are the store's column sizes."""

from __future__ import annotations

from typing import Any

from publisher.content import limits
from publisher.models import Attachment, Author, Post, Tag


def length(column: Any) -> int:
    return int(column.property.columns[0].type.length)


# An import refuses exactly what a column cannot hold, so SQLite (which
# stores anything) and PostgreSQL (which raises) behave alike.
def test_limits_match_the_schema() -> None:
    assert limits.NAME_LENGTH == length(Author.name) == length(Tag.name)
    assert limits.NAME_LENGTH == length(Author.role) == length(Author.organisation)
    assert limits.NAME_LENGTH == length(Attachment.media_type)
    assert limits.SLUG_LENGTH == length(Post.slug) == length(Tag.slug) == length(Author.slug)
    assert limits.UID_LENGTH == length(Post.uid)
    assert limits.EMAIL_LENGTH == length(Author.email)
