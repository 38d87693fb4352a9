"""Start-up: every command imports only what it uses.

Each case runs the command in a fresh interpreter (as a user's shell does) and
lists the modules it loaded. Times are measured in bench/startup.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONFIG_TEXT

PROBE = """\
import json, sys
from publisher.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="publisher", standalone_mode=False)
finally:
    print("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""
MAIL_STACK = {"premailer", "cssutils", "jinja2"}
RENDERING = {"feedgen", "lxml", "markdown_it", "nh3"}


def loaded(tmp: Path, *args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--config", str(tmp / "config.yaml"), *args],
        capture_output=True,
        text=True,
        cwd=tmp,
        check=True,
    )
    line = done.stdout.rsplit("MODULES ", 1)[1]
    return {name.split(".")[0] for name in json.loads(line)}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("startup")
    (tmp / "config.yaml").write_text(CONFIG_TEXT)
    subprocess.run(
        [sys.executable, "-m", "publisher", "--config", "config.yaml", "init", "--sample"],
        cwd=tmp,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, "-m", "publisher", "--config", "config.yaml", "build"],
        cwd=tmp,
        check=True,
        capture_output=True,
    )
    return tmp


# --help needs click alone: no database, no config, no rich.
def test_help_loads_neither_the_store_nor_the_config(site: Path) -> None:
    modules = loaded(site, "--help")
    assert not modules & {"sqlalchemy", "pydantic", "yaml", "rich", "alembic", *RENDERING}


# Listing posts reads the store; it renders nothing and migrates nothing, and
# on SQLite it reads the file with the standard library's driver.
def test_posts_list_loads_neither_sqlalchemy_nor_a_renderer(site: Path) -> None:
    modules = loaded(site, "posts", "list", "--format", "csv")
    assert "sqlite3" in modules
    assert not modules & {"sqlalchemy", "alembic", "rich", *RENDERING, *MAIL_STACK}


# A build never loads the mail stack; with nothing changed since the last
# build it knows so from the build's stamp: no config validation, no database
# layer, no planner.
def test_a_build_with_nothing_to_do_loads_neither_the_store_nor_the_config(site: Path) -> None:
    modules = loaded(site, "build")
    assert not modules & {"sqlalchemy", "pydantic", "rich", "alembic", *RENDERING, *MAIL_STACK}


# --force renders every document: then the build loads the serialisers, and
# still neither the mail stack nor Alembic.
def test_a_build_that_renders_loads_feedgen_but_not_the_mail_stack(site: Path) -> None:
    modules = loaded(site, "build", "--force")
    assert {"feedgen", "lxml"} <= modules
    assert not modules & {"alembic", *MAIL_STACK}


# Importing a post file parses Markdown; it needs no feed parser or writer.
def test_importing_a_post_file_loads_no_feed_stack(site: Path) -> None:
    post = site / "new-post.md"
    post.write_text("---\ntitle: New\ndate: 2026-01-01\nstatus: published\n---\nHello.\n")
    modules = loaded(site, "import", str(post))
    assert {"markdown_it_pyrs", "nh3"} <= modules
    assert not modules & {"feedparser", "feedgen", "alembic", *MAIL_STACK}


# Leaving, a command freezes the objects still alive, so that Python's last
# collection passes over the libraries it loaded instead of walking them; the
# exit handlers (closing database connections, joining threads) still run.
def test_a_command_leaves_with_its_objects_frozen_and_its_exit_handlers_run(site: Path) -> None:
    probe = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('FROZEN', gc.get_freeze_count()))\n"
        "from publisher.cli import main\n"
        "sys.argv = ['publisher', 'posts', 'list']\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=site, check=True
    )
    frozen = int(done.stdout.rsplit("FROZEN ", 1)[1])
    assert frozen > 10_000
