"""Commands about subscribers: add, list, show, remove, reactivate, import, export,
and the data-protection pair export-person and erase."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click

from .app import WHEN, App, format_option, friendly_errors, pass_app, print_rows


@click.group()
def subscribers() -> None:
    """Subscribers: add, list, show, remove, reactivate, import, export, erase."""


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
@click.option(
    "--consent",
    "consent_text",
    default="Added by staff, who hold their consent.",
    show_default=True,
    help="What they agreed to, and where (kept as their consent record).",
)
@pass_app
@friendly_errors
def add_subscriber(
    app: App,
    address: str,
    name: str | None,
    topics: tuple[str, ...],
    newsletters: tuple[str, ...],
    consent_text: str,
) -> None:
    """Subscribe ADDRESS (or add newsletters to, or rename, an active subscriber).

    Never brings back someone who unsubscribed, bounced, complained or was
    erased: see `subscribers reactivate`.
    """
    from ..audience.subscribers import add_subscriber as add

    added = add(
        app.sessions(),
        app.settings,
        address,
        name,
        topics,
        newsletters or None,
        datetime.now(UTC),
        consent_text,
    )
    what = ", ".join(newsletters) if newsletters else "every newsletter"
    app.console.print(
        f"{added}: subscribed to {what}" + (f" (topics: {', '.join(topics)})" if topics else ".")
    )


#: the subscriber states (models.SubscriberStatus; written out: the models load lazily)
STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")


@subscribers.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@click.option("--newsletter", help="Only those who receive this newsletter.")
@format_option
@pass_app
@friendly_errors
def list_subscribers(
    app: App, status: str | None, newsletter: str | None, output_format: str | None
) -> None:
    """List subscribers, with their newsletters and topics."""
    from .. import queries
    from ..audience.choices import newsletter_names
    from ..errors import NotFound
    from ..models import SubscriberStatus

    wanted = SubscriberStatus(status) if status else None
    names = newsletter_names(app.settings)
    if newsletter is not None and newsletter not in names:
        raise NotFound(f"no newsletter {newsletter!r} in the config; it has: {', '.join(names)}")

    def rows() -> Iterator[tuple[str, ...]]:
        # streamed: a batch of subscribers at a time from the store, a row at a time out
        with app.sessions()() as session:
            for sub in queries.iter_subscribers(session, wanted, newsletter):
                current = [s for s in sub.subscriptions if s.unsubscribed_at is None]
                yield (
                    sub.email,
                    sub.name or "",
                    sub.status.value,
                    "; ".join(
                        f"{s.newsletter} ({', '.join(t.name for t in s.topics) or 'all topics'})"
                        for s in current
                    ),
                    f"{sub.created_at:%Y-%m-%d}",
                )

    columns = ("email", "name", "status", "newsletters", "since")
    print_rows(app, columns, rows(), output_format, "subscriber")


@subscribers.command(name="show")
@click.argument("address")
@pass_app
@friendly_errors
def show_subscriber(app: App, address: str) -> None:
    """Show ADDRESS: status, newsletters and topics, consents and every event."""
    from rich.table import Table

    from ..audience.staff import subscriber_details

    found = subscriber_details(app.sessions(), address)
    zone = app.settings.site.zone

    def local(when: datetime | None) -> str:
        return f"{when.astimezone(zone):%Y-%m-%d %H:%M}" if when else ""

    out = app.console
    out.print(f"{found.email}  {found.name or ''}".rstrip())
    out.print(f"status: {found.status.value}   subscriber since {local(found.created_at)}")
    for choice in found.choices:
        out.print(f"receives {choice.newsletter}: {', '.join(choice.topics) or 'all topics'}")
    for newsletter, when in found.left:
        out.print(f"left {newsletter} on {local(when)}")
    consents = Table("agreed", "how", "confirmed", "from", "text", title="Consent")
    for c in found.consents:
        where = " ".join(x for x in (c.page, c.client_address) if x)
        consents.add_row(local(c.at), c.method, local(c.confirmed_at), where, c.text)
    out.print(consents)
    events = Table("when", "event", "newsletter", "detail", title="Events")
    for e in found.events:
        events.add_row(local(e.at), e.kind, e.newsletter or "", e.detail or "")
    out.print(events)


@subscribers.command(name="remove")
@click.argument("address")
@click.option("--newsletter", help="Only from this newsletter (default: from all).")
@pass_app
@friendly_errors
def remove_subscriber(app: App, address: str, newsletter: str | None) -> None:
    """Unsubscribe ADDRESS on their behalf (the record stays; `erase` deletes it)."""
    from ..audience.staff import remove_subscriber as remove

    email = remove(app.sessions(), address, newsletter, datetime.now(UTC))
    app.console.print(f"{email}: unsubscribed from {newsletter or 'every newsletter'}.")


@subscribers.command(name="reactivate")
@click.argument("address")
@click.option("--note", help="Why (kept with the event), e.g. 'asked by phone on 3 May'.")
@pass_app
@friendly_errors
def reactivate(app: App, address: str, note: str | None) -> None:
    """Make an unsubscribed, bounced or complained ADDRESS active again (knowingly)."""
    from ..audience.staff import reactivate as undo

    email = undo(app.sessions(), address, datetime.now(UTC), note)
    app.console.print(f"{email}: active again.")


@subscribers.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--all-or-nothing/--skip-bad",
    default=True,
    show_default=True,
    help="Refuse the whole file if any row is bad, or import the good rows.",
)
@click.option("--consent-date", type=WHEN, help="Consent date for rows that give none.")
@click.option("--consent-text", help="What they agreed to (kept as their consent record).")
@pass_app
@friendly_errors
def import_subscribers(
    app: App,
    file: Path,
    all_or_nothing: bool,
    consent_date: datetime | None,
    consent_text: str | None,
) -> None:
    """Import subscribers from a CSV FILE (columns: address, name, newsletters, topics,
    consent date, status). Never re-activates anyone; erased addresses are skipped."""
    from ..audience.csvimport import import_csv
    from ..errors import ContentError, ImportFailed

    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ImportFailed([ContentError(str(file), f"cannot be read as UTF-8: {e}")]) from e
    report = import_csv(
        app.sessions(),
        app.settings,
        text,
        str(file),
        datetime.now(UTC),
        all_or_nothing,
        consent_text,
        consent_date,
    )
    out = app.console
    out.print(
        f"{file}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged."
    )
    if report.kept:
        out.print(f"{len(report.kept)} kept as they were (an import never re-activates anyone):")
        for line, email, status in report.kept:
            out.print(f"  {file}:{line}: {email} is {status}")
    if report.suppressed:
        lines = ", ".join(str(n) for n in report.suppressed)
        out.print(f"{len(report.suppressed)} skipped, erased at their request: lines {lines}")
    if report.bad:
        out.print(f"{len(report.bad)} bad rows skipped:")
        for error in report.bad:
            out.print(f"  {error}")


@subscribers.command(name="export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@pass_app
@friendly_errors
def export_subscribers(app: App, file: Path | None) -> None:
    """Write every subscriber as CSV to FILE (default: standard output), in the columns
    `subscribers import` reads."""
    from ..audience.export import write_csv

    if file is None:
        write_csv(app.sessions(), sys.stdout)
        return
    with file.open("w", encoding="utf-8", newline="") as out:
        count = write_csv(app.sessions(), out)
    app.console.print(f"{count} subscribers written to {file}.")


@subscribers.command(name="export-person")
@click.argument("address")
@pass_app
@friendly_errors
def export_person(app: App, address: str) -> None:
    """Print everything held about ADDRESS as JSON (for a subject access request)."""
    from ..audience.staff import export_person as export

    click.echo(json.dumps(export(app.sessions(), address), indent=2, ensure_ascii=False))


@subscribers.command(name="erase")
@click.argument("address")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
@friendly_errors
def erase(app: App, address: str, yes: bool) -> None:
    """Delete everything held about ADDRESS (right to erasure); only a salted hash of
    the address is kept, so no import can bring it back."""
    from ..addresses import normalise_address
    from ..audience.staff import erase_person

    email = normalise_address(address)
    if not yes:
        click.confirm(f"Delete everything held about {email}? This cannot be undone", abort=True)
    if erase_person(app.sessions(), email, datetime.now(UTC)):
        app.console.print(f"{email}: erased; its salted hash is on the suppression list.")
    else:
        app.console.print(
            f"{email}: nothing was held; its salted hash is now on the suppression list."
        )
