"""Copy every row of one database into another: SQLite to PostgreSQL when a
deployment outgrows one machine (or back, or between two servers).

The copy is all or nothing: the target is brought to the schema the source is at,
must hold nothing yet, and is written in one transaction, so a failed copy leaves
no row in it (the schema made first stays). Ids are kept (tokens, Message-IDs and
run numbers go on meaning the same thing), and so is the installation's
suppression salt (the hashes of erased and suppressed addresses only match under
it). The target's id counters go on from the source's (PostgreSQL's sequences,
SQLite's ``AUTOINCREMENT``), so an id the source gave to someone since erased is
not given again.

The source is read in one snapshot (a read transaction), so a send or a sign-up
that writes during the copy is either all in the copy or not at all; stop the
scheduler, senders and web server first all the same, or what they write after
the snapshot stays behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .db import VERSION_TABLE, check_schema, current_revision, head_revision, upgrade
from .errors import DatabaseError
from .queries.deliveries import free_claims
from .words import counted

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Table

#: rows read and written at a time (a year of deliveries is millions of rows)
CHUNK = 5_000
#: rows a migration writes into an empty database: the installation's own salt,
#: which the source's replaces
MADE_BY_MIGRATIONS = frozenset({"suppression_salt"})


@dataclass
class CopyReport:
    """Rows copied, by table, in the order they were written."""

    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def absolute_url(url: str) -> str:
    """``url`` with a relative SQLite path made absolute (from the working directory)."""
    if not url.startswith("sqlite:///") or url.startswith("sqlite:////"):
        return url
    path = url.removeprefix("sqlite:///")
    if not path or path.startswith(":memory:") or path.startswith("file:"):
        return url
    return f"sqlite:///{Path(path).resolve()}"


def copy_database(
    source: Engine,
    target: Engine,
    newsletters: list[str],
    progress: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy every row of ``source`` into ``target``, which must hold no rows yet.

    :param newsletters: the digests of config.yaml (for the target's migrations).
    :param progress: called with a table's name and the rows copied so far.
    :raises DatabaseError: when the source is not at this version's schema, the
        target cannot be reached or migrated, or already holds rows.
    """
    from sqlalchemy.exc import DBAPIError

    from .models import Base

    check_schema(source)
    if _same_database(source, target):
        raise DatabaseError(f"{target.url!r} is the database being copied; name another one")
    revision = current_revision(target)
    if revision not in (None, head_revision()):
        raise DatabaseError(
            f"{target.url!r} is at schema {revision}, not {head_revision()}: copy into a "
            "new, empty database (or, if it holds nothing, run `publisher db upgrade` on it)"
        )
    upgrade(target, newsletters=newsletters)
    tables = [t for t in Base.metadata.sorted_tables if t.name != VERSION_TABLE]
    report = CopyReport()
    try:
        with _snapshot(source) as reader, target.begin() as writer:
            _refuse_rows(writer, tables)
            for table in tables:
                if table.name in MADE_BY_MIGRATIONS:
                    writer.execute(table.delete())
                report.rows[table.name] = _copy_table(reader, writer, table, progress)
            _carry_counters(writer, tables, _counters(reader, tables))
            if writer.dialect.name == "postgresql":
                # a claim of a sender stopped before the move: the next send takes it
                # back at once, as a dead sender's (none claimed on SQLite has a number)
                free_claims(writer)
    except DBAPIError as e:
        raise DatabaseError(
            f"the copy into {target.url!r} failed, nothing was kept: {e.orig}"
        ) from e
    return report


def _same_database(source: Engine, target: Engine) -> bool:
    """Whether both name one database (a SQLite file by any path to it)."""
    if source.dialect.name == target.dialect.name == "sqlite":
        paths = [Path(e.url.database or ":memory:").resolve() for e in (source, target)]
        return paths[0] == paths[1]
    urls = [e.url.render_as_string(hide_password=False) for e in (source, target)]
    return urls[0] == urls[1]


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection to ``engine`` reading one consistent state of the database."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            connection.begin()
        else:
            # SQLite's driver opens no transaction for a SELECT: one begun by hand
            # holds the snapshot (write-ahead log) until it ends
            connection.exec_driver_sql("BEGIN")
        try:
            yield connection
        finally:
            connection.rollback()


def _refuse_rows(writer: Connection, tables: list[Table]) -> None:
    from sqlalchemy import func, select

    for table in tables:
        if table.name in MADE_BY_MIGRATIONS:
            continue
        count = writer.execute(select(func.count()).select_from(table)).scalar_one()
        if count:
            raise DatabaseError(
                f"{writer.engine.url!r} is not empty ({table.name} has {counted(count, 'row')}): "
                "copy into a new, empty database"
            )


def _copy_table(
    reader: Connection,
    writer: Connection,
    table: Table,
    progress: Callable[[str, int], None] | None,
) -> int:
    from sqlalchemy import insert, select

    order = list(table.primary_key.columns)
    query = select(table).order_by(*order)
    result = reader.execute(query, execution_options={"yield_per": CHUNK})
    copied = 0
    for chunk in result.mappings().partitions():
        writer.execute(insert(table), [dict(row) for row in chunk])
        copied += len(chunk)
        if progress is not None:
            progress(table.name, copied)
    return copied


def _counters(reader: Connection, tables: list[Table]) -> dict[str, int]:
    """The highest id each table has handed out, deleted rows' included, where the
    database keeps count (SQLite's ``AUTOINCREMENT`` tables, PostgreSQL's sequences)."""
    from sqlalchemy import inspect, text

    if reader.dialect.name == "sqlite":
        if not inspect(reader).has_table("sqlite_sequence"):
            return {}
        rows = reader.execute(text("SELECT name, seq FROM sqlite_sequence")).all()
        return {name: seq for name, seq in rows}
    counters = {}
    for table, sequence in _sequences(reader, tables):
        last, called = reader.execute(text(f"SELECT last_value, is_called FROM {sequence}")).one()
        counters[table.name] = last if called else last - 1
    return counters


def _sequences(connection: Connection, tables: list[Table]) -> Iterator[tuple[Table, str]]:
    """Each table's PostgreSQL sequence of ids."""
    from sqlalchemy import text

    for table in tables:
        if "id" in table.c and table.c.id.primary_key:
            sequence = connection.execute(
                text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table.name}
            ).scalar()
            if sequence is not None:
                yield table, sequence


def _carry_counters(writer: Connection, tables: list[Table], counters: dict[str, int]) -> None:
    """Make the target's next ids follow every id the source handed out: inserting
    explicit ids moves no PostgreSQL sequence, and SQLite's counter only to the
    highest id copied (an erased subscriber's id above it would be given again)."""
    from sqlalchemy import text

    if writer.dialect.name == "sqlite":
        for name, handed in counters.items():
            writer.execute(
                text("UPDATE sqlite_sequence SET seq = max(seq, :handed) WHERE name = :name"),
                {"handed": handed, "name": name},
            )
        return
    for table, sequence in _sequences(writer, tables):
        highest = writer.execute(text(f'SELECT max(id) FROM "{table.name}"')).scalar() or 0
        handed = max(highest, counters.get(table.name, 0))
        writer.execute(
            text("SELECT setval(:sequence, :value, :called)"),
            {"sequence": sequence, "value": max(handed, 1), "called": handed > 0},
        )
