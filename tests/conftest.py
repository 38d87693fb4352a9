"""Shared fixtures: settings, the shipped sample, and real databases.

The ``engine`` fixture runs each store test twice: on a fresh SQLite file,
and on a real PostgreSQL, in a schema of its own that is dropped afterwards.
PostgreSQL is the one PUBLISHER_TEST_DATABASE_URL names, else the local one
on 127.0.0.1:5432 when it answers; the run's header says which, and the
PostgreSQL cases are skipped, with the reason, when there is none.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from publisher import db
from publisher.config import Settings, parse_settings

# Property tests assert what is true, never how fast: no per-example deadline
# (on two shared, noisy cores a slow example is not a failure).
hypothesis_settings.register_profile("publisher", deadline=None)
hypothesis_settings.load_profile("publisher")

PG_URL_ENV = "PUBLISHER_TEST_DATABASE_URL"
#: the PostgreSQL this kind of machine runs (trust auth, database ``test``)
LOCAL_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@cache
def postgres_url() -> str | None:
    """The PostgreSQL to test against: the variable's, else the local one if it answers."""
    url = os.environ.get(PG_URL_ENV)
    if url:
        return url
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=0.5).close()
    except OSError:
        return None
    return LOCAL_PG_URL


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        help="rewrite tests/golden/ from today's output (then review `git diff tests/golden`)",
    )


def pytest_report_header() -> str:
    url = postgres_url()
    if url is None:
        return (
            f"PostgreSQL: none ({PG_URL_ENV} unset and nothing answers on 127.0.0.1:5432); "
            "PostgreSQL cases are skipped"
        )
    return f"PostgreSQL: {url}"


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
    url = postgres_url()
    if not url:
        pytest.skip(f"no PostgreSQL: set {PG_URL_ENV} or start one on 127.0.0.1:5432")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    # the schema in the URL itself, so a process that reopens the database by its
    # URL (a parallel build's workers) lands in the same schema
    joiner = "&" if "?" in url else "?"
    eng = db.make_engine(f"{url}{joiner}options=-csearch_path%3D{schema}")
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
