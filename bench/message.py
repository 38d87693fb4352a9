"""Message compiler benchmark: one reader's message from the compiled sample digest.

Prints the median time per message (of 5 runs of N messages each) for readers
with a short ASCII name and with a long non-ASCII name (encoded-words in To,
a greeting wrapped per reader), beside the standard library building the same
message per reader (``EmailMessage`` with both parts, ``as_bytes``), and the ratio.

    python bench/message.py [--messages N]
"""

from __future__ import annotations

import argparse
import email.policy
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from importlib import resources
from pathlib import Path

from publisher import db
from publisher.audience.recipients import Recipient
from publisher.config import parse_settings
from publisher.content.importer import import_target
from publisher.mail.compose import Editions, build_digest
from publisher.mail.message import MessageTemplate

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SINCE = datetime(2019, 1, 1, tzinfo=UTC)
CONFIG = """\
site: {title: International Civil Society Centre, base_url: "https://icscentre.org/",
       timezone: Europe/Berlin, postal_address: "Agricolastraße 26, 10555 Berlin, Germany"}
email: {sender: "International Civil Society Centre <news@icscentre.org>"}
digests: [{name: weekly, schedule: "0 9 * * MON"}]
"""
READERS = {
    "short ASCII name": "Alex Reader",
    "long non-ASCII name": "Maria da Conceição Magalhães Gonçalves de Araújo e Sá Brandã",
}


def median_seconds(run: Callable[[int], None], count: int) -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        run(count)
        times.append((time.perf_counter() - start) / count)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    count = parser.parse_args().messages
    with tempfile.TemporaryDirectory() as tmp:
        settings = parse_settings(CONFIG, source="bench.yaml", base_dir=Path(tmp))
        engine = db.make_engine(f"sqlite:///{tmp}/bench.db")
        db.upgrade(engine)
        sessions = db.make_sessionmaker(engine)
        with resources.as_file(resources.files("publisher") / "sample") as sample:
            import_target(sessions, str(sample), settings, NOW)
        config = settings.digests[0]
        with sessions() as session:
            digest = build_digest(session, config, settings, NOW, since=SINCE)
        template = Editions(digest, config, settings, NOW, "bench-key").template(())
        assert template is not None
        engine.dispose()

    print(f"{count} messages per run, median of 5 runs, per message:")
    for label, name in READERS.items():
        ours, theirs = compare(template, name, count)
        print(
            f"  {label:20} compiled: {ours * 1e6:7.1f} µs   standard library per reader: "
            f"{theirs * 1e6:8.1f} µs   ratio {theirs / ours:5.1f}x"
        )


def compare(template: MessageTemplate, name: str, count: int) -> tuple[float, float]:
    """Seconds per message: ours, and the standard library's for the same content."""
    reader = Recipient("reader@example.org", name, 42)
    ours = median_seconds(lambda n: [template.render(reader) for _ in range(n)], count)
    parsed = email.message_from_bytes(template.render(reader), policy=email.policy.default)
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and html is not None
    text_body, html_body = text.get_content(), html.get_content()

    def stdlib(n: int) -> None:
        for _ in range(n):
            message = EmailMessage(policy=email.policy.SMTP)
            message["From"] = "International Civil Society Centre <news@icscentre.org>"
            message["To"] = Address(display_name=name, addr_spec="reader@example.org")
            message["Subject"] = template.rendered.subject
            message.set_content(text_body, cte="quoted-printable")
            message.add_alternative(html_body, subtype="html", cte="quoted-printable")
            message.as_bytes()

    return ours, median_seconds(stdlib, max(count // 10, 50))


if __name__ == "__main__":
    main()
