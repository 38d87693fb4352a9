"""Alembic environment: runs against the engine the publisher hands over.

On SQLite the migrations run with foreign keys off, as Alembic's batch mode
needs: a batch copies a table, drops it and renames the copy, and dropping a
parent table with foreign keys on deletes its children first (``ON DELETE
CASCADE``). They run in one transaction, begun by hand (SQLite's driver would
leave DDL outside any), and before it commits ``PRAGMA foreign_key_check`` must
find no row pointing nowhere that was not so before, else nothing is kept.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from publisher.errors import DatabaseError
from publisher.models import Base


def _orphans(connection: Connection) -> set[tuple[object, ...]]:
    """Rows whose foreign key points nowhere (table, rowid, parent table): those the
    database held before the migrations (deleted by hand with foreign keys off, in
    the sqlite3 shell) are its own, not the migrations' doing."""
    return {tuple(row[:3]) for row in connection.exec_driver_sql("PRAGMA foreign_key_check")}


config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` command line: take the URL from alembic.ini
    engine = create_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # only outside a transaction does the pragma change anything
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
        connection.commit()  # (SQLAlchemy's own bookkeeping: SQLite began nothing)
    try:
        with connection.begin():
            if sqlite:
                # SQLite's driver begins a transaction only before INSERT, UPDATE or
                # DELETE: without this a batch's CREATE TABLE would be kept even when
                # the migration fails after it
                connection.exec_driver_sql("BEGIN")
                before = _orphans(connection)
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                # SQLite cannot ALTER most things; batch mode copies the table instead.
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                made = _orphans(connection) - before
                if made:
                    raise DatabaseError(
                        "the migration would leave rows pointing nowhere "
                        f"({sorted(made)[:5]}); nothing was changed"
                    )
    finally:
        if sqlite:
            connection.rollback()  # (whatever the failure left open)
            connection.exec_driver_sql("PRAGMA foreign_keys = ON")
            connection.commit()
