"""The SQLite shortcut of the staff listing against the ORM's query."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from publisher import db, queries, sqlitereads
from publisher.models import Author, Post, PostStatus, Tag

START = datetime(2019, 2, 11, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    yield url, engine
    engine.dispose()


def fill(sessions: sessionmaker[Session]) -> None:
    """Posts in every state: drafts without a date, dates shared by several posts,
    times with and without microseconds, posts without an author, tags and
    authors whose names differ from their slugs."""
    with db.transaction(sessions) as session:
        authors = [Author(slug=f"author-{i}", name=f"Author Name {i}") for i in range(3)]
        tags = [Tag(slug=f"tag-{i}", name=f"Tag Name {i}") for i in range(4)]
        statuses = [PostStatus.PUBLISHED, PostStatus.SCHEDULED, PostStatus.DRAFT]
        for number in range(40):
            status = statuses[number % 3]
            when = None
            if number % 7:
                when = START + timedelta(days=number // 4, microseconds=(number % 2) * 250)
            session.add(
                Post(
                    uid=f"urn:test:{number}",
                    slug=f"post-{number:02d}",
                    title=f"Post “{number}”, with a comma",
                    body_source="x",
                    body_html="<p>x</p>",
                    status=status,
                    published_at=when,
                    updated_at=when,
                    author=authors[number % 4] if number % 4 < 3 else None,
                    tags=[tags[number % 4], tags[(number + 1) % 4]] if number % 5 else [],
                )
            )


def orm_rows(session: Session, **filters: str | None) -> list[tuple[object, ...]]:
    status = filters.pop("status")
    found = queries.listed_posts(session, PostStatus(status) if status else None, **filters)
    return [(str(p.status), p.published_at, p.slug, p.title, p.author) for p in found]


# Invariant: on every filter (status, tag or author by name or by slug, unknown
# values, all together), the shortcut returns the ORM's rows in the ORM's order,
# with the same values (times aware, in UTC).
def test_listing_matches_the_orm_on_every_filter(store: tuple[str, Engine]) -> None:
    url, engine = store
    sessions = db.make_sessionmaker(engine)
    fill(sessions)
    statuses = [None, "draft", "scheduled", "published"]
    tags = [None, "tag-1", "Tag Name 2", "no-such-tag"]
    authors = [None, "author-0", "Author Name 2", "nobody"]
    with sessions() as session, sqlitereads.open_store(url) as connection:
        assert connection is not None
        for status, tag, author in itertools.product(statuses, tags, authors):
            expected = orm_rows(session, status=status, tag=tag, author=author)
            got = sqlitereads.listed_posts(connection, status, tag=tag, author=author)
            assert got is not None
            assert [tuple(row) for row in got] == expected, (status, tag, author)
        assert len(orm_rows(session, status=None, tag=None, author=None)) == 40


def test_only_a_sqlite_file_at_this_schema_is_read(store: tuple[str, Engine]) -> None:
    url, engine = store
    for other in (
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "sqlite://",
        "sqlite:///:memory:",
        url + "?timeout=5",
        url.replace("store.db", "missing.db"),
    ):
        with sqlitereads.open_store(other) as connection:
            assert connection is None, other
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    with sqlitereads.open_store(url) as connection:
        assert connection is None


def test_the_store_is_opened_read_only(store: tuple[str, Engine]) -> None:
    url, _ = store
    with sqlitereads.open_store(url) as connection:
        assert connection is not None
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            connection.execute("DELETE FROM posts")


# A time SQLAlchemy would not have written is left to the ORM path to read.
def test_an_unreadable_time_sends_the_listing_to_the_orm(store: tuple[str, Engine]) -> None:
    url, engine = store
    fill(db.make_sessionmaker(engine))
    with engine.begin() as conn:
        conn.execute(text("UPDATE posts SET published_at = 'soon' WHERE slug = 'post-01'"))
    with sqlitereads.open_store(url) as connection:
        assert connection is not None
        assert sqlitereads.listed_posts(connection) is None
