"""Reads of a SQLite store over the standard library's driver, without SQLAlchemy.

Loading SQLAlchemy (its engine, the ORM and the models) costs a command about
a quarter of a second of CPU before any work: more than everything else
``publisher posts list`` does. So the staff listing reads a SQLite file here,
with one SQL statement written to return what :func:`publisher.queries.listed_posts`
returns (the same rows in the same order; ``tests/integration/test_sqlite_reads.py``
holds the two to it on every filter).

This is a shortcut, never the only way: :func:`open_store` answers None for
whatever it cannot read cheaply (another database than SQLite, a file that
is missing or unreadable, a schema other than the one this code is written
for), and the command then takes the SQLAlchemy path, which says what is
wrong. Reads only: the file is opened read-only.

Imports only the standard library and :data:`publisher.db.SCHEMA_REVISION`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from .db import SCHEMA_REVISION, VERSION_TABLE

#: how long a read waits for a writer's lock, as ``db.make_engine`` sets it
BUSY_TIMEOUT_MS = 10000


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL with no options; None for anything else
    (another database, an in-memory one, query options or escapes this module
    does not read)."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            path = url.removeprefix(prefix)
            if not path or path == ":memory:" or any(c in path for c in "?%#"):
                return None
            return Path(path)
    return None


@contextmanager
def open_store(url: str) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to the SQLite file of ``url`` at this code's schema,
    or None when only the SQLAlchemy path can tell (see the module's docstring)."""
    path = sqlite_file(url)
    connection = None
    if path is not None and path.is_file():
        try:
            connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            revisions = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
        except sqlite3.Error:
            revisions = []
        if ",".join(sorted(row[0] for row in revisions)) != SCHEMA_REVISION:
            if connection is not None:
                connection.close()
            connection = None
    try:
        yield connection
    finally:
        if connection is not None:
            connection.close()


class ListedPost(NamedTuple):
    """A row of the staff listing (the columns of ``queries.listed_posts``)."""

    status: str
    published_at: datetime | None
    slug: str
    title: str
    author: str | None


# The statement SQLAlchemy compiles from queries.listed_posts, written out:
# drafts without a date first, then newest first, ties by id, newest first.
_LISTED_POSTS = """
SELECT posts.status, posts.published_at, posts.slug, posts.title, authors.name
FROM posts LEFT OUTER JOIN authors ON authors.id = posts.author_id
WHERE {where}
ORDER BY posts.published_at IS NULL DESC, posts.published_at DESC, posts.id DESC
"""
_BY_TAG = """EXISTS (SELECT 1 FROM post_tags, tags
  WHERE posts.id = post_tags.post_id AND tags.id = post_tags.tag_id
  AND (tags.slug = :tag OR tags.name = :tag))"""


def listed_posts(
    connection: sqlite3.Connection,
    status: str | None = None,
    tag: str | None = None,
    author: str | None = None,
) -> list[ListedPost] | None:
    """Posts for the staff listing, newest first, as :func:`publisher.queries.listed_posts`
    returns them; None if a stored time is not one SQLAlchemy would have written."""
    where = ["1 = 1"]
    if status is not None:
        where.append("posts.status = :status")
    if tag is not None:
        where.append(_BY_TAG)
    if author is not None:
        where.append("(authors.slug = :author OR authors.name = :author)")
    statement = _LISTED_POSTS.format(where=" AND ".join(where))
    rows = connection.execute(statement, {"status": status, "tag": tag, "author": author})
    try:
        return [
            ListedPost(state, _utc(when), slug, title, name)
            for state, when, slug, title, name in rows
        ]
    except ValueError:
        return None


def _utc(stored: str | None) -> datetime | None:
    """A time as ``models.UTCDateTime`` reads it back: SQLite holds naive UTC text."""
    if stored is None:
        return None
    value = datetime.fromisoformat(stored)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
