"""``publisher run`` (the scheduler, in the foreground) and ``publisher schedule`` (what it
will do, and what it did)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from .app import App, format_option, friendly_errors, pass_app, print_rows


@click.command()
@click.option("--once", is_flag=True, help="Run every due job once, then exit (for cron and CI).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines for people, or JSON lines for a log shipper.",
)
@pass_app
@friendly_errors
def run(app: App, once: bool, log_format: str) -> None:
    """Run the schedule: rebuild the feeds, send each newsletter on time (SIGTERM stops).

    On PostgreSQL several may run: one leads, the others wait to take over. On
    SQLite a second one refuses to start.
    """
    from ..mail.compose import secret_key
    from ..mail.render import check_subjects
    from ..schedule.events import configure_logging
    from ..schedule.leader import leadership_for
    from ..schedule.service import Service

    settings = app.settings
    # a subject that cannot be made stops the scheduler now, not at the first send
    check_subjects(settings, datetime.now(UTC))
    configure_logging("json" if log_format == "json" else "text", sys.stderr)
    factory = app.sessions()
    service = Service(settings, factory)
    leadership = leadership_for(app.engine, settings)
    if once:
        service.run_once(leadership)
        if service.failures:
            raise click.exceptions.Exit(1)
        return
    # fail now, not at the first send days later
    secret_key(settings, required=bool(settings.digests))
    service.run_forever(leadership, settings.scheduler.leader_poll_seconds)


@click.command()
@click.option("--count", default=3, show_default=True, help="Next runs shown per newsletter.")
@format_option
@pass_app
@friendly_errors
def schedule(app: App, count: int, output_format: str | None) -> None:
    """What `publisher run` will do when (local time and UTC), and each newsletter's last send."""
    from ..schedule.service import health_age
    from ..schedule.status import newsletter_states, next_runs, periodic_jobs
    from ..schedule.times import format_span, local

    settings = app.settings
    zone = settings.site.zone
    factory = app.sessions()
    now = datetime.now(UTC)
    runs = next_runs(settings, factory, now, count)
    states = newsletter_states(settings, factory)

    def utc(when: datetime | None) -> str:
        return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when else ""

    def here(when: datetime | None) -> str:
        return local(when, zone) if when else ""

    job_rows = [
        [job, what, "at start, then periodically", ""] for job, what in periodic_jobs(settings)
    ]
    job_rows += [[r.job, r.what, here(r.at), utc(r.at)] for r in runs]
    newsletter_rows = [
        [
            s.name,
            s.schedule,
            format_span(s.misfire_grace),
            here(s.due),
            s.outcome or "never scheduled",
            f"{here(s.window_start)} → {here(s.window_end)}" if s.window_end else "",
            str(s.sent),
            str(s.failed),
            s.reason or "",
        ]
        for s in states
    ]
    job_columns = ["job", "what", f"next ({zone.key})", "next (UTC)"]
    newsletter_columns = [
        "newsletter",
        "schedule",
        "grace",
        "last due",
        "outcome",
        "window",
        "sent",
        "failed",
        "note",
    ]
    if output_format == "json":  # one document, for scripts
        import json

        click.echo(
            json.dumps(
                {
                    "jobs": [dict(zip(job_columns, row, strict=True)) for row in job_rows],
                    "newsletters": [
                        dict(zip(newsletter_columns, row, strict=True)) for row in newsletter_rows
                    ],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    print_rows(app, job_columns, job_rows, output_format, "run")
    print_rows(app, newsletter_columns, newsletter_rows, output_format, "newsletter")
    health = settings.scheduler.health_file
    if health is not None and (output_format or "table") == "table":
        age = health_age(health, now)
        state = "never touched" if age is None else f"touched {format_span(age)} ago"
        app.console.print(f"Health file {health}: {state}")
