"""The feed folder, read safely: one open per request, no symlink followed.

Builds replace files by renaming a finished temporary file over the old one
(:func:`publisher.files.write_if_changed`), so an open file descriptor is
one version of a file for as long as it is open. Everything a response says
about a file (body, ``ETag``, ``Last-Modified``) therefore comes from a
single ``open``: the bytes are read and the file is ``fstat``-ed through the
same descriptor, and the ETag is a hash of exactly those bytes. A reader can
never get an old body with a new ETag or the reverse, and the first request
after a build's rename gets the new file (there is no cache to go stale; the
only cache, of gzipped bodies, is keyed on the hash of what was read).

Paths are opened one component at a time relative to the folder with
``O_NOFOLLOW``, so a symlink planted anywhere under the folder is refused
rather than followed out of it.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import re
import stat
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

MEDIA_TYPES = (
    (re.compile(r"^atom(-\d+)?\.xml$"), "application/atom+xml; charset=utf-8"),
    (re.compile(r"^rss(-\d+)?\.xml$"), "application/rss+xml; charset=utf-8"),
    (re.compile(r"^feed(-\d+)?\.json$"), "application/feed+json; charset=utf-8"),
    # web versions of digests ("View in browser"): one a run (urls.digest_page_path), or
    # one a day, as they were named before
    (
        re.compile(r"^[a-z0-9][a-z0-9-]*-\d{4}-\d{2}-\d{2}(-\d{4}(\d{2}(\d{6})?)?)?\.html$"),
        "text/html; charset=utf-8",
    ),
)
#: a path component a feed folder can hold (no dot files, no "..")
_COMPONENT = re.compile(r"^[^./\\\x00][^/\\\x00]*$")
#: gzipped bodies kept at most (one per feed file is plenty)
CACHE_ENTRIES = 4096


def media_type(name: str) -> str | None:
    """The media type of a generated feed file, or None for anything else."""
    for pattern, kind in MEDIA_TYPES:
        if pattern.match(name):
            return kind
    return None


@dataclass(frozen=True)
class FeedFile:
    """One version of a served file, all taken from the same open descriptor."""

    data: bytes
    media_type: str
    #: a hash of ``data`` (strong validator, RFC 9110 8.8.3)
    etag: str
    modified: datetime


class FeedFolder:
    """Read-only access to the generated files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._gzipped: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def read(self, path: str) -> FeedFile | None:
        """The file at ``path`` (slash-separated, relative), or None.

        None for anything that is not a generated feed file: an unknown
        name, a dot file, ``..``, a folder, or any symlink on the way.
        """
        parts = path.split("/")
        kind = media_type(parts[-1])
        if kind is None or not all(_COMPONENT.match(p) for p in parts):
            return None
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return None
        try:
            for part in parts[:-1]:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = inner
            # O_NONBLOCK: a planted FIFO must not hang the thread (regular files ignore it)
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
            inner = os.open(parts[-1], flags, dir_fd=fd)
            os.close(fd)
            fd = inner
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read()
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.EACCES):
                return None
            raise
        finally:
            os.close(fd)
        etag = hashlib.sha256(data).hexdigest()[:32]
        return FeedFile(data, kind, etag, datetime.fromtimestamp(info.st_mtime, UTC))

    def gzipped(self, file: FeedFile) -> bytes:
        """``file``'s bytes gzipped, cached by their hash (so never stale)."""
        cached = self._gzipped.get(file.etag)
        if cached is None:
            # mtime=0: the same bytes always compress to the same bytes
            cached = gzip.compress(file.data, mtime=0)
            with self._lock:
                if len(self._gzipped) >= CACHE_ENTRIES:
                    self._gzipped.clear()
                self._gzipped[file.etag] = cached
        return cached

    def feed_folders(self) -> list[str]:
        """Every folder (relative, ``""`` for the top) that holds an ``atom.xml``."""
        found = []
        for atom in sorted(self.root.glob("**/atom.xml")):
            if atom.is_symlink():
                continue
            folder = atom.parent.relative_to(self.root).as_posix()
            found.append("" if folder == "." else folder)
        return found
