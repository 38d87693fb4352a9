"""A post written as a Markdown file with YAML front matter → :class:`PostDraft`.

Pure: bytes in, a validated and rendered draft out, or a :class:`ContentError`
that names the file, the field and the line. The format::

    ---
    title: Our strategy 2019 – 2021
    date: 2019-04-18T10:00:00+02:00
    status: published
    author:
      name: Thomas Howie
      role: Communications Manager
    tags: [Strategy]
    attachments:
      - url: https://example.org/strategy.pdf
        title: Download Strategy (PDF)
    ---
    The body, in Markdown.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from ..errors import ContentError, PostProblems
from ..yamlsource import YamlDocument, YamlSyntaxError, describe_errors, parse_yaml
from .drafts import AttachmentDraft, AuthorDraft, PostDraft
from .frontmatter import AttachmentFields, AuthorFields, FrontMatter, ImageFields
from .limits import MAX_POST_BYTES
from .markup import RENDER_VERSION, MarkdownError, render_markdown_html, unsafe_html
from .slugs import slugify
from .text import xml_safe
from .values import PostStatus
from .video import directive_mistakes

FENCE = "---"
#: dates outside these years are typing mistakes (and year 1 or 9999 overflows in UTC)
YEARS = (1900, 2200)


def split_front_matter(text: str, source: str) -> tuple[str, str, int]:
    """Split a post into (front matter, body, 1-based line where the body starts)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != FENCE:
        raise ContentError(
            source, "no front matter: a post starts with a line '---', then 'title: …', then '---'"
        )
    for number, line in enumerate(lines[1:], start=1):
        if line.strip() in (FENCE, "..."):
            return "".join(lines[1:number]), "".join(lines[number + 1 :]), number + 2
    raise ContentError(source, "front matter is not closed: add a line '---' after it", line=1)


def parse_when(value: Any, zone: ZoneInfo) -> datetime:
    """A front-matter date → aware UTC-comparable datetime.

    A date alone means the start of that day (midnight, or the first hour there is
    where the clocks skip midnight), and a time without offset means local time,
    both in the site's time zone. A local time the clocks skip is refused.

    :raises ValueError: with the forms accepted.
    """
    day_only = isinstance(value, date) and not isinstance(value, datetime)
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime.combine(value, time(0, 0))
    elif isinstance(value, str):
        day_only = len(value.strip()) == len("2019-12-05")
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"cannot read {value!r} as a date; write 2019-12-05, "
                "2019-12-05 10:30 or 2019-12-05T10:30:00+01:00"
            ) from None
    else:
        raise ValueError(f"expected a date such as 2019-12-05, got {value!r}")
    if when.tzinfo is not None:
        return when
    local = when.replace(tzinfo=zone)
    try:
        again = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    except OverflowError:  # year 1 or 9999: refused for its year by the caller
        return local
    if again != when and day_only:
        return local.astimezone(UTC).astimezone(zone)  # the day's first hour
    if again != when:
        raise ValueError(
            f"{when:%Y-%m-%d %H:%M} does not exist in {zone.key} (the clocks go forward "
            "then); write a time after the change"
        )
    return local


_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}[-_]")


def default_slug(path: str) -> str:
    """Slug from a file name: ``2019-12-05-my-post.md`` → ``my-post``."""
    return slugify(_DATE_PREFIX.sub("", _stem(path)))


def _stem(path: str) -> str:
    """``PurePath(path).stem`` for the paths an import labels sources with (already
    normal), without making a path object for each of ten thousand files."""
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name


def source_hash(raw: bytes, source: str, zone: ZoneInfo) -> str:
    """Fingerprint of everything a post file's draft depends on.

    The bytes, the renderer's version, the site's time zone (for dates without
    one) and the slug the file name gives. Equal fingerprints mean equal drafts,
    so an import can skip a file it has seen without even parsing it.
    """
    salt = f"{RENDER_VERSION}\0{zone.key}\0{default_slug(source)}\0".encode()
    return hashlib.sha256(salt + raw).hexdigest()


def parse_post_file(
    raw: bytes, source: str, zone: ZoneInfo, fingerprint: str | None = None
) -> PostDraft:
    """Read one post file.

    :param raw: the file's bytes (must be UTF-8).
    :param source: its path, for messages.
    :param zone: the site's time zone, for dates written without one.
    :param fingerprint: its :func:`source_hash`, when the caller has worked it out.
    :raises ContentError: naming the file, field and line.
    """
    if len(raw) > MAX_POST_BYTES:
        raise ContentError(
            source,
            # (the reader stops one byte past the limit: the file's own size is unknown)
            f"is larger than {MAX_POST_BYTES // 1000} kB, the most a post file may be "
            "(put long documents in an attachment)",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise ContentError(source, "is UTF-16; save the file as UTF-8") from None
        line = raw[: e.start].count(b"\n") + 1
        raise ContentError(
            source,
            f"is not UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}); save the file as UTF-8",
            line=line,
        ) from None
    # NUL, form feeds and the like cannot go into a feed (XML 1.0) or PostgreSQL
    text = xml_safe(text)
    head, body, body_line = split_front_matter(text, source)
    try:
        doc = parse_yaml(head, first_line=2)
    except YamlSyntaxError as e:
        raise ContentError(source, f"front matter is not valid YAML: {e}", line=e.line) from e
    if not isinstance(doc.data, dict):
        raise ContentError(source, "front matter must be 'key: value' lines", line=2)
    problems: list[ContentError] = []
    # the text is XML-safe already: only a YAML escape ("\\x00") can make a character
    # XML forbids (the one-line reading of the front matter needs no walk over it)
    data = _xml_safe_strings(doc.data) if "\\" in head else doc.data
    refused: set[str] = set()  # fields named already: not checked further
    try:
        fields: FrontMatter | None = FrontMatter.model_validate(data)
    except ValidationError as e:
        found = describe_errors(e, doc, FrontMatter)
        problems += [ContentError(source, p.message, p.key, p.line) for p in found]
        refused = {p.key.split(".")[0] for p in found}
        fields = _without(data, refused)  # the rest is checked all the same
    body_html = ""
    try:
        # Stored as rendered: every way out of the store sanitises it
        # (:mod:`~publisher.content.public`), so sanitising it here too only cost time.
        body_html = render_markdown_html(body)
        unsafe = unsafe_html(body, body_html)
    except MarkdownError as e:
        unsafe = [e]
    unsafe += [MarkdownError(line, why) for line, why in directive_mistakes(body)]
    problems += [ContentError(source, str(e), "body", body_line + e.line) for e in unsafe]
    if fields is None:
        raise PostProblems.of(problems)

    published_at = updated_at = None
    with _noted(problems):
        published_at = _when(fields.date, "date", doc, source, zone)
    with _noted(problems):
        updated_at = _when(fields.updated, "updated", doc, source, zone)
    if fields.date is None and "date" not in refused and fields.status is not PostStatus.DRAFT:
        problems.append(
            ContentError(
                source,
                f"a {fields.status.value} post needs a date (e.g. date: 2019-12-05)",
                "date",
                doc.line_of(["status"]),
            )
        )
    if published_at and updated_at and updated_at < published_at:
        problems.append(
            ContentError(source, "is before the date", "updated", doc.line_of(["updated"]))
        )
    slug = fields.slug or default_slug(source) or slugify(fields.title)
    if not slug:
        problems.append(
            ContentError(
                source,
                "neither the file name nor the title has a letter or digit to make a URL "
                "slug from; add slug: (e.g. slug: annual-report)",
                "slug",
                doc.line_of(["title"]),
            )
        )
    attachments = []
    for index, fields_of in _attachment_fields(fields, data, refused):
        with _noted(problems):
            attachments.append(_attachment(fields_of, index, doc, source))
    if problems:
        raise PostProblems.of(problems)
    image = fields.image
    return PostDraft(
        source=source,
        uid=fields.id,
        slug=slug,
        title=" ".join(fields.title.split()),
        summary=fields.summary,
        body_source=body,
        body_html=body_html,
        source_hash=fingerprint or source_hash(raw, source, zone),
        status=fields.status,
        published_at=published_at,
        updated_at=updated_at,
        author=_author(fields.author),
        tags=tuple(fields.tags),
        attachments=tuple(attachments),
        image_url=image.url if isinstance(image, ImageFields) else image,
        image_alt=image.alt if isinstance(image, ImageFields) else None,
        canonical_url=fields.canonical_url,
    )


def _without(data: dict[str, Any], refused: set[str]) -> FrontMatter | None:
    """The front matter without the fields refused (a made-up title for a refused
    one), so that what is left is still checked; None if even that is refused."""
    kept = {key: value for key, value in data.items() if key not in refused}
    if "title" in refused or "title" not in kept:
        kept["title"] = "untitled"
    try:
        return FrontMatter.model_validate(kept)
    except ValidationError:
        return None


def _attachment_fields(
    fields: FrontMatter, data: dict[str, Any], refused: set[str]
) -> Iterator[tuple[int, AttachmentFields]]:
    """Each attachment with its index in the file: those the front matter took, or,
    when one of them was refused, each of the others on its own."""
    if "attachments" not in refused:
        yield from enumerate(fields.attachments)
        return
    raw = data.get("attachments")
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        try:
            yield index, AttachmentFields.model_validate(item)
        except ValidationError:
            continue  # named already


@contextmanager
def _noted(problems: list[ContentError]) -> Iterator[None]:
    """Note a problem of the block and go on to the next part of the file."""
    try:
        yield
    except ContentError as e:
        problems.append(e)


def _xml_safe_strings(value: Any) -> Any:
    """Every string of the front matter without the characters XML forbids: YAML
    escapes (``"\\e"``, ``"\\x00"``) make them after the file text was cleaned."""
    if isinstance(value, str):
        return xml_safe(value)
    if isinstance(value, dict):
        return {key: _xml_safe_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_xml_safe_strings(item) for item in value]
    return value


def _when(
    value: Any, field: str, doc: YamlDocument, source: str, zone: ZoneInfo
) -> datetime | None:
    if value is None:
        return None
    try:
        when = parse_when(value, zone)
    except ValueError as e:
        raise ContentError(source, str(e), field, doc.line_of([field])) from e
    if not YEARS[0] <= when.year <= YEARS[1]:
        raise ContentError(
            source,
            f"year {when.year} is outside {YEARS[0]}–{YEARS[1]}; is it a typing mistake?",
            field,
            doc.line_of([field]),
        )
    return when


def _author(value: str | AuthorFields | None) -> AuthorDraft | None:
    if value is None:
        return None
    if isinstance(value, str):
        return AuthorDraft(name=value)
    return AuthorDraft(**value.model_dump())


def _attachment(
    fields: AttachmentFields, index: int, doc: YamlDocument, source: str
) -> AttachmentDraft:
    media_type = fields.type or mimetypes.guess_type(fields.url)[0]
    if media_type is None:
        raise ContentError(
            source,
            f"cannot tell the media type of {fields.url!r}; add type: (e.g. application/pdf)",
            f"attachments.{index}.type",
            doc.line_of(["attachments", index]),
        )
    return AttachmentDraft(
        url=fields.url, media_type=media_type, title=fields.title, length=fields.length
    )
