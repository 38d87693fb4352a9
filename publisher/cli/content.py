"""Commands about posts: ``init``, ``db upgrade``, ``import`` and ``posts``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from ..words import counted
from .app import WHEN, App, format_option, friendly_errors, pass_app, print_rows

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..config import Settings
    from ..models import Post


@click.command()
@click.option("--sample", is_flag=True, help="Also import the shipped sample posts.")
@pass_app
@friendly_errors
def init(app: App, sample: bool) -> None:
    """Create or upgrade the database; optionally load the sample posts."""
    from importlib import resources

    from .. import db

    db.upgrade(app.engine, newsletters=[d.name for d in app.settings.digests])
    click.echo(f"Database ready at schema {db.head_revision()}: {app.engine.url!r}")
    if sample:
        folder = resources.files("publisher") / "sample"
        with resources.as_file(folder) as path:
            _run_import(app, str(path), force=False)


@click.group(name="db")
def db_group() -> None:
    """Database schema."""


@db_group.command()
@pass_app
@friendly_errors
def upgrade(app: App) -> None:
    """Bring the database to the newest schema (safe to repeat)."""
    from .. import db

    before = db.current_revision(app.engine)
    db.upgrade(app.engine, newsletters=[d.name for d in app.settings.digests])
    after = db.head_revision()
    if before == after:
        click.echo(f"Already at the newest schema ({after}).")
    else:
        click.echo(f"Upgraded the database from {before or 'empty'} to {after}.")


@db_group.command()
@click.argument("target_url", metavar="TARGET_URL")
@pass_app
@friendly_errors
def copy(app: App, target_url: str) -> None:
    """Copy every row of the database into another, empty one (e.g. from SQLite to
    postgresql+psycopg://user@host/db when a deployment outgrows one machine).

    All or nothing: the target gets this version's schema and the rows in one
    transaction. Stop the scheduler, senders and web server first; afterwards set
    database.url to TARGET_URL.
    """
    from .. import db
    from ..dbcopy import absolute_url, copy_database

    # a relative SQLite path is the working directory's, as for any argument: the URL
    # printed is absolute, so database.url can be set to it from anywhere
    target = db.make_engine(absolute_url(target_url), named="TARGET_URL")
    shown = sys.stderr.isatty()

    def progress(table: str, copied: int) -> None:
        click.echo(f"\r  {table:<22} {copied:>10,}", nl=False, err=True)

    try:
        report = copy_database(
            app.engine,
            target,
            newsletters=[d.name for d in app.settings.digests],
            progress=progress if shown else None,
        )
    finally:
        target.dispose()
    if shown:
        click.echo("\r" + " " * 36 + "\r", nl=False, err=True)
    for table, rows in report.rows.items():
        click.echo(f"  {table:<22} {rows:>10,}")
    hidden = " (its password not shown)" if target.url.password else ""
    click.echo(
        f"Copied {report.total:,} rows into {target.url!r}{hidden}. Set database.url in "
        "config.yaml (or PUBLISHER_DATABASE_URL) to it, then start the publisher again."
    )


@click.command(name="import")
@click.argument("target")
@click.option("--force", is_flag=True, help="Re-render posts even if their source is unchanged.")
@click.option(
    "--build",
    "then_build",
    is_flag=True,
    help="Then build the feeds, as `publisher build` does (one start-up for both).",
)
@pass_app
@friendly_errors
def import_command(app: App, target: str, force: bool, then_build: bool) -> None:
    """Import posts from a Markdown file, a folder of them, or an RSS/Atom feed (file or URL).

    All or nothing: if any post has a problem, every problem is listed and
    nothing is written. Importing again updates changed posts, never duplicates.
    """
    key = None
    if then_build:
        from ..feeds.stamp import config_key

        key = config_key(app.config)  # before the config is read, as `build` takes it
    _run_import(app, target, force)
    if then_build:
        from .feeds import run_build

        run_build(app, datetime.now(UTC), force=False, key=key)


def _run_import(app: App, target: str, force: bool) -> None:
    from ..content import importer

    report = importer.import_target(
        app.sessions(), target, app.settings, datetime.now(UTC), force=force
    )
    click.echo(
        f"Imported {counted(report.total, 'post')} from {target}: {len(report.created)} new, "
        f"{len(report.updated)} updated, {len(report.unchanged)} unchanged."
    )
    for note in report.notes:
        app.console.print(f"  {note}", style="yellow", markup=False, highlight=False)


@click.group()
def posts() -> None:
    """List, show, publish and unpublish posts."""


def _status_now(status: str, when: datetime | None, now: datetime) -> str:
    """A post's status as readers see it now: one scheduled whose time has come is
    published, one published with a date still to come is scheduled."""
    if status == "draft" or when is None:
        return status
    return "published" if when <= now else "scheduled"


def _local(settings: Settings, when: datetime | None) -> str:
    return when.astimezone(settings.site.zone).strftime("%Y-%m-%d %H:%M") if when else "—"


@posts.command(name="list")
@click.option(
    "--status", type=click.Choice(["draft", "scheduled", "published"]), help="Only this status."
)
@click.option("--tag", help="Only posts with this tag (name or slug).")
@click.option("--author", help="Only posts by this author (name or slug).")
@format_option
@pass_app
@friendly_errors
def list_posts(
    app: App, status: str | None, tag: str | None, author: str | None, output_format: str | None
) -> None:
    """List posts, newest first."""
    from ..sqlitereads import listed_posts, open_store

    found: list[Any] | None = None
    # scheduled and published are told apart by the date, as readers see them now
    stored = "draft" if status == "draft" else None
    with open_store(app.settings.database.url or "") as connection:
        if connection is not None:  # SQLite at this schema: read without SQLAlchemy
            found = listed_posts(connection, stored, tag=tag, author=author)
    if found is None:
        from .. import queries
        from ..content.values import PostStatus

        with app.sessions()() as session:
            found = queries.listed_posts(
                session, PostStatus(stored) if stored else None, tag=tag, author=author
            )
    now = datetime.now(UTC)
    rows = [
        (
            shown,
            _local(app.settings, post.published_at),
            post.slug,
            post.title,
            post.author or "",
        )
        for post in found
        if (shown := _status_now(str(post.status), post.published_at, now)) == status
        or status is None
    ]
    print_rows(app, ("status", "date", "slug", "title", "author"), rows, output_format, "post")
    if not rows and (tag or author or status):
        asked = " and ".join(
            f"{name} {value!r}"
            for name, value in (("status", status), ("tag", tag), ("author", author))
            if value
        )
        click.echo(f"No post with {asked} (a tag or author by its name or slug).", err=True)


def _get_post(session: Session, slug: str) -> Post:
    from .. import queries
    from ..errors import NotFound

    post = queries.post_by_slug(session, slug)
    if post is None:
        raise NotFound(f"no post with slug {slug!r}; `publisher posts list` shows them")
    return post


@posts.command()
@click.argument("slug")
@pass_app
@friendly_errors
def show(app: App, slug: str) -> None:
    """Show one post: its fields and its HTML, as it goes out."""
    with app.sessions()() as session:
        post = _get_post(session, slug)
        rows: list[tuple[str, Any]] = [
            ("id", post.uid),
            ("slug", post.slug),
            ("title", post.title),
            ("status", post.status.value),
            ("published", _local(app.settings, post.published_at)),
            ("updated", _local(app.settings, post.updated_at)),
            ("author", _author_line(post)),
            ("tags", ", ".join(t.name for t in post.tags)),
            ("summary", post.summary or ""),
            ("source", post.source_path or ""),
        ]
        rows += [
            (f"attachment {i}", f"{a.title or ''} <{a.url}> {a.media_type} {a.length or ''}")
            for i, a in enumerate(post.attachments, start=1)
        ]
        for name, value in rows:
            click.echo(f"{name:>12}: {value}")
        click.echo()
        from ..content.sanitize import sanitize_html

        click.echo(sanitize_html(post.body_html))  # as readers get it (stored as rendered)


def _author_line(post: Post) -> str:
    """The author as stored: name, role, organisation, email, then the bio."""
    author = post.author
    if author is None:
        return ""
    parts = [author.name, author.role, author.organisation, author.email and f"<{author.email}>"]
    line = ", ".join(part for part in parts if part)
    return f"{line}\n{'':>14}{author.bio}" if author.bio else line


@posts.command()
@click.argument("slug")
@click.option(
    "--at", "when", type=WHEN, help="Publish at this time instead (ISO date), making it scheduled."
)
@pass_app
@friendly_errors
def publish(app: App, slug: str, when: datetime | None) -> None:
    """Publish a post now (or schedule it with --at).

    A post dated in the past keeps its date; one without a date, or dated still to
    come (scheduled), is dated now.
    """
    from .. import db
    from ..content.values import PostStatus

    now = datetime.now(UTC)
    with db.transaction(app.sessions()) as session:
        post = _get_post(session, slug)
        before = (post.status, post.published_at)
        if when is not None:
            post.published_at = when
        elif post.published_at is None or post.published_at > now:  # now, not its date to come
            post.published_at = now
        post.updated_at = post.updated_at or post.published_at
        post.status = PostStatus.SCHEDULED if post.published_at > now else PostStatus.PUBLISHED
        state, at_text = post.status.value, _local(app.settings, post.published_at)
        source = post.source_path if (post.status, post.published_at) != before else None
    click.echo(f"{slug}: {state}, dated {at_text}.")
    _warn_file_decides(source, f"status: {state}` and `date: {at_text}")


@posts.command()
@click.argument("slug")
@pass_app
@friendly_errors
def unpublish(app: App, slug: str) -> None:
    """Make a post a draft again: it leaves the feeds at the next build."""
    from .. import db
    from ..content.values import PostStatus

    with db.transaction(app.sessions()) as session:
        post = _get_post(session, slug)
        source = post.source_path if post.status is not PostStatus.DRAFT else None
        post.status = PostStatus.DRAFT
    click.echo(f"{slug}: draft.")
    _warn_file_decides(source, "status: draft")


def _warn_file_decides(source: str | None, fields: str) -> None:
    """A post made from a file takes the file's status and date again when the file
    is imported after a change: say so, and how to make this last."""
    from ..content.matching import is_post_file

    if source and is_post_file(source):
        click.echo(
            f"Note: the post comes from {source}; an import of that file after it "
            f"changes sets the status and date the file gives. Write `{fields}` in it "
            "to keep these.",
            err=True,
        )
