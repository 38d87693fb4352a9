"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from publisher import db
from publisher.models import Base


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


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
