"""Commands about subscribers: ``subscribers add`` and ``subscribers list``."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from .app import App, format_option, friendly_errors, pass_app, print_rows


@click.group()
def subscribers() -> None:
    """Add and list digest subscribers."""


@subscribers.command(name="add")
@click.argument("address")
@click.option("--name", help="How to greet them.")
@click.option("--topic", "topics", multiple=True, help="A tag they follow (repeat; none: all).")
@click.option(
    "--newsletter",
    "newsletters",
    multiple=True,
    help="A digest of config.yaml they receive (repeat; default: all).",
)
@pass_app
@friendly_errors
def add_subscriber(
    app: App, address: str, name: str | None, topics: tuple[str, ...], newsletters: tuple[str, ...]
) -> None:
    """Subscribe ADDRESS (or add newsletters to, or rename, an active subscriber)."""
    from ..audience.subscribers import add_subscriber as add

    added = add(
        app.sessions(),
        app.settings,
        address,
        name,
        topics,
        newsletters or None,
        datetime.now(UTC),
    )
    app.console.print(f"{added}: subscribed" + (f" to {', '.join(topics)}" if topics else "."))


@subscribers.command(name="list")
@format_option
@pass_app
@friendly_errors
def list_subscribers(app: App, output_format: str | None) -> None:
    """List subscribers."""
    from .. import queries

    with app.sessions()() as session:
        rows = [
            (sub.email, sub.name or "", sub.status.value, ", ".join(t.name for t in sub.topics))
            for sub in queries.all_subscribers(session)
        ]
    print_rows(app, ("email", "name", "status", "topics"), rows, output_format, "subscriber")
