"""Commands about the feeds: ``build`` and ``serve``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from .app import App, friendly_errors, pass_app


@click.command()
@click.option("--force", is_flag=True, help="Render every document, even unchanged ones.")
@pass_app
@friendly_errors
def build(app: App, force: bool) -> None:
    """Write the Atom, RSS and JSON feeds of the published posts into feeds.output_dir.

    Only documents whose posts changed are rendered, and only files whose bytes
    changed are rewritten.
    """
    from ..feeds.stamp import check_unchanged, config_key

    now = datetime.now(UTC)
    # nothing changed since the last build: known from its stamp, before the
    # config, the database layer and the planner are loaded
    unchanged = None if force else check_unchanged(app.config, now)
    if unchanged is not None:
        _print_report(unchanged.output_dir, unchanged.documents, 0, 0, 0)
        return
    key = config_key(app.config)  # before the config is read: a change after it shows next time
    run_build(app, now, force, key)


def run_build(app: App, now: datetime, force: bool, key: str | None) -> None:
    """The full build and its report (``build``, and ``import --build``).

    :param key: the config file's :func:`~publisher.feeds.stamp.config_key`,
        taken before the config was read, for the build's stamp.
    """
    from ..feeds.build import publish_feeds

    def waiting() -> None:
        click.echo("Another build of these feeds is running; waiting for it to end.")

    report = publish_feeds(
        app.sessions(), app.settings, now, force=force, on_wait=waiting, stamp_key=key
    )
    _print_report(
        app.settings.feeds.output_dir,
        report.documents,
        report.rendered,
        len(report.written),
        len(report.removed),
    )
    for topic in report.failed_pings:
        app.console.print(f"WebSub hub did not accept {topic}; readers will poll", style="yellow")


def _print_report(out: Path, documents: int, rendered: int, written: int, removed: int) -> None:
    click.echo(
        f"Feeds in {out}/: {documents} documents, {rendered} rendered, "
        f"{written} files written, {removed} removed."
    )
    for path in ("atom.xml", "rss.xml", "feed.json"):
        click.echo(f"  {out / path}")


@click.command()
@click.option("--host", help="Address to bind (default: web.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: web.port).")
@pass_app
@friendly_errors
def serve(app: App, host: str | None, port: int | None) -> None:
    """Serve the feeds (ETag, Last-Modified, 304, gzip), the index and the
    subscription pages with a production WSGI server (waitress).

    The same app runs under any WSGI server as publisher.web.wsgi:app.
    """
    from ..web.app import finish_sending, public_app
    from ..web.server import serve as serve_app

    web = app.settings.web
    host, port = host or web.host, port or web.port
    secret = web.secret_key
    if secret is None:
        app.console.print(
            f"{web.secret_key_env} is not set: serving the feeds only; the subscribe, "
            "unsubscribe and preference pages will answer 503",
            style="yellow",
        )
    wsgi = public_app(app.settings)
    app.console.print(f"Serving {app.settings.feeds.output_dir}/ on http://{host}:{port}/")
    serve_app(wsgi, web, host, port)
    # stopped (Ctrl-C, SIGTERM): the confirmations still queued go out before the exit
    from ..web.confirmation import DRAIN_SECONDS

    left = finish_sending(wsgi, DRAIN_SECONDS)
    if left:
        app.console.print(
            f"{left} confirmation emails were not sent within {DRAIN_SECONDS:.0f} s; "
            "those readers can ask again on the subscribe form",
            style="yellow",
        )
