"""Shared fixtures: settings, the shipped sample, and real databases.

The ``engine`` fixture runs each store test twice: on a fresh SQLite file,
and on the real PostgreSQL named by PUBLISHER_TEST_DATABASE_URL, in a schema
of its own that is dropped afterwards (skipped, with the reason, when unset).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from publisher import db
from publisher.config import Settings, parse_settings

PG_URL_ENV = "PUBLISHER_TEST_DATABASE_URL"

CONFIG_TEXT = """\
site:
  title: Test Centre
  base_url: https://news.example.org/
  timezone: Europe/Berlin
  postal_address: 1 Example Street, 10115 Berlin, Germany
email:
  sender: Test Centre <news@example.org>
digests:
  - name: weekly
    schedule: "0 9 * * MON"
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return parse_settings(CONFIG_TEXT, source="test-config.yaml", base_dir=tmp_path)


@pytest.fixture(scope="session")
def sample_dir() -> Iterator[Path]:
    with resources.as_file(resources.files("publisher") / "sample") as path:
        yield path


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        eng = db.make_engine(f"sqlite:///{tmp_path / 'test.db'}")
        db.upgrade(eng)
        yield eng
        eng.dispose()
        return
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"{PG_URL_ENV} is not set; .ci/run sets it to the local PostgreSQL")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = db.make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        db.upgrade(eng)
        yield eng
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return db.make_sessionmaker(engine)
