"""Engine, sessions and schema migrations (Alembic)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .errors import DatabaseError

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys and a busy timeout."""
    try:
        engine = create_engine(url, **options)
    except (ArgumentError, NoSuchModuleError) as e:
        raise DatabaseError(f"database.url {url!r} is not usable: {e}") from e
    if engine.dialect.name == "sqlite":
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA busy_timeout = 10000")
            cursor.close()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits at the end of the block, or rolls back on error."""
    with factory() as session, session.begin():
        yield session


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(
    engine: Engine, revision: str = "head", newsletters: Sequence[str] | None = None
) -> None:
    """Bring the database to ``revision`` (default: the newest schema).

    :param newsletters: the digests of config.yaml, by name: schema 0005 puts
        the subscribers of older schemas on each of them.
    """
    cfg = _alembic_config(engine)
    if newsletters is not None:
        cfg.attributes["newsletters"] = list(newsletters)
    try:
        command.upgrade(cfg, revision)
    except OperationalError as e:
        raise DatabaseError(f"cannot migrate {engine.url!r}: {e.orig}") from e


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` ("base" drops every table)."""
    command.downgrade(_alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(_alembic_config(create_engine("sqlite://")))
    return script.get_current_head()


def check_schema(engine: Engine) -> None:
    """Refuse to run on a database older than the code.

    :raises DatabaseError: telling the user to run ``publisher db upgrade``.
    """
    try:
        current = current_revision(engine)
    except OperationalError as e:
        raise DatabaseError(f"cannot open the database {engine.url!r}: {e.orig}") from e
    head = head_revision()
    if current != head:
        state = "is empty" if current is None else f"is at schema {current}, not {head}"
        raise DatabaseError(
            f"the database {engine.url!r} {state}; run `publisher db upgrade` "
            "(or `publisher init`) first"
        )
