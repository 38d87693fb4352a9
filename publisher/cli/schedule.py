"""``publisher run``: the schedule (APScheduler), in the foreground."""

from __future__ import annotations

import click

from .app import App, friendly_errors, pass_app


@click.command()
@pass_app
@friendly_errors
def run(app: App) -> None:
    """Run the schedule: rebuild the feeds and send each digest on time (Ctrl-C stops)."""
    import logging

    from ..mail.compose import secret_key
    from ..scheduler import build_scheduler

    secret_key(app.settings, required=bool(app.settings.digests))
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
