"""Commands about the feeds: ``build`` and ``serve``."""

from __future__ import annotations

from datetime import UTC, datetime

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
    from ..feeds.build import publish_feeds

    def waiting() -> None:
        app.console.print("Another build of these feeds is running; waiting for it to end.")

    report = publish_feeds(
        app.sessions(), app.settings, datetime.now(UTC), force=force, on_wait=waiting
    )
    out = app.settings.feeds.output_dir
    app.console.print(
        f"Feeds in {out}/: {report.documents} documents, {report.rendered} rendered, "
        f"{len(report.written)} files written, {len(report.removed)} removed."
    )
    for path in ("atom.xml", "rss.xml", "feed.json"):
        app.console.print(f"  {out / path}")
    for topic in report.failed_pings:
        app.console.print(f"WebSub hub did not accept {topic}; readers will poll", style="yellow")


@click.command()
@click.option("--host", help="Address to bind (default: web.host, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: web.port).")
@pass_app
@friendly_errors
def serve(app: App, host: str | None, port: int | None) -> None:
    """Serve the feeds (ETag, Last-Modified, 304, gzip), the index and the
    subscription pages with a production WSGI server (waitress).

    The same app runs under any WSGI server as publisher.web.wsgi:app.
    """
    from ..web.app import create_app
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
    wsgi = create_app(app.settings, app.sessions(), secret)
    app.console.print(f"Serving {app.settings.feeds.output_dir}/ on http://{host}:{port}/")
    serve_app(wsgi, web, host, port)
