"""Reading what to import: a Markdown file, a folder of them, or an RSS/Atom feed.

Every source is read and validated (pure, :mod:`postfile` / :mod:`feedimport`)
and all problems are gathered, in source order, so they can be reported
together. Nothing here touches the store. Files whose fingerprint is already
stored are skipped unread; large imports parse in a pool of processes, and
the results arrive in source order while the pool parses the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Set
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from zoneinfo import ZoneInfo

from ..errors import ContentError, ImportFailed, PublisherError
from .drafts import PostDraft
from .limits import MAX_FEED_BYTES, MAX_POST_BYTES, check_draft
from .postfile import parse_post_file, source_hash

#: below this many files, a process pool costs more than it saves
PARALLEL_THRESHOLD = 200


@dataclass(frozen=True)
class Source:
    """One thing to import: a label for messages and its bytes."""

    label: str
    raw: bytes
    is_feed: bool


def collect_sources(target: str) -> list[Source]:
    """Read a file, every ``*.md`` below a folder (sorted), or a feed URL.

    :raises PublisherError: when the target cannot be read.
    """
    if target.startswith(("http://", "https://")):
        try:
            import urllib.request  # only for a feed URL (as feedparser, below)

            with urllib.request.urlopen(target, timeout=30) as response:  # noqa: S310
                raw = response.read(MAX_FEED_BYTES + 1)
                return [Source(target, raw, is_feed=True)]
        except OSError as e:
            raise PublisherError(f"{target}: cannot fetch the feed: {e}") from e
    path = Path(target)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.md") if p.is_file())
        if not files:
            raise PublisherError(f"{target}: no *.md post files in this folder")
        return [Source(str(p), _read(p, MAX_POST_BYTES), is_feed=False) for p in files]
    try:
        raw = _read(path, MAX_FEED_BYTES)
    except FileNotFoundError:
        raise PublisherError(f"{target}: no such file or folder") from None
    except OSError as e:
        raise PublisherError(f"{target}: cannot be read: {e.strerror}") from e
    if path.suffix == ".md":
        return [Source(str(path), raw, is_feed=False)]
    from .feedimport import looks_like_feed

    return [Source(str(path), raw, is_feed=looks_like_feed(raw))]


def _read(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes: enough for the parser to say the file is too big."""
    with path.open("rb") as handle:
        return handle.read(limit + 1)


def _read_one(source: Source, zone_key: str) -> list[PostDraft] | ContentError:
    try:
        if source.is_feed:
            from .feedimport import parse_feed  # feedparser: only for feeds

            return parse_feed(source.raw, source.label)
        return [parse_post_file(source.raw, source.label, ZoneInfo(zone_key))]
    except ContentError as e:
        return e


@dataclass(frozen=True)
class Drafts:
    """What the first phase found: drafts to save, and files seen before."""

    drafts: list[PostDraft]
    #: labels of the files whose fingerprint is already stored (not parsed again)
    unchanged: list[str]


def split_unchanged(
    sources: list[Source], zone: ZoneInfo, known_hashes: Set[str]
) -> tuple[list[str], list[Source]]:
    """Labels of the files imported before as they are (skipped unread), and the rest."""
    unchanged = [
        s.label
        for s in sources
        if not s.is_feed and source_hash(s.raw, s.label, zone) in known_hashes
    ]
    skip = set(unchanged)
    return unchanged, [s for s in sources if s.label not in skip]


def read_all(todo: list[Source], zone: ZoneInfo) -> Iterator[list[PostDraft] | ContentError]:
    """Each source's drafts or problem, in source order, as soon as it is ready.

    Large imports parse in a pool of processes; the caller works on the
    results that arrived while the pool parses the rest.
    """
    if len(todo) >= PARALLEL_THRESHOLD and (os.cpu_count() or 1) > 1:
        with ProcessPoolExecutor() as pool:
            yield from pool.map(_read_one, todo, repeat(zone.key), chunksize=32)
    else:
        for source in todo:
            yield _read_one(source, zone.key)


def read_drafts(
    sources: list[Source], zone: ZoneInfo, known_hashes: Set[str] = frozenset()
) -> Drafts:
    """Validate and render every new or changed source (nothing is written).

    Files whose fingerprint is in ``known_hashes`` were imported as they are
    before, so they are skipped unread. Large imports use a pool of processes.

    :raises ImportFailed: listing every problem found, in source order.
    """
    unchanged, todo = split_unchanged(sources, zone, known_hashes)
    checks = Checks()
    drafts = [draft for result in read_all(todo, zone) for draft in checks.add(result)]
    checks.raise_problems()
    return Drafts(drafts, unchanged)


class Checks:
    """The problems of the sources read so far: their own, then duplicates among them."""

    def __init__(self) -> None:
        self.errors: list[ContentError] = []
        self.duplicates: list[ContentError] = []
        self.seen_slug: dict[str, str] = {}
        self.seen_uid: dict[str, str] = {}

    def add(self, result: list[PostDraft] | ContentError) -> list[PostDraft]:
        """The drafts of one source's result, having noted its problems."""
        if isinstance(result, ContentError):
            self.errors.append(result)
            return []
        for draft in result:
            self.errors.extend(check_draft(draft))
            self.duplicates.extend(_duplicates(draft, self.seen_slug, self.seen_uid))
        return result

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.duplicates)

    def raise_problems(self) -> None:
        if self.failed:
            raise ImportFailed(self.errors + self.duplicates)


def _duplicates(
    draft: PostDraft, seen_slug: dict[str, str], seen_uid: dict[str, str]
) -> Iterator[ContentError]:
    """A draft claiming the slug or id of an earlier source of the same import."""
    if draft.slug in seen_slug:
        yield ContentError(
            draft.source,
            f"slug {draft.slug!r} is already used by {seen_slug[draft.slug]}; "
            "give one of them another slug",
            "slug",
        )
    seen_slug.setdefault(draft.slug, draft.source)
    if draft.uid is not None:
        if draft.uid in seen_uid:
            yield ContentError(
                draft.source, f"id {draft.uid!r} is already used by {seen_uid[draft.uid]}", "id"
            )
        seen_uid.setdefault(draft.uid, draft.source)
