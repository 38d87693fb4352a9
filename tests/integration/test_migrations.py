"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import uuid
import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, select, text

from publisher import db
from publisher.errors import DatabaseError
from publisher.models import Base, Subscriber

#: indexes on expressions, which SQLAlchemy cannot reflect from SQLite (it warns and
#: skips them): checked by name and by the query plan instead
EXPRESSION_INDEXES = {"ix_subscribers_email_lower"}


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn, warnings.catch_warnings():
        if engine.dialect.name == "sqlite":
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    if engine.dialect.name == "sqlite":
        diff = [d for d in diff if not (d[0] == "add_index" and d[1].name in EXPRESSION_INDEXES)]
    assert diff == []


# The subscribe form looks an address up by lower(email) for anyone who sends it:
# that look-up reads the index made by migration 0008, never the whole table.
def test_the_address_look_up_uses_its_index(engine: Engine) -> None:
    query = select(Subscriber.id).where(func.lower(Subscriber.email) == "zoe@example.org")
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            names = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'index'")))
            plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        else:
            names = set(conn.scalars(text("SELECT indexname FROM pg_indexes")))
            conn.execute(text("SET enable_seqscan = off"))  # an empty table: make it choose
            plan = " ".join(conn.scalars(text(f"EXPLAIN {sql}")))
    assert EXPRESSION_INDEXES <= names
    assert "ix_subscribers_email_lower" in plan, plan


def test_downgrade_and_upgrade_again(engine: Engine) -> None:
    db.downgrade(engine, "base")
    assert db.current_revision(engine) is None
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()


# The one-query schema check compares against the revision the package ships:
# that must be the newest migration, or every command would refuse a fresh database.
def test_shipped_revision_is_alembics_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [db.SCHEMA_REVISION]


# The schema check reads the version table, and says "empty" when there is none.
def test_current_revision_of_an_empty_and_a_migrated_database(engine: Engine) -> None:
    assert db.current_revision(engine) == db.SCHEMA_REVISION
    db.check_schema(engine)
    db.downgrade(engine, "base")
    assert db.current_revision(engine) is None


# A delivery's status changes twice a message (pending → sending → sent): no index
# holds the status, so the change touches none, and on PostgreSQL, with room left
# in each page, the update is made in place (HOT): no new index entries, a third
# less WAL (migration 0009).
def test_a_delivery_status_change_touches_no_index(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            indexes = [row[1] for row in conn.execute(text("PRAGMA index_list(deliveries)"))]
            columns = {
                row[2]
                for name in indexes
                for row in conn.execute(text(f"PRAGMA index_info('{name}')"))
            }
            assert "status" not in columns
            return
        indexed = set(
            conn.scalars(
                text(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
                    "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                    "WHERE i.indrelid = 'deliveries'::regclass"
                )
            )
        )
        assert "status" not in indexed
        options = conn.scalar(text("SELECT reloptions FROM pg_class WHERE relname = 'deliveries'"))
        assert "fillfactor=50" in options
        conn.execute(
            text(
                "INSERT INTO subscribers (email, status, created_at) "
                "VALUES ('a@example.org', 'active', now());"
                "INSERT INTO digest_runs (name, period_start, period_end, started_at) "
                "VALUES ('weekly', now(), now(), now())"
            )
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (run_id, subscriber_id, status, at, attempts) "
                "SELECT r.id, s.id, 'pending', now(), 0 FROM digest_runs r, subscribers s"
            )
        )
        for status in ("sending", "sent"):
            conn.execute(text(f"UPDATE deliveries SET status = '{status}', at = now()"))
        hot = conn.scalar(
            text(
                "SELECT n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = "
                "'deliveries'::regclass"
            )
        )
        assert hot == 2


# A database where one address belongs to two subscribers in two cases (the race
# migration 0010 closes could make them) is left as it is: the upgrade says which
# addresses to sort out first, and changes nothing.
def test_the_upgrade_names_addresses_held_twice(engine: Engine) -> None:
    import pytest

    from publisher.errors import DatabaseError

    db.downgrade(engine, "0009")
    with engine.begin() as conn:
        for address in ("Ann@example.org", "ann@example.org"):
            conn.execute(
                text(
                    "INSERT INTO subscribers (email, status, created_at) "
                    "VALUES (:a, 'active', '2026-11-27 12:00:00')"
                ),
                {"a": address},
            )
    with pytest.raises(DatabaseError, match=r"1 addresses .*ann@example\.org.*erase"):
        db.upgrade(engine)
    assert db.current_revision(engine) == "0009"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM subscribers WHERE email = 'Ann@example.org'"))
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()


# A request made before 0010 and confirmed after it keeps its name: the upgrade copies
# the pending subscriber's name to the requests still waiting for their click.
def test_a_request_waiting_across_the_upgrade_keeps_its_name(engine: Engine) -> None:
    db.downgrade(engine, "0009")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscribers (email, name, status, created_at) "
                "VALUES ('zoe@example.org', 'Zoë', 'pending', '2026-11-27 12:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO consents (subscriber_id, method, at, text, choices) SELECT id, "
                "'form', '2026-11-27 12:00:00', 'Yes', '{}' FROM subscribers"
            )
        )
    db.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM consents")).scalar_one() == "Zoë"


# Invariant (0012): rebuilding SQLite's subscribers and consents for AUTOINCREMENT keeps
# every row that refers to them (foreign keys are off while migrations run, so dropping
# the old table deletes nothing), keeps the index on lower(email), and starts the id
# counters past every id handed out before (the newest subscriber's, erased before the
# upgrade, included: one suppressed address, plus the margin).
def test_ids_are_never_reused_after_the_upgrade(engine: Engine) -> None:
    db.downgrade(engine, "0011")
    with engine.begin() as conn:
        for n in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO subscribers (email, status, created_at) "
                    f"VALUES ('r{n}@example.org', 'active', '2026-11-27 12:00:00')"
                )
            )
        conn.execute(
            text(
                "INSERT INTO subscriptions (subscriber_id, newsletter, created_at) "
                "SELECT id, 'weekly', '2026-11-27 12:00:00' FROM subscribers"
            )
        )
        conn.execute(
            text(
                "INSERT INTO consents (subscriber_id, method, at, text, choices) SELECT id, "
                "'form', '2026-11-27 12:00:00', 'Yes', '{}' FROM subscribers"
            )
        )
        highest = conn.execute(text("SELECT max(id) FROM subscribers")).scalar_one()
        conn.execute(text(f"DELETE FROM subscribers WHERE id = {highest}"))  # erased
        conn.execute(
            text("INSERT INTO suppressions (address_hash, reason, at) VALUES ('h', 'erased', :at)"),
            {"at": "2026-11-27 12:00:00"},
        )
    db.upgrade(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM subscriptions")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM consents")).scalar_one() == 1
        conn.execute(
            text(
                "INSERT INTO subscribers (email, status, created_at) "
                "VALUES ('next@example.org', 'active', '2026-11-28 12:00:00')"
            )
        )
        new = conn.execute(
            text("SELECT id FROM subscribers WHERE email = 'next@example.org'")
        ).scalar_one()
    assert new > highest
    if engine.dialect.name == "sqlite":
        assert new > highest + 10_000
    test_the_address_look_up_uses_its_index(engine)


# A database user who may not create tables gets a one-line error naming the database
# and PostgreSQL's reason, not a traceback (`db upgrade`, `init`, `db copy`).
def test_an_upgrade_refused_by_the_server_is_a_database_error(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no users")
    role = f"r_{uuid.uuid4().hex[:10]}"
    url = engine.url.set(username=role, database=engine.url.database)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
    limited = db.make_engine(url.render_as_string(hide_password=False))
    try:
        with pytest.raises(DatabaseError, match="cannot migrate postgresql"):
            db.upgrade(limited)
    finally:
        limited.dispose()
        with engine.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))


# Invariant (SQLite): the migrations are one transaction, DDL included: one that fails
# part way (here 0012's second table copy) leaves the file as it was, so the next
# `db upgrade` starts from the same place; and rows that pointed nowhere before the
# upgrade (deleted by hand with foreign keys off) do not stop it.
def test_a_failed_upgrade_leaves_sqlite_as_it_was(engine: Engine) -> None:
    from sqlalchemy.exc import OperationalError

    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's DDL is transactional by itself")
    db.downgrade(engine, "0011")
    raw = engine.raw_connection()
    try:
        raw.execute("PRAGMA foreign_keys = OFF")
        raw.execute(
            "INSERT INTO subscriptions (subscriber_id, newsletter, created_at) "
            "VALUES (999, 'weekly', '2026-11-27 12:00:00')"
        )  # an orphan the database already holds
        raw.execute("CREATE TABLE _alembic_tmp_consents (x INTEGER)")  # in 0012's way
        raw.commit()
        raw.execute("PRAGMA foreign_keys = ON")
    finally:
        raw.close()
    with pytest.raises((DatabaseError, OperationalError)):
        db.upgrade(engine)
    with engine.connect() as conn:
        tables = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'table'")))
        made = conn.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'subscribers'"))
    assert db.current_revision(engine) == "0011"
    assert "_alembic_tmp_subscribers" not in tables and "AUTOINCREMENT" not in str(made)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE _alembic_tmp_consents"))
    db.upgrade(engine)  # the orphan it held before does not stop it
    assert db.current_revision(engine) == db.head_revision()
