"""Commands about the digest: ``digest render|test-send|send|status`` and ``preview``.

Each goes through the one compose path (:mod:`publisher.mail.compose`).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from ..words import counted
from .app import WHEN, App, friendly_errors, pass_app

if TYPE_CHECKING:
    from ..audience.recipients import Recipient
    from ..mail.send import SendReport

P = ParamSpec("P")
R = TypeVar("R")

_digest_options = [
    click.option("--name", help="Which digest of config.yaml (default: the first)."),
    click.option("--since", type=WHEN, help="Start of the window (default: the last digest)."),
    click.option("--until", type=WHEN, help="End of the window (default: now)."),
]


def digest_options(command: Callable[P, R]) -> Callable[P, R]:
    for option in reversed(_digest_options):
        command = option(command)
    return command


@click.group()
def digest() -> None:
    """Render, preview and send the email digest."""


def sample_recipient(app: App, address: str | None) -> Recipient:
    """The subscriber a rendering is for: a real one by address, else a made-up reader."""
    from .. import queries
    from ..audience.recipients import SAMPLE_RECIPIENT, recipient_of
    from ..errors import NotFound

    if address is None:
        return SAMPLE_RECIPIENT
    with app.sessions()() as session:
        found = queries.subscriber_by_email(session, address)
        if found is None:
            raise NotFound(f"no subscriber {address!r}; `publisher subscribers list` shows them")
        return recipient_of(found)


@digest.command()
@digest_options
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default="out/digest",
    show_default=True,
    help="Folder for digest.html, digest.txt, digest.eml and web.html.",
)
@click.option("--subscriber", help="Render as this subscriber gets it (default: a sample).")
@pass_app
@friendly_errors
def render(
    app: App,
    name: str | None,
    since: datetime | None,
    until: datetime | None,
    out: str,
    subscriber: str | None,
) -> None:
    """Write the upcoming digest as HTML, text and a .eml file any mail client opens."""
    import email
    import email.policy
    from email.message import EmailMessage

    from ..mail.compose import compose
    from ..mail.render import GMAIL_CLIP_BYTES, render_web_page
    from ..mail.window import digest_settings

    now = datetime.now(UTC)
    config = digest_settings(app.settings, name)
    recipient = sample_recipient(app, subscriber)
    with app.sessions()() as session:
        editions, composed = compose(session, app.settings, config, recipient, now, since, until)
    rendered = composed.rendered
    everyone = editions.template(())
    assert everyone is not None
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    parsed = email.message_from_bytes(composed.message, policy=email.policy.default)
    html = parsed.get_body(("html",))
    text = parsed.get_body(("plain",))
    assert isinstance(html, EmailMessage) and isinstance(text, EmailMessage)
    (folder / "digest.html").write_text(html.get_content(), encoding="utf-8")
    (folder / "digest.txt").write_text(text.get_content(), encoding="utf-8")
    (folder / "digest.eml").write_bytes(composed.message)
    web_page = render_web_page(everyone.rendered, app.settings)
    (folder / "web.html").write_text(web_page, encoding="utf-8")
    size = len(html.get_content().encode())
    what = (
        "no new post: the 'nothing new' note (empty: note)"
        if rendered.digest.is_note
        else counted(len(rendered.digest.posts), "post")
    )
    app.console.print(f"Digest '{config.name}': {what}, subject “{rendered.subject}”")
    app.console.print(
        f"HTML part {size / 1024:.1f} KB of Gmail's {GMAIL_CLIP_BYTES // 1024} KB"
        + (" — shrunk to summaries to fit its size budget" if rendered.digest.condensed else "")
    )
    for file in ("digest.html", "digest.txt", "digest.eml", "web.html"):
        app.console.print(f"  {folder / file}")
    # the same window: the preview of the default one may have nothing to show
    window = "".join(
        f" {flag} {when.astimezone(app.settings.site.zone):%Y-%m-%dT%H:%M}"
        for flag, when in (("--since", since), ("--until", until))
        if when is not None
    )
    app.console.print(f"Preview it as subscribers will see it: publisher preview{window}")


@digest.command(name="test-send")
@digest_options
@click.option("--to", "to", required=True, help="The address to send one message to.")
@pass_app
@friendly_errors
def test_send(
    app: App, name: str | None, since: datetime | None, until: datetime | None, to: str
) -> None:
    """Send the upcoming digest to one address over the configured SMTP server."""
    from ..mail.smtp import SmtpMailer
    from ..mail.testsend import send_test

    with SmtpMailer(app.settings.email.smtp) as mailer:
        composed = send_test(
            app.sessions(), app.settings, mailer, to, datetime.now(UTC), name, since, until
        )
    smtp = app.settings.email.smtp
    app.console.print(
        f"Sent “{composed.rendered.subject}” to {composed.recipient.email} via "
        f"{smtp.host}:{smtp.port} ({composed.message_id})."
    )


@digest.command()
@click.option("--name", help="Which digest of config.yaml (default: the first).")
@click.option("--dry-run", is_flag=True, help="Say who would get which edition; send nothing.")
@pass_app
@friendly_errors
def send(app: App, name: str | None, dry_run: bool) -> None:
    """Send the digest to every active subscriber (joins or resumes the open run).

    Ctrl-C or SIGTERM finish the messages in flight, record them and stop;
    run it again to go on. Several senders may share a run on PostgreSQL.
    """
    from ..mail.compose import secret_key
    from ..mail.plan import plan_send
    from ..mail.send import send_digest

    now = datetime.now(UTC)
    if dry_run:
        what, plan = plan_send(app.sessions(), app.settings, now, name)
        app.console.print(what + ":")
        for edition in plan:
            who = ", ".join(edition.topics) if edition.topics else "all topics"
            gets = (
                counted(edition.posts, "post") if edition.posts else "nothing (no post about them)"
            )
            app.console.print(
                f"  {counted(edition.subscribers, 'subscriber')} following {who}: {gets}"
            )
        return
    secret_key(app.settings, required=True)
    stop = threading.Event()
    with _stop_on_signals(app, stop), _progress(app) as progress:
        reports = send_digest(app.sessions(), app.settings, now, name, stop=stop, progress=progress)
    for report in reports:
        verb = "Sent" if report.created else f"Resumed run {report.run_id}:"
        app.console.print(
            f"{verb} “{report.subject}”: {report.sent} sent, {report.failed} failed, "
            f"{report.skipped} skipped (no post about their topics), {report.deferred} "
            f"deferred (4xx, retried), {report.earlier} done before."
            + (f" {report.reopened} refused kept to send again." if report.reopened else "")
        )
    last = reports[-1]
    if last.stopped:
        raise click.ClickException(f"{last.stopped} (the run stays open)")
    if not last.finished:
        app.console.print(
            f"Run {last.run_id} is still open (deliveries in flight elsewhere or waiting for "
            "a retry); `publisher digest status` shows it."
        )


@contextmanager
def _stop_on_signals(app: App, stop: threading.Event) -> Iterator[None]:
    """SIGTERM and Ctrl-C: finish and record the messages in flight, then stop."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            app.console.print(
                f"{signal.Signals(signum).name}: finishing the messages in flight, then "
                "stopping (the run stays open; send again to resume)"
            )
        stop.set()

    before = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


def _waiting(report: SendReport) -> str:
    assert report.waiting_until is not None
    left = report.total - report.done
    return (
        f"digest {report.name} run {report.run_id}: {left} deferred (4xx), waiting to retry "
        f"at {report.waiting_until:%H:%M} UTC; Ctrl-C stops, and the next send resumes"
    )


@contextmanager
def _progress(app: App) -> Iterator[Callable[[SendReport], None]]:
    """A rich progress bar on a terminal; otherwise a log line per batch (at most one a
    second)."""
    if not app.console.is_terminal:
        last = [0.0]

        def log_line(report: SendReport) -> None:
            if report.waiting_until is not None:
                app.console.print(_waiting(report))
            elif time.monotonic() - last[0] >= 1.0:
                last[0] = time.monotonic()
                app.console.print(
                    f"digest {report.name} run {report.run_id}: {report.done}/{report.total} "
                    f"done ({report.sent} sent, {report.failed} failed, {report.deferred} "
                    "deferred)"
                )

        yield log_line
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=app.console, transient=False) as bar:
        tasks: dict[int, Any] = {}
        started = time.monotonic()

        def update(report: SendReport) -> None:
            if report.run_id not in tasks:
                tasks[report.run_id] = bar.add_task(
                    f"{report.name} #{report.run_id}", total=report.total, detail="", rate=""
                )
            elapsed = max(time.monotonic() - started, 1e-6)
            bar.update(
                tasks[report.run_id],
                completed=report.done,
                detail=_waiting(report)
                if report.waiting_until
                else f"{report.sent} sent · {report.failed} failed · "
                f"{report.total - report.done} left",
                rate=f"{(report.sent + report.failed) / elapsed:,.0f}/s",
            )

        yield update


@digest.command()
@click.argument("name", required=False)
@click.option("--run", "run_id", type=int, help="Show this run only.")
@pass_app
@friendly_errors
def status(app: App, name: str | None, run_id: int | None) -> None:
    """Each run's deliveries by state, its uncertain deliveries and its last errors.

    Uncertain: `sending` when a sender stopped (crash, kill -9): the server
    may or may not have them. The next send gives them again, with the same
    Message-ID, so receivers can tell.
    """
    from ..mail.runs import run_statuses

    names = [d.name for d in app.settings.digests]
    if name is not None and name not in names:
        raise click.BadParameter(
            f"no digest {name!r} in {app.settings.source}; the digests are: "
            + (", ".join(names) or "none"),
            param_hint="NAME",
        )
    runs = run_statuses(app.sessions(), name, run_id)
    if not runs:
        app.console.print("No digest run yet.")
        return
    for run in runs:
        state = f"finished {run.finished_at:%Y-%m-%d %H:%M}" if run.finished_at else "open"
        counts = ", ".join(f"{n} {s}" for s, n in sorted(run.counts.items())) or "no deliveries"
        app.console.print(
            f"Run {run.run_id} of '{run.name}', {run.period_start:%Y-%m-%d %H:%M} – "
            f"{run.period_end:%Y-%m-%d %H:%M} UTC, {state}: {counts}"
        )
        if run.uncertain:
            app.console.print(
                f"  uncertain ({run.counts.get('sending', 0)}; resent with the same Message-ID "
                "by the next send):"
            )
            for row in run.uncertain:
                app.console.print(f"    {row.email} {row.message_id or ''} since {row.at:%H:%M:%S}")
        for row in run.errors:
            app.console.print(f"  {row.status.value} {row.email}: {row.error}")


@click.command()
@digest_options
@click.option("--subscriber", help="Show it as this subscriber gets it (default: a sample).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8001,
    show_default=True,
    help="Port on 127.0.0.1.",
)
@pass_app
@friendly_errors
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
    from ..mail.window import digest_settings
    from ..web.app import create_app
    from ..web.preview import PreviewSource
    from ..web.server import serve as serve_app

    digest_settings(app.settings, name)  # fail now, not on the first request
    recipient = sample_recipient(app, subscriber)
    source = PreviewSource(Path(app.config), name, since, until, recipient)
    wsgi = create_app(app.settings, feeds=False, preview=source)
    app.console.print(f"Previewing on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
    serve_app(wsgi, app.settings.web, "127.0.0.1", port)
