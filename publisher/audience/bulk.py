"""Bulk inserts straight through the driver's ``executemany``.

SQLAlchemy's executemany prepares every parameter of every row through its
type machinery (a few microseconds each); a 100,000-row import spends most
of its time there. Here the same bind processors run once per *distinct*
value of a column (an import's rows share their timestamps, statuses and
newsletter names), and the rows go to the driver as plain tuples or dicts,
in the statement SQLAlchemy compiled for this dialect. The values stored
are the ones SQLAlchemy would have stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert


def bulk_insert(
    connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (values in ``columns`` order) into ``table`` with one executemany."""
    if not rows:
        return
    dialect = connection.dialect
    compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
    # column by column: each converter maps over its column in one pass
    values: dict[str, Sequence[Any]] = {}
    for index, name in enumerate(columns):
        column = [row[index] for row in rows]
        convert = _converter(table, name, dialect)
        values[name] = column if convert is None else convert(column)
    if compiled.positional:
        params: list[Any] = list(
            zip(*(values[key] for key in compiled.positiontup or ()), strict=True)
        )
    else:
        params = [
            dict(zip(columns, row, strict=True)) for row in zip(*values.values(), strict=True)
        ]
    connection.exec_driver_sql(compiled.string, params)


def _converter(table: Table, name: str, dialect: Any) -> Callable[[list[Any]], list[Any]] | None:
    """A function converting a column of values with the column's bind processor, calling
    it once per distinct value (by equality, or by identity for unhashable JSON values)."""
    process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return None

    def convert(column: list[Any]) -> list[Any]:
        try:
            done = {value: process(value) for value in set(column)}
        except TypeError:  # dicts and lists: the same object converts once
            by_id: dict[int, Any] = {}
            for value in column:
                if id(value) not in by_id:
                    by_id[id(value)] = process(value)
            return [by_id[id(value)] for value in column]
        return list(map(done.__getitem__, column))

    return convert
