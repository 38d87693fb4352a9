"""Reading what to import: a Markdown file, a folder of them, or an RSS/Atom feed.

Every source is read and validated (pure, :mod:`postfile` / :mod:`feedimport`)
and all problems are gathered, in source order, so they can be reported
together. Nothing here touches the store. Files whose fingerprint is already
stored are not parsed again; large imports read, fingerprint and parse in a
pool of processes, and the results arrive in source order while the pool
works on the rest.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Iterator, Set
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from zoneinfo import ZoneInfo

from ..errors import ContentError, ImportFailed, PublisherError
from ..processes import start_method
from .drafts import PostDraft
from .limits import MAX_FEED_BYTES, MAX_POST_BYTES, check_draft
from .postfile import parse_post_file, source_hash

#: below this many files, a process pool costs more than it saves
PARALLEL_THRESHOLD = 200


@dataclass(frozen=True)
class Source:
    """One thing to import: a label for messages and its bytes.

    The files of a folder are not read when they are listed (``raw`` is None):
    each is read where it is parsed, by the pool's workers in a large import.
    """

    label: str
    raw: bytes | None
    is_feed: bool


#: what reading one source gives: its drafts, and every problem found in it
Parsed = tuple[list[PostDraft], list[ContentError]]
#: a source with what reading it gave, or None for a post file whose fingerprint
#: is already stored (imported before as it is: not parsed again)
Read = tuple[Source, Parsed | None]


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
        files = _post_files(str(path))
        if not files:
            raise PublisherError(f"{target}: no *.md post files in this folder")
        return [Source(name, None, is_feed=False) for name in files]
    try:
        raw = _read(path, MAX_FEED_BYTES)
    except FileNotFoundError as e:
        if path.is_symlink():
            raise _unreadable(target, e) from None
        raise PublisherError(f"{target}: no such file or folder") from None
    except OSError as e:
        raise PublisherError(f"{target}: cannot be read: {e.strerror}") from e
    if path.suffix == ".md":
        return [Source(str(path), raw, is_feed=False)]
    from .feedimport import looks_like_feed

    return [Source(str(path), raw, is_feed=looks_like_feed(raw))]


def _post_files(folder: str) -> list[str]:
    """Every ``*.md`` file below ``folder``, in the order of their paths' parts (as
    sorting :class:`~pathlib.Path` objects gives); folders that cannot be read,
    and links to folders, are passed over (as ``Path.rglob`` does). A link to a
    post file that is gone is listed, for the import to name it."""
    found: list[str] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.name.endswith(".md") and (entry.is_file() or _dangling(entry)):
                        found.append(entry.path)
        except OSError:
            if current == folder:
                raise
    return sorted(found, key=lambda name: name.split(os.sep))


def _dangling(entry: os.DirEntry[str]) -> bool:
    """A link to nothing (``is_file`` is false for it: it would be passed over)."""
    return entry.is_symlink() and not os.path.exists(entry.path)


def _unreadable(label: str, error: OSError) -> ContentError:
    """Why a post file listed a moment ago cannot be read."""
    if isinstance(error, FileNotFoundError) and os.path.islink(label):
        return ContentError(label, f"is a link to {os.readlink(label)}, which does not exist")
    return ContentError(label, f"cannot be read: {error.strerror}")


def _read(path: str | Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes: enough for the parser to say the file is too big.

    Asks for as many bytes as the file has (``read(limit + 1)`` would set aside
    a buffer of the limit, a megabyte, for each of thousands of small files).
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # (open() adds ioctl, lseek and fstat)
    try:
        data = os.read(fd, min(os.fstat(fd).st_size, limit) + 1)
        while len(data) <= limit:  # to the end (or the limit), should the file have grown
            more = os.read(fd, limit + 1 - len(data))
            if not more:
                break
            data += more
        return data
    finally:
        os.close(fd)


def _read_one(source: Source, zone_key: str, known_hashes: Set[str]) -> Parsed | None:
    """One source's drafts and problems, or None for a post file imported before
    as it is (its fingerprint is in ``known_hashes``)."""
    problems: list[ContentError] = []
    try:
        if source.is_feed:
            assert source.raw is not None, "a feed is read to tell it is one"
            from .feedimport import read_feed  # feedparser: only for feeds

            drafts, problems = read_feed(source.raw, source.label)
        else:
            raw = source.raw if source.raw is not None else _read(source.label, MAX_POST_BYTES)
            zone = ZoneInfo(zone_key)
            fingerprint = source_hash(raw, source.label, zone)
            if fingerprint in known_hashes:
                return None
            drafts = [parse_post_file(raw, source.label, zone, fingerprint)]
    except ContentError as e:
        return [], e.each
    except OSError as e:  # a dangling link, or gone or unreadable before its turn came
        return [], [_unreadable(source.label, e)]
    return drafts, problems + [problem for draft in drafts for problem in check_draft(draft)]


#: in a pool's worker: the fingerprints already stored (set once, when it starts)
_known_in_worker: Set[str] = frozenset()


def _know(known_hashes: Set[str]) -> None:
    """A pool worker's initializer: remember the stored fingerprints (a forked
    worker inherits them; a spawned one receives them once, not with each file)."""
    global _known_in_worker
    _known_in_worker = known_hashes


def _read_in_worker(source: Source, zone_key: str) -> Parsed | None:
    """In a pool's worker: :func:`_read_one`, against the fingerprints it started with."""
    return _read_one(source, zone_key, _known_in_worker)


@dataclass(frozen=True)
class Drafts:
    """What the first phase found: drafts to save, and files seen before."""

    drafts: list[PostDraft]
    #: labels of the files whose fingerprint is already stored (not parsed again)
    unchanged: list[str]


def read_all(
    sources: list[Source], zone: ZoneInfo, known_hashes: Set[str] = frozenset()
) -> Iterator[Read]:
    """Each source with its drafts and problems (None if it is unchanged since it
    was imported), in source order, as soon as they are ready.

    Large imports read, fingerprint and parse in a pool of processes, and this
    one only lists the files: the caller works on the results that arrived
    while the pool works on the rest.
    """
    if len(sources) >= PARALLEL_THRESHOLD and (os.cpu_count() or 1) > 1:
        # the first source is read here: that readies the parsers (the compiled
        # Markdown renderer) once, before the pool forks its workers (unless that
        # source is unchanged: then a worker readies them if it has to parse)
        yield sources[0], _read_one(sources[0], zone.key, known_hashes)
        # The workers are forked where that is safe (they import nothing, and start
        # with the parsers loaded), so every object of this process is theirs too.
        # Frozen, their collector passes them over instead of walking them (and
        # copying each page it touches): ~25 us less CPU a post at 10,000 posts.
        gc.freeze()
        context = multiprocessing.get_context(start_method())
        try:
            with ProcessPoolExecutor(
                mp_context=context, initializer=_know, initargs=(known_hashes,)
            ) as pool:
                rest = sources[1:]
                results = pool.map(_read_in_worker, rest, repeat(zone.key), chunksize=32)
                yield from zip(rest, results, strict=True)
        finally:
            gc.unfreeze()
    else:
        for source in sources:
            yield source, _read_one(source, zone.key, known_hashes)


def read_drafts(
    sources: list[Source], zone: ZoneInfo, known_hashes: Set[str] = frozenset()
) -> Drafts:
    """Validate and render every new or changed source (nothing is written).

    Files whose fingerprint is in ``known_hashes`` were imported as they are
    before, so they are not parsed again. Large imports use a pool of processes.

    :raises ImportFailed: listing every problem found, in source order.
    """
    checks = Checks()
    drafts: list[PostDraft] = []
    unchanged: list[str] = []
    for source, result in read_all(sources, zone, known_hashes):
        if result is None:
            unchanged.append(source.label)
        else:
            drafts += checks.add(result)
    checks.raise_problems()
    return Drafts(drafts, unchanged)


class Checks:
    """The problems of the sources read so far: their own, then duplicates among them."""

    def __init__(self) -> None:
        self.errors: list[ContentError] = []
        self.duplicates: list[ContentError] = []
        self.seen_slug: dict[str, str] = {}
        self.seen_uid: dict[str, str] = {}

    def add(self, result: Parsed) -> list[PostDraft]:
        """The drafts of one source's result, having noted its problems."""
        drafts, problems = result
        self.errors += problems
        for draft in drafts:
            self.duplicates.extend(_duplicates(draft, self.seen_slug, self.seen_uid))
        return drafts

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
