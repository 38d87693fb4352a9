"""The command line: a thin shell over the library.

Domain errors (:class:`PublisherError`) become one readable line and exit
status 1 here, and nowhere else; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import email
import email.policy
import functools
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from importlib import resources
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from . import db, importer, jobs, mailing, queries
from .config import DEFAULT_CONFIG, Settings, load_settings
from .errors import NotFound, PublisherError
from .mail import Recipient
from .models import Post, PostStatus
from .postfile import parse_when
from .render import render_digest, render_web_page
from .smtp import SmtpMailer

P = ParamSpec("P")
R = TypeVar("R")


class App:
    """What every command needs, made on first use (so --help needs no config)."""

    def __init__(self, config: str, debug: bool) -> None:
        self.config = config
        self.debug = debug
        # markup off: titles and subjects are printed as written, brackets and all
        self.console = Console(highlight=False, soft_wrap=True, markup=False)
        self._settings: Settings | None = None
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.settings.database.url or "")
        return self._engine

    def sessions(self, check: bool = True) -> sessionmaker[Session]:
        """Sessions on a database that is at the newest schema."""
        if check:
            db.check_schema(self.engine)
        return db.make_sessionmaker(self.engine)


def _friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a PublisherError into click's one-line error, unless --debug."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except PublisherError as e:
            app = click.get_current_context().find_object(App)
            if app is not None and app.debug:
                raise
            raise click.ClickException(str(e)) from e

    return wrapper


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    default=DEFAULT_CONFIG,
    show_default=True,
    envvar="PUBLISHER_CONFIG",
    help="The config file (or set PUBLISHER_CONFIG).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, config_path: str, debug: bool) -> None:
    """Publish news posts as feeds and an email digest."""
    ctx.obj = App(config_path, debug)


@cli.command()
@click.option("--sample", is_flag=True, help="Also import the shipped sample posts.")
@pass_app
@_friendly_errors
def init(app: App, sample: bool) -> None:
    """Create or upgrade the database; optionally load the sample posts."""
    db.upgrade(app.engine)
    app.console.print(f"Database ready at schema {db.head_revision()}: {app.engine.url!r}")
    if sample:
        folder = resources.files("publisher") / "sample"
        with resources.as_file(folder) as path:
            _run_import(app, str(path), force=False)


@cli.group(name="db")
def db_group() -> None:
    """Database schema."""


@db_group.command()
@pass_app
@_friendly_errors
def upgrade(app: App) -> None:
    """Bring the database to the newest schema (safe to repeat)."""
    before = db.current_revision(app.engine)
    db.upgrade(app.engine)
    after = db.head_revision()
    if before == after:
        app.console.print(f"Already at the newest schema ({after}).")
    else:
        app.console.print(f"Upgraded the database from {before or 'empty'} to {after}.")


@cli.command(name="import")
@click.argument("target")
@click.option("--force", is_flag=True, help="Re-render posts even if their source is unchanged.")
@pass_app
@_friendly_errors
def import_command(app: App, target: str, force: bool) -> None:
    """Import posts from a Markdown file, a folder of them, or an RSS/Atom feed (file or URL).

    All or nothing: if any post has a problem, every problem is listed and
    nothing is written. Importing again updates changed posts, never duplicates.
    """
    _run_import(app, target, force)


def _run_import(app: App, target: str, force: bool) -> None:
    report = importer.import_target(
        app.sessions(), target, app.settings, datetime.now(UTC), force=force
    )
    app.console.print(
        f"Imported {report.total} posts from {target}: {len(report.created)} new, "
        f"{len(report.updated)} updated, {len(report.unchanged)} unchanged."
    )


@cli.command()
@click.option("--force", is_flag=True, help="Render every document, even unchanged ones.")
@pass_app
@_friendly_errors
def build(app: App, force: bool) -> None:
    """Write the Atom, RSS and JSON feeds of the published posts into feeds.output_dir.

    Only documents whose posts changed are rendered, and only files whose bytes
    changed are rewritten.
    """
    report = jobs.publish_feeds(app.sessions(), app.settings, datetime.now(UTC), force=force)
    out = app.settings.feeds.output_dir
    app.console.print(
        f"Feeds in {out}/: {report.documents} documents, {report.rendered} rendered, "
        f"{len(report.written)} files written, {len(report.removed)} removed."
    )
    for path in ("atom.xml", "rss.xml", "feed.json"):
        app.console.print(f"  {out / path}")
    for topic in report.failed_pings:
        app.console.print(f"WebSub hub did not accept {topic}; readers will poll", style="yellow")


@cli.command()
@click.option("--host", help="Address to bind (default: web.host, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: web.port).")
@pass_app
@_friendly_errors
def serve(app: App, host: str | None, port: int | None) -> None:
    """Serve the feed folder over HTTP, with ETag, Last-Modified, 304 and gzip."""
    from werkzeug.serving import run_simple

    from .web import FeedApp

    web = app.settings.web
    host, port = host or web.host, port or web.port
    secret = web.secret_key
    if secret is None:
        app.console.print(
            f"{web.secret_key_env} is not set: serving the feeds only; unsubscribe "
            "and preference links will answer 503",
            style="yellow",
        )
    app.console.print(f"Serving {app.settings.feeds.output_dir}/ on http://{host}:{port}/")
    run_simple(host, port, FeedApp(app.settings, app.sessions(), secret), threaded=True)


class _When(click.ParamType[datetime]):
    """A date or date-time; without an offset it is in the site's time zone."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        app = ctx.find_object(App) if ctx else None
        zone = app.settings.site.zone if app else UTC
        try:
            return parse_when(value, zone).astimezone(UTC)  # type: ignore[arg-type]
        except ValueError as e:
            self.fail(str(e), param, ctx)


WHEN = _When()
_digest_options = [
    click.option("--name", help="Which digest of config.yaml (default: the first)."),
    click.option("--since", type=WHEN, help="Start of the window (default: the last digest)."),
    click.option("--until", type=WHEN, help="End of the window (default: now)."),
]


def digest_options(command: Callable[P, R]) -> Callable[P, R]:
    for option in reversed(_digest_options):
        command = option(command)
    return command


@cli.group()
def digest() -> None:
    """Render, preview and test-send the email digest."""


def _sample_recipient(app: App, email: str | None) -> Recipient:
    """The subscriber a rendering is for: a real one by address, else a made-up reader."""
    if email is None:
        return Recipient("reader@example.org", "Alex Reader")
    with app.sessions()() as session:
        found = queries.subscriber_by_email(session, email)
        if found is None:
            raise NotFound(f"no subscriber {email!r}; `publisher subscribers list` shows them")
        return Recipient(found.email, found.name, found.id, tuple(t.name for t in found.topics))


@digest.command()
@digest_options
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default="out/digest",
    show_default=True,
    help="Folder for digest.html, digest.txt and digest.eml.",
)
@click.option("--subscriber", help="Render as this subscriber gets it (default: a sample).")
@pass_app
@_friendly_errors
def render(
    app: App,
    name: str | None,
    since: datetime | None,
    until: datetime | None,
    out: str,
    subscriber: str | None,
) -> None:
    """Write the upcoming digest as HTML, text and a .eml file any mail client opens."""
    now = datetime.now(UTC)
    config = mailing.digest_settings(app.settings, name)
    recipient = _sample_recipient(app, subscriber)
    with app.sessions()() as session:
        built = mailing.build_digest(session, config, app.settings, now, since, until)
    built = mailing.edition_for(built, config, recipient)
    rendered = render_digest(built, config, app.settings)
    template = mailing.message_template(
        rendered, app.settings, now, mailing.secret_key(app.settings, required=False)
    )
    message = template.render(recipient)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    html = parsed.get_body(("html",))
    text = parsed.get_body(("plain",))
    assert isinstance(html, EmailMessage) and isinstance(text, EmailMessage)
    (folder / "digest.html").write_text(html.get_content(), encoding="utf-8")
    (folder / "digest.txt").write_text(text.get_content(), encoding="utf-8")
    (folder / "digest.eml").write_bytes(message)
    (folder / "web.html").write_text(render_web_page(rendered, app.settings), encoding="utf-8")
    size = len(html.get_content().encode())
    app.console.print(
        f"Digest '{config.name}': {len(built.posts)} posts, subject “{rendered.subject}”"
    )
    app.console.print(
        f"HTML part {size / 1024:.1f} KB of Gmail's 102 KB"
        + (" — shrunk to summaries to fit its size budget" if rendered.digest.condensed else "")
    )
    for file in ("digest.html", "digest.txt", "digest.eml", "web.html"):
        app.console.print(f"  {folder / file}")
    app.console.print("Preview it as subscribers will see it: publisher preview")


@digest.command(name="test-send")
@digest_options
@click.option("--to", "to", required=True, help="The address to send one message to.")
@pass_app
@_friendly_errors
def test_send(
    app: App, name: str | None, since: datetime | None, until: datetime | None, to: str
) -> None:
    """Send the upcoming digest to one address over the configured SMTP server."""
    with SmtpMailer(app.settings.email.smtp) as mailer:
        message_id, rendered = mailing.send_test(
            app.sessions(), app.settings, mailer, to, datetime.now(UTC), name, since, until
        )
    smtp = app.settings.email.smtp
    app.console.print(
        f"Sent “{rendered.subject}” to {to} via {smtp.host}:{smtp.port} ({message_id})."
    )


@digest.command()
@click.option("--name", help="Which digest of config.yaml (default: the first).")
@pass_app
@_friendly_errors
def send(app: App, name: str | None) -> None:
    """Send the digest to every active subscriber (resumes an interrupted send)."""
    mailing.secret_key(app.settings, required=True)
    with SmtpMailer(app.settings.email.smtp) as mailer:
        report = mailing.send_digest(app.sessions(), app.settings, mailer, datetime.now(UTC), name)
    verb = "Resumed" if report.resumed else "Sent"
    app.console.print(
        f"{verb} “{report.subject}”: {report.sent} sent, {report.failed} refused for good, "
        f"{report.skipped} skipped (no post about their topics), {report.earlier} done before."
    )
    if not report.finished:
        raise click.ClickException(
            f"stopped after {len(report.errors)} temporary errors (the last: "
            f"{report.errors[-1] if report.errors else 'none'}); run `publisher digest send` "
            "again to resume where it stopped"
        )


@cli.command()
@pass_app
@_friendly_errors
def run(app: App) -> None:
    """Run the schedule: rebuild the feeds and send each digest on time (Ctrl-C stops)."""
    import logging

    from .scheduler import build_scheduler

    mailing.secret_key(app.settings, required=bool(app.settings.digests))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    scheduler = build_scheduler(app.settings, app.sessions())
    for job in scheduler.get_jobs():
        app.console.print(f"  {job.name}: {job.trigger}")
    app.console.print("Running; Ctrl-C stops.")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass


@cli.command()
@digest_options
@click.option("--subscriber", help="Show it as this subscriber gets it (default: a sample).")
@click.option("--port", type=int, default=8001, show_default=True, help="Port on 127.0.0.1.")
@pass_app
@_friendly_errors
def preview(
    app: App,
    name: str | None,
    since: datetime | None,
    until: datetime | None,
    subscriber: str | None,
    port: int,
) -> None:
    """Serve the upcoming digest on 127.0.0.1: desktop and phone, text, headers, size.

    The page reloads by itself when a template, the config or a post changes.
    """
    from werkzeug.serving import run_simple

    from .preview import PreviewApp

    mailing.digest_settings(app.settings, name)  # fail now, not on the first request
    recipient = _sample_recipient(app, subscriber)
    preview_app = PreviewApp(app.config, name, since, until, recipient)
    app.console.print(f"Previewing on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
    run_simple("127.0.0.1", port, preview_app, threaded=True)


@cli.group()
def subscribers() -> None:
    """Add and list digest subscribers."""


@subscribers.command(name="add")
@click.argument("address")
@click.option("--name", help="How to greet them.")
@click.option("--topic", "topics", multiple=True, help="A tag they follow (repeat; none: all).")
@pass_app
@_friendly_errors
def add_subscriber(app: App, address: str, name: str | None, topics: tuple[str, ...]) -> None:
    """Subscribe ADDRESS to the digest (or update their name and topics)."""
    added = mailing.add_subscriber(app.sessions(), address, name, topics, datetime.now(UTC))
    app.console.print(f"{added}: subscribed" + (f" to {', '.join(topics)}" if topics else "."))


@subscribers.command(name="list")
@pass_app
@_friendly_errors
def list_subscribers(app: App) -> None:
    """List subscribers."""
    table = Table("email", "name", "status", "topics")
    with app.sessions()() as session:
        found = queries.all_subscribers(session)
        for sub in found:
            table.add_row(
                sub.email, sub.name or "", sub.status.value, ", ".join(t.name for t in sub.topics)
            )
    app.console.print(table)
    app.console.print(f"{len(found)} subscriber{'' if len(found) == 1 else 's'}")


@cli.group()
def posts() -> None:
    """List, show, publish and unpublish posts."""


def _local(settings: Settings, when: datetime | None) -> str:
    return when.astimezone(settings.site.zone).strftime("%Y-%m-%d %H:%M") if when else "—"


@posts.command(name="list")
@click.option(
    "--status", type=click.Choice([s.value for s in PostStatus]), help="Only this status."
)
@click.option("--tag", help="Only posts with this tag (name or slug).")
@click.option("--author", help="Only posts by this author (name or slug).")
@pass_app
@_friendly_errors
def list_posts(app: App, status: str | None, tag: str | None, author: str | None) -> None:
    """List posts, newest first."""
    with app.sessions()() as session:
        found = queries.listed_posts(
            session, PostStatus(status) if status else None, tag=tag, author=author
        )
        table = Table("status")
        table.add_column("date", no_wrap=True)
        # the slug is what other commands take: wrap it, never cut it short
        table.add_column("slug", overflow="fold", min_width=24)
        table.add_column("title", ratio=2)
        table.add_column("author")
        for post in found:
            table.add_row(
                post.status.value,
                _local(app.settings, post.published_at),
                post.slug,
                post.title,
                post.author.name if post.author else "",
            )
    app.console.print(table)
    app.console.print(f"{len(found)} post{'' if len(found) == 1 else 's'}")


def _get_post(session: Session, slug: str) -> Post:
    post = queries.post_by_slug(session, slug)
    if post is None:
        raise NotFound(f"no post with slug {slug!r}; `publisher posts list` shows them")
    return post


@posts.command()
@click.argument("slug")
@pass_app
@_friendly_errors
def show(app: App, slug: str) -> None:
    """Show one post: its fields and rendered HTML."""
    with app.sessions()() as session:
        post = _get_post(session, slug)
        rows: list[tuple[str, Any]] = [
            ("id", post.uid),
            ("slug", post.slug),
            ("title", post.title),
            ("status", post.status.value),
            ("published", _local(app.settings, post.published_at)),
            ("updated", _local(app.settings, post.updated_at)),
            ("author", post.author.name if post.author else ""),
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
        click.echo(post.body_html)


@posts.command()
@click.argument("slug")
@click.option("--at", "at", help="Publish at this time instead (ISO date), making it scheduled.")
@pass_app
@_friendly_errors
def publish(app: App, slug: str, at: str | None) -> None:
    """Publish a post now (or schedule it with --at)."""
    now = datetime.now(UTC)
    when = None
    if at is not None:
        try:
            when = parse_when(at, app.settings.site.zone)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--at") from e
    with db.transaction(app.sessions()) as session:
        post = _get_post(session, slug)
        if when is not None:
            post.published_at = when
        elif post.published_at is None:
            post.published_at = now
        post.updated_at = post.updated_at or post.published_at
        post.status = PostStatus.SCHEDULED if post.published_at > now else PostStatus.PUBLISHED
        state, at_text = post.status.value, _local(app.settings, post.published_at)
    app.console.print(f"{slug}: {state}, dated {at_text}.")


@posts.command()
@click.argument("slug")
@pass_app
@_friendly_errors
def unpublish(app: App, slug: str) -> None:
    """Make a post a draft again: it leaves the feeds at the next build."""
    with db.transaction(app.sessions()) as session:
        _get_post(session, slug).status = PostStatus.DRAFT
    app.console.print(f"{slug}: draft.")


def main() -> None:
    cli(prog_name="publisher")
