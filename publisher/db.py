"""Engine, sessions and schema migrations (Alembic).

Alembic is loaded only to migrate. Every other command checks the schema
with one query: the revision stored in ``alembic_version`` against
:data:`SCHEMA_REVISION`, the revision this package ships.

SQLAlchemy is imported inside the functions: a command that reads SQLite
without it (:mod:`publisher.sqlitereads`) needs :data:`SCHEMA_REVISION` only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import Engine, Table
    from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
#: the newest migration in ``migrations/versions``: the schema this code is written
#: for. Bump it with every new migration (tests/integration/test_migrations.py
#: fails until it names Alembic's head).
SCHEMA_REVISION = "0012"
#: Alembic's bookkeeping table (one row: the revision the database is at)
VERSION_TABLE = "alembic_version"


#: how long a SQLite command waits for another one's write to end before it gives up
BUSY_TIMEOUT_MS = 10_000


def make_engine(
    url: str, flush_at_checkpoints: bool = False, named: str = "database.url", **options: Any
) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, a busy timeout and a write-ahead log.

    :param named: what the URL is, for messages (the config's key, or an argument).
    :param flush_at_checkpoints: SQLite only (the web server's engine, where every
        form is its own transaction): ``synchronous=NORMAL``, so the log is flushed
        to disk at checkpoints, not at every commit (a power cut can lose the last
        commits, never corrupt the file). Set on every connection as it is made.
    """
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        engine = create_engine(url, **options)
    except (ArgumentError, NoSuchModuleError) as e:
        raise DatabaseError(f"{named} {url!r} is not usable: {e}") from e
    except ImportError as e:  # the dialect is known, its driver not installed
        raise DatabaseError(
            f"{named} {url!r} needs a driver that is not installed ({e}); "
            "publisher ships with SQLite's and PostgreSQL's (postgresql+psycopg://)"
        ) from e
    if engine.dialect.name == "sqlite":
        memory = not engine.url.database or engine.url.database == ":memory:"
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if memory is False:
                # write-ahead log: a commit is one fsync of the log, not a journal
                # made, synced and deleted (0.6 ms against 9 ms measured here), and
                # readers never wait for the writer
                cursor.execute("PRAGMA journal_mode = WAL")
                if flush_at_checkpoints:
                    cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits at the end of the block, or rolls back on error."""
    with factory() as session, session.begin():
        yield session


def insert_many(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ``rows`` (all with the same keys) in one executemany handed to the driver.

    The statement and the values are those of ``session.execute(insert(table),
    rows)``: SQLAlchemy compiles the statement, and each value goes through its
    column type's own bind processor (enums to their values, times to UTC).
    What is skipped is SQLAlchemy's handling of each row as a parameter set,
    which cost more than SQLite's own work for the tens of thousands of rows
    of a large import.
    """
    if not rows:
        return
    from sqlalchemy import insert

    connection = session.connection()
    dialect = connection.dialect
    keys = list(rows[0])
    compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    names = list(compiled.positiontup or []) if compiled.positional else list(compiled.params)
    if sorted(names) != sorted(keys):  # a statement shape this shortcut does not know
        session.execute(insert(table), list(rows))
        return
    convert = [
        (key, table.c[key].type.dialect_impl(dialect).bind_processor(dialect)) for key in names
    ]
    params: list[Any]
    if compiled.positional:
        params = [
            tuple(row[key] if fn is None else fn(row[key]) for key, fn in convert) for row in rows
        ]
    else:
        params = [
            {key: row[key] if fn is None else fn(row[key]) for key, fn in convert} for row in rows
        ]
    connection.exec_driver_sql(str(compiled), params)


def _alembic_config(engine: Engine) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

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
    from alembic import command
    from sqlalchemy.exc import DBAPIError

    cfg = _alembic_config(engine)
    if newsletters is not None:
        cfg.attributes["newsletters"] = list(newsletters)
    try:
        command.upgrade(cfg, revision)
    except DBAPIError as e:  # cannot connect, no right to create tables, disk full…
        raise DatabaseError(f"cannot migrate {engine.url!r}: {e.orig}") from e


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` ("base" drops every table)."""
    from alembic import command

    command.downgrade(_alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database), in one query.

    :raises DatabaseError: when the database cannot be opened or read.
    """
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import DBAPIError, OperationalError

    try:
        connection = engine.connect()
    except OperationalError as e:
        raise DatabaseError(f"cannot open the database {engine.url!r}: {e.orig}") from e
    with connection:
        try:
            rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
        except DBAPIError as e:
            # only now, on the rare path, ask whether the table is there at all
            connection.rollback()
            if not inspect(connection).has_table(VERSION_TABLE):
                return None
            raise DatabaseError(f"cannot read the database {engine.url!r}: {e.orig}") from e
    return ",".join(sorted(row[0] for row in rows)) or None


def head_revision() -> str:
    """The revision this package's code is written for."""
    return SCHEMA_REVISION


def check_schema(engine: Engine) -> None:
    """Refuse to run on a database older (or newer) than the code.

    :raises DatabaseError: telling the user to run ``publisher db upgrade``.
    """
    current = current_revision(engine)
    if current != SCHEMA_REVISION:
        state = "is empty" if current is None else f"is at schema {current}, not {SCHEMA_REVISION}"
        raise DatabaseError(
            f"the database {engine.url!r} {state}; run `publisher db upgrade` "
            "(or `publisher init`) first"
        )
