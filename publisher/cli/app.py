"""What every command shares: the :class:`App` (settings, database), error handling,
the date parameter, and list output for people and scripts.

Imports only click and ``errors`` at start-up (rich, the config, the database
come on first use): each command module imports the family it drives inside
the command, so ``--help`` stays fast.
"""

from __future__ import annotations

import csv
import functools
import json
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import click

from ..errors import PublisherError
from ..words import counted

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from ..config import Settings

P = ParamSpec("P")
R = TypeVar("R")


#: commands that never render a digest, so need not load Jinja2 to check its subject
NO_MAIL_COMMANDS = frozenset({"build", "posts", "import", "db", "init"})


class App:
    """What every command needs, made on first use (so --help needs no config)."""

    def __init__(self, config: str, debug: bool) -> None:
        self.config = config
        self.debug = debug
        self._settings: Settings | None = None
        self._engine: Engine | None = None

    @functools.cached_property
    def console(self) -> Console:
        from rich.console import Console

        # markup off: titles and subjects are printed as written, brackets and all
        return Console(highlight=False, soft_wrap=True, markup=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from ..config import load_settings

            # the digest's subject template is compiled at load (Jinja2) only
            # for commands that may render mail
            context = click.get_current_context(silent=True)
            words = context.command_path.split() if context else []
            command = words[1] if len(words) > 1 else ""
            self._settings = load_settings(
                self.config, check_templates=command not in NO_MAIL_COMMANDS
            )
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from .. import db

            self._engine = db.make_engine(self.settings.database.url or "")
        return self._engine

    def close(self) -> None:
        """Close the database's connections: on SQLite the last one to close writes
        the write-ahead log back into the database file, so that the file alone (a
        copy, a backup) holds everything."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def sessions(self, check: bool = True) -> sessionmaker[Session]:
        """Sessions on a database that is at the newest schema."""
        from .. import db

        if check:
            db.check_schema(self.engine)
        return db.make_sessionmaker(self.engine)


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a PublisherError into click's one-line error, unless --debug; and the
    errors of the machine around the command too (a file or folder it cannot use, a
    port taken, a database that is locked, read-only or not a database)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except Exception as e:
            app = click.get_current_context().find_object(App)
            if app is not None and app.debug:
                raise
            message = describe(e, app)
            if message is None:
                raise
            raise click.ClickException(message) from e

    return wrapper


#: the database errors that say something about the database, not about our statements
_DATABASE_STATES = ("OperationalError", "DatabaseError")


def describe(error: Exception, app: App | None) -> str | None:
    """One line for an error a user can act on; None for a bug (its traceback shows)."""
    if isinstance(error, PublisherError):
        return str(error)
    if isinstance(error, OSError) and not isinstance(error, BrokenPipeError):
        where = error.filename or ""
        what = error.strerror or str(error) or type(error).__name__
        return f"{where}: {what}" if where else what
    # the database's own state (locked, read-only, not a database, unreachable): its
    # driver's OperationalError, or the base DatabaseError (SQLite's "file is not a
    # database"), bare or wrapped by SQLAlchemy; a statement the database refuses
    # (ProgrammingError, IntegrityError…) is a bug, and its traceback shows
    kind = (type(error).__module__, type(error).__name__)
    wrapped = kind[0] == "sqlalchemy.exc" and kind[1] in _DATABASE_STATES
    bare = kind[0] == "sqlite3" and kind[1] in _DATABASE_STATES
    if wrapped or bare:
        url = ""
        if app is not None and app._engine is not None:
            url = f" {app._engine.url.render_as_string(hide_password=True)}"
        cause = getattr(error, "orig", None) or error
        text = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        hint = ""
        if "locked" in text:
            hint = " (another command is writing to it: try again when it is done)"
        elif "readonly" in text or "read-only" in text:
            hint = " (check the file's and its folder's permissions)"
        return f"the database{url} refused: {text}{hint}"
    return None


pass_app = click.make_pass_decorator(App)


class _When(click.ParamType[datetime]):
    """A date or date-time; without an offset it is in the site's time zone."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        from ..content.postfile import YEARS, parse_when

        app = ctx.find_object(App) if ctx else None
        try:
            zone = app.settings.site.zone if app else ZoneInfo("UTC")
        except PublisherError as e:  # the config, first loaded here: its one line
            if app is not None and app.debug:
                raise
            raise click.ClickException(str(e)) from e
        try:
            when = parse_when(value, zone)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        if not YEARS[0] <= when.year <= YEARS[1]:  # as a post's date (and no overflow)
            self.fail(f"the year {when.year} is outside {YEARS[0]}–{YEARS[1]}", param, ctx)
        return when.astimezone(UTC)


WHEN = _When()

#: ``--format`` of every list command
FORMATS = ("table", "csv", "json")


def format_option(command: Callable[P, R]) -> Callable[P, R]:
    """``--format table|csv|json``: a table on a terminal, CSV when piped (one row a line)."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default=None,
        help="Output format (default: table on a terminal, csv otherwise).",
    )(command)


def print_rows(
    app: App,
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    output_format: str | None,
    noun: str,
) -> None:
    """Print ``rows`` as a table, CSV or JSON; only the table adds a count line.

    CSV and JSON are written a row at a time, so ``rows`` may be a generator over
    a list of any length; a table is drawn once it has every row.
    """
    chosen = output_format or ("table" if sys.stdout.isatty() else "csv")
    if chosen == "json":
        # what json.dumps(list, indent=2) writes, an element at a time
        out = sys.stdout
        first = True
        for row in rows:
            element = json.dumps(dict(zip(columns, row, strict=True)), indent=2)
            out.write(("[\n" if first else ",\n") + textwrap.indent(element, "  "))
            first = False
        out.write("[]\n" if first else "\n]\n")
        return
    if chosen == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return
    from rich.table import Table

    table = Table(*columns)
    count = 0
    for row in rows:
        table.add_row(*row)
        count += 1
    app.console.print(table)
    app.console.print(counted(count, noun))
