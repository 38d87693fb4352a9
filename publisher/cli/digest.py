"""Commands about the digest: ``digest render|test-send|send`` and ``preview``.

Each goes through the one compose path (:mod:`publisher.mail.compose`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import click

from .app import WHEN, App, friendly_errors, pass_app

if TYPE_CHECKING:
    from ..audience.recipients import Recipient

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
    app.console.print(
        f"Digest '{config.name}': {len(rendered.digest.posts)} posts, subject “{rendered.subject}”"
    )
    app.console.print(
        f"HTML part {size / 1024:.1f} KB of Gmail's {GMAIL_CLIP_BYTES // 1024} KB"
        + (" — shrunk to summaries to fit its size budget" if rendered.digest.condensed else "")
    )
    for file in ("digest.html", "digest.txt", "digest.eml", "web.html"):
        app.console.print(f"  {folder / file}")
    app.console.print("Preview it as subscribers will see it: publisher preview")


@digest.command(name="test-send")
@digest_options
@click.option("--to", "to", required=True, help="The address to send one message to.")
@pass_app
@friendly_errors
def test_send(
    app: App, name: str | None, since: datetime | None, until: datetime | None, to: str
) -> None:
    """Send the upcoming digest to one address over the configured SMTP server."""
    from ..mail.send import send_test
    from ..mail.smtp import SmtpMailer

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
@pass_app
@friendly_errors
def send(app: App, name: str | None) -> None:
    """Send the digest to every active subscriber (resumes an interrupted send)."""
    from ..mail.compose import secret_key
    from ..mail.send import send_digest
    from ..mail.smtp import SmtpMailer

    secret_key(app.settings, required=True)
    with SmtpMailer(app.settings.email.smtp) as mailer:
        report = send_digest(app.sessions(), app.settings, mailer, datetime.now(UTC), name)
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


@click.command()
@digest_options
@click.option("--subscriber", help="Show it as this subscriber gets it (default: a sample).")
@click.option("--port", type=int, default=8001, show_default=True, help="Port on 127.0.0.1.")
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
