"""The build stamp: how a build with nothing to do finds out without loading the build.

After a full build from a config file, the stamp records what that build was
made from: the config (its bytes, where it is, the environment variable that
may override the database URL, this code's version), a digest of the store
(every column the planner reads, in one query) and the earliest post that
was hidden only because its date had not come. The next ``publisher build``
compares them before the config, SQLAlchemy or the planner are imported: the
config file's bytes, one query over the standard library's sqlite3 driver,
the clock, and a walk of the feed folder. When all match, the full build
would render nothing and write nothing, so the command can say so at once.

The stamp only ever stands in for that answer. Whatever it cannot decide
cheaply goes to the full build: another database than SQLite, a changed
config, a file of the manifest gone from the feed folder, a scheduled post
now due, a build running (the lock is held), a stamp missing or unreadable.
A full build removes the stamp before it writes anything and saves a new one
only after the manifest, so a build that fails or is killed leaves none.

Imports only the standard library, PyYAML, ``files`` and ``manifest``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..files import existing_files
from .manifest import load_manifest, state_dir

STAMP = "stamp.json"
#: the one environment variable the build reads (``config.DATABASE_URL_ENV``)
DATABASE_URL_ENV = "PUBLISHER_DATABASE_URL"
#: bump when the stamp's contents change meaning, so older stamps are not trusted
STAMP_VERSION = "1"

# Every column of the store the planner reads (feed_stubs' version, the tags of
# each post, the names and slugs of authors and tags), and the schema revision,
# each table in a fixed order. quote() writes SQL literals, so no two different
# stores give the same text. The posts' columns are those of the covering index
# ix_posts_feed: SQLite reads the index, never the bodies.
STORE_QUERY = """
SELECT
  (SELECT group_concat(version_num, ',') FROM
     (SELECT version_num FROM alembic_version ORDER BY version_num)),
  (SELECT group_concat(id) || ';' || group_concat(quote(slug)) || ';' || group_concat(status)
          || ';' || group_concat(quote(published_at)) || ';' || group_concat(quote(updated_at))
          || ';' || group_concat(quote(source_hash)) || ';' || group_concat(quote(author_id))
     FROM (SELECT id, slug, status, published_at, updated_at, source_hash, author_id
           FROM posts ORDER BY published_at, id)),
  (SELECT group_concat(post_id || ':' || tag_id) FROM
     (SELECT post_id, tag_id FROM post_tags ORDER BY post_id, tag_id)),
  (SELECT group_concat(quote(id) || ',' || quote(slug) || ',' || quote(name), ';') FROM
     (SELECT id, slug, name FROM authors ORDER BY id)),
  (SELECT group_concat(quote(id) || ',' || quote(slug) || ',' || quote(name), ';') FROM
     (SELECT id, slug, name FROM tags ORDER BY id))
"""


@dataclass(frozen=True)
class Stamp:
    """What the last full build was made from, and what it reported."""

    #: :func:`config_key` of the config file the build read
    config: str
    #: :func:`store_digest` of the store, read before the build read it
    store: str
    #: the database file (absolute) and the feed folder the build used
    database: str
    output_dir: str
    #: ISO time of the earliest post hidden only by its date, if any
    next_due: str | None
    #: documents planned (what the command reports)
    documents: int
    version: str = STAMP_VERSION


def config_key(config_path: str | os.PathLike[str]) -> str | None:
    """A digest of everything outside the store a build depends on, or None when
    the config file cannot be read (the full build then says why)."""
    path = Path(config_path).absolute()
    try:
        data = path.read_bytes()
    except OSError:
        return None
    parts = [
        STAMP_VERSION.encode(),
        __version__.encode(),
        str(path).encode(),
        os.environ.get(DATABASE_URL_ENV, "").encode(),
        data,
    ]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def store_digest(connection: Any) -> str:
    """A digest of the store as the planner sees it, from a DB-API connection to SQLite."""
    cursor = connection.cursor()
    try:
        row = cursor.execute(STORE_QUERY).fetchone()
    finally:
        cursor.close()
    text = "\0".join("" if value is None else str(value) for value in row)
    return hashlib.sha256(text.encode()).hexdigest()


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL; None for an in-memory or another database."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            path = url.removeprefix(prefix).split("?", 1)[0]
            return None if not path or path == ":memory:" else str(Path(path).absolute())
    return None


def stamp_path(output_dir: Path) -> Path:
    return state_dir(output_dir) / STAMP


def clear_stamp(output_dir: Path) -> None:
    """Forget the stamp: the build about to write may not finish."""
    stamp_path(output_dir).unlink(missing_ok=True)


def save_stamp(output_dir: Path, stamp: Stamp) -> None:
    """Record the build just finished (after its manifest)."""
    from ..files import write_if_changed

    write_if_changed(stamp_path(output_dir), json.dumps(asdict(stamp)).encode())


def load_stamp(output_dir: Path) -> Stamp | None:
    try:
        data = json.loads(stamp_path(output_dir).read_text(encoding="utf-8"))
        stamp = Stamp(**data)
    except (OSError, ValueError, TypeError):
        return None
    return stamp if stamp.version == STAMP_VERSION else None


def _guess_output_dir(config_path: Path) -> Path | None:
    """Where the config puts the feeds, read without validating the config: only to
    find the stamp, which then has to name this very config."""
    import yaml

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(config_path.read_bytes(), Loader=loader)  # noqa: S506 (a safe loader)
    except (OSError, yaml.YAMLError):
        return None
    feeds = data.get("feeds", {}) if isinstance(data, dict) else None
    value = feeds.get("output_dir", "feeds") if isinstance(feeds, dict) else None
    if not isinstance(value, str):
        return None
    folder = Path(value)
    return folder if folder.is_absolute() else config_path.resolve().parent / folder


@contextmanager
def _lock_if_free(output_dir: Path) -> Iterator[bool]:
    """The build lock if nobody holds it (True), else nothing (False)."""
    try:
        handle = (state_dir(output_dir) / "lock").open("rb")
    except OSError:
        yield False
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Unchanged:
    """A build that had nothing to do: where the feeds are, and how many documents."""

    output_dir: Path
    documents: int


def check_unchanged(config_path: str | os.PathLike[str], now: datetime) -> Unchanged | None:
    """The report of a build with nothing to do, when the stamp shows there is
    nothing to do; None when only the full build can tell."""
    key = config_key(config_path)
    output_dir = _guess_output_dir(Path(config_path)) if key is not None else None
    if output_dir is None:
        return None
    with _lock_if_free(output_dir) as locked:
        stamp = load_stamp(output_dir) if locked else None
        if stamp is None or stamp.config != key or stamp.output_dir != str(output_dir):
            return None
        if stamp.next_due is not None and now >= datetime.fromisoformat(stamp.next_due):
            return None
        if not os.path.isfile(stamp.database):
            return None
        try:
            uri = Path(stamp.database).as_uri() + "?mode=ro"
            with _closing(sqlite3.connect(uri, uri=True)) as connection:
                if store_digest(connection) != stamp.store:
                    return None
        except sqlite3.Error:
            return None
        if not set(load_manifest(output_dir)) <= existing_files(output_dir):
            return None
    return Unchanged(output_dir, stamp.documents)


@contextmanager
def _closing(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield connection
    finally:
        connection.close()


def utc_iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat() if when is not None else None
