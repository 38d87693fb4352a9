"""The front matter of a post file: the keys a post may set, checked as they are read.

Anything else is refused as a likely typo; links are http(s) or paths on the site,
names one line, tags distinct whatever their case.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from ..links import WEB_SCHEMES, UnsafeUrl, check_url, revealed_scheme
from .limits import EMAIL_LENGTH, MAX_ATTACHMENTS, MAX_TAGS, NAME_LENGTH
from .slugs import slugify
from .values import PostStatus

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
#: a post's own ``id``: a URI (Atom's ``<id>`` is an IRI, RSS's guid a permalink or not),
#: such as urn:uuid:…, tag:example.org,2019:… or https://…; no space or markup characters
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
#: stands in for the site when checking a relative link (the site is not known here)
_SOME_SITE = "https://site.invalid/"


def _check_url(value: str) -> str:
    try:
        checked = check_url(value, base=_SOME_SITE, schemes=WEB_SCHEMES)
    except UnsafeUrl as e:
        raise ValueError(e.why) from None
    # a relative link stays relative: the feeds and the digest make it absolute
    return checked if revealed_scheme(value) else value.strip()


def _one_line(value: str) -> str:
    """Runs of whitespace (line breaks included) become one space."""
    return " ".join(value.split())


#: a link in front matter: absolute http(s), or a path on the site
Url = Annotated[str, AfterValidator(_check_url)]
#: a name shown on one line (author, role, tag)
Name = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH), AfterValidator(_one_line)]


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AuthorFields(_Fields):
    name: Name
    role: Name | None = None
    organisation: Name | None = None
    bio: str | None = None
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$", max_length=EMAIL_LENGTH)


class AttachmentFields(_Fields):
    url: Url
    title: str | None = None
    type: str | None = Field(None, pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=NAME_LENGTH)
    length: int | None = Field(None, ge=0)


class ImageFields(_Fields):
    url: Url
    alt: str = ""


class FrontMatter(_Fields):
    """The keys a post may set; anything else is refused as a likely typo."""

    title: str = Field(min_length=1)
    id: str | None = Field(None, min_length=1, max_length=300)
    slug: str | None = Field(None, max_length=200)
    date: Any = None
    updated: Any = None
    status: PostStatus = PostStatus.DRAFT
    author: Name | AuthorFields | None = None
    tags: list[Name] = Field(default_factory=list, max_length=MAX_TAGS)
    summary: str | None = None
    image: Url | ImageFields | None = None
    canonical_url: Url | None = None
    attachments: list[AttachmentFields] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)

    @field_validator("id")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            raise ValueError(
                "must be a URI, such as urn:uuid:… or tag:example.org,2019:name (it is "
                "the feeds' entry id), written without spaces"
            )
        return value

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        if value is not None and not _SLUG.match(value):
            raise ValueError(
                "must be lower-case letters and digits in words joined by hyphens "
                f"(e.g. annual-report-2019), got {value!r}"
            )
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, value: Any) -> Any:
        return [t for t in value.split(",")] if isinstance(value, str) else value

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, value: list[str]) -> list[str]:
        # tags are compared without regard to case: "SDGs" and "sdgs" are one tag
        seen: dict[str, str] = {}
        for tag in value:
            if not slugify(tag):
                raise ValueError(f"tag {tag!r} needs at least one letter or digit")
            first = seen.setdefault(tag.casefold(), tag)
            if first != tag:
                raise ValueError(
                    f"{first!r} and {tag!r} are the same tag (tags ignore case); keep one"
                )
        return list(seen.values())
