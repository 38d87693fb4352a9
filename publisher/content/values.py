"""Values every family shares about a post: its states and its downloads.

Pure and dependency-free, so the parsers, the store, the feeds and the mail
can all speak of a post without importing one another.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class PostStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PUBLISHED = "published"


class SourceFormat(enum.StrEnum):
    MARKDOWN = "markdown"
    HTML = "html"


@dataclass(frozen=True)
class Enclosure:
    """A file offered with a post (a PDF, a recording), with an absolute URL."""

    url: str
    media_type: str
    #: bytes; unknown lengths are written as 0 in RSS, as the RSS Advisory Board advises
    length: int | None = None
    title: str | None = None
