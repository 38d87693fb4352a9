"""``publisher bounces ingest``: bounces, complaints and mailto: unsubscribes into the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from .app import App, friendly_errors, pass_app


@click.group()
def bounces() -> None:
    """Bounces and complaints."""


@bounces.command(name="ingest")
@click.argument("path", type=click.Path(path_type=Path))
@pass_app
@friendly_errors
def ingest(app: App, path: Path) -> None:
    """Read the DSNs, ARF complaints and unsubscribe requests at PATH (a message file,
    a Maildir or an mbox): hard bounces and complaints stop the subscriber's mail,
    soft bounces are counted. Safe to repeat: a report counts once."""
    from ..audience.bounces import ingest as read_in

    done = read_in(app.sessions(), app.settings, path, datetime.now(UTC))
    out = app.console
    out.print(
        f"{path}: {done.messages} messages: {done.hard} hard bounces, {done.soft} soft, "
        f"{done.complaints} complaints, {done.unsubscribes} unsubscribes, "
        f"{done.repeated} seen before, {done.other} other mail."
    )
    for change in done.suppressed:
        out.print(f"  {change}")
    if done.unmatched:
        out.print(f"{len(done.unmatched)} not matched to a subscriber:")
        for where, why in done.unmatched:
            out.print(f"  {where}: {why}")
