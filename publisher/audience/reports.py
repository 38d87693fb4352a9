"""What a message in the bounce mailbox says: a bounce, a complaint, an unsubscribe.

Pure: bytes in, a :class:`Report` out; the store is :mod:`~publisher.audience.bounces`.

- RFC 3464 delivery status notifications (``multipart/report;
  report-type=delivery-status``) are read field by field: each recipient's
  ``Action`` and ``Status``, and the ``Diagnostic-Code`` for people.
  Spec: https://www.rfc-editor.org/rfc/rfc3464
- RFC 5965 complaint reports (ARF, ``report-type=feedback-report``), as
  mailbox providers send them from their feedback loops when a reader
  presses "this is spam". ``Feedback-Type`` abuse, fraud and virus count
  as complaints; other types (``not-spam``, ``auth-failure``) do not.
  Spec: https://www.rfc-editor.org/rfc/rfc5965
- Anything else that bounces (Exim, qmail and the many non-standard
  formats) is handed to flufl.bounce, Mailman's detectors, which name the
  addresses that failed for good and those that failed for now.
- A message whose subject is ``unsubscribe TOKEN`` is the ``mailto:``
  half of every digest's ``List-Unsubscribe`` header.

Which subscriber: the original message's ``Message-ID``
(``<digest.NAME.YYYYMMDDHHMM.SUBSCRIBERID@domain>``, the time to the second or
microsecond when it has them, found in the attached
message or headers, or anywhere in the text), else a VERP return path
(``local+bounce-SUBSCRIBERID@domain``, see :func:`verp_address`) the
report was addressed to, else the failed addresses themselves.

Hard or soft: a failed delivery is *hard* (the address is no good) for
``5.1.x`` (bad mailbox or domain), ``5.2.1`` (mailbox disabled), ``5.4.4``
(domain unroutable) and a bare ``5.0.0``; other permanent failures (a full
mailbox, a policy or spam block, a system fault) and every delay are
*soft*, counted until ``bounces.soft_limit`` of them fall within
``bounces.soft_days``: a block because of the sender's reputation is not
the reader's fault.
"""

from __future__ import annotations

import email
import enum
import hashlib
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from flufl.bounce import all_failures

# flufl.bounce logs each detector that trips on an odd message, traceback and all
# (one lacking a From:, say); such a message is "other mail" here, and the report says
# so: its tracebacks would only bury that line
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

#: the Message-ID every digest carries (mail/messageids.py), and what it tells: the
#: period's end to the minute, the second or the microsecond (12, 14 or 20 digits)
DIGEST_ID = re.compile(
    r"<digest\.([a-z0-9][a-z0-9-]*)\.(\d{12}(?:\d{2}(?:\d{6})?)?)\.(\d+)@[^>\s]+>"
)
VERP = re.compile(r"\+bounce-(\d+)@", re.IGNORECASE)
UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe\s+(\S+)\s*$", re.IGNORECASE)
HARD_STATUSES = re.compile(r"^5\.(1\.\d+|2\.1|4\.4|0\.0)$")
COMPLAINT_TYPES = {"abuse", "fraud", "virus"}
#: how much of a report is kept with its event (the rest is the digest we sent)
KEPT = 64 * 1024


class Kind(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    #: auto-replies, out-of-office notes, stray mail
    OTHER = "other"


@dataclass(frozen=True)
class Report:
    """One message of the bounce mailbox, understood."""

    kind: Kind
    #: the report's own Message-ID (or a hash of it): the same report counts once
    report_id: str
    #: when it was written (its Date), else None
    at: datetime | None
    #: one line for people: status, diagnostic, feedback type
    detail: str
    #: subscriber id and newsletter from the original's Message-ID, if found
    subscriber_id: int | None = None
    newsletter: str | None = None
    #: that Message-ID (``<digest.weekly.….42@example.org>``)
    message_id: str | None = None
    #: subscriber id from a VERP return path
    verp_id: int | None = None
    #: the addresses that failed, or complained
    addresses: tuple[str, ...] = ()
    #: an unsubscribe link's token (the mailto: request)
    token: str | None = None
    #: the report as received (cut at KEPT characters)
    raw: str = field(default="", repr=False)


def verp_address(sender: str, subscriber_id: int) -> str:
    """A per-subscriber return path for ``MAIL FROM`` (VERP): bounces come back to it.

    >>> verp_address("news@example.org", 42)
    'news+bounce-42@example.org'
    """
    local, _, domain = sender.rpartition("@")
    return f"{local}+bounce-{subscriber_id}@{domain}"


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return str(part.get_payload())


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = _text(part).replace("\r\n", "\n")
    return [
        HeaderParser(policy=compat32).parsestr(b) for b in re.split(r"\n\s*\n", text) if b.strip()
    ]


def _original_headers(message: Message) -> Message | None:
    """The returned or reported message's headers (message/rfc822 or text/rfc822-headers)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if kind == "text/rfc822-headers":
            return HeaderParser(policy=compat32).parsestr(_text(part))
    return None


def _address(value: str | None) -> str | None:
    """``rfc822; zoe@example.org`` (an address-type field) → ``zoe@example.org``."""
    if not value:
        return None
    text = value.split(";", 1)[1] if ";" in value else value
    address = parseaddr(text.strip())[1] or text.strip().strip("<>")
    return address or None


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _classify(action: str, status: str) -> Kind | None:
    action, status = action.strip().lower(), status.strip().split()[0] if status.strip() else ""
    if action.startswith("fail"):
        return Kind.HARD if HARD_STATUSES.match(status) else Kind.SOFT
    if action.startswith("delay") or status.startswith("4."):
        return Kind.SOFT
    return None  # delivered, relayed, expanded


def _dsn(part: Message) -> tuple[Kind, list[str], str] | None:
    blocks = _blocks(part)
    worst: Kind | None = None
    addresses: list[str] = []
    details: list[str] = []
    for block in blocks[1:] or blocks:
        kind = _classify(str(block.get("Action", "")), str(block.get("Status", "")))
        if kind is None:
            continue
        if worst is not Kind.HARD:
            worst = kind
        address = _address(block.get("Original-Recipient")) or _address(
            block.get("Final-Recipient")
        )
        if address:
            addresses.append(address)
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        details.append(f"{block.get('Status', '').strip()} {diagnostic}".strip())
    if worst is None:
        return None
    return worst, addresses, "; ".join(d for d in details if d)


def _arf(part: Message) -> tuple[Kind, list[str], str, datetime | None]:
    fields = _blocks(part)[0] if _blocks(part) else Message()
    feedback = str(fields.get("Feedback-Type", "")).strip().lower()
    kind = Kind.COMPLAINT if feedback in COMPLAINT_TYPES else Kind.OTHER
    addresses = [a for a in (_address(v) for v in fields.get_all("Original-Rcpt-To", [])) if a]
    agent = str(fields.get("User-Agent", "")).strip()
    detail = f"feedback report: {feedback or 'no Feedback-Type'}" + (f" ({agent})" if agent else "")
    return kind, addresses, detail, _when(fields.get("Arrival-Date") or fields.get("Received-Date"))


def read_report(data: bytes) -> Report:
    """Understand one message of the bounce mailbox."""
    message = email.message_from_bytes(data, policy=compat32)
    text = data.decode("utf-8", "replace")
    report_id = str(message.get("Message-ID", "")).strip() or (
        "sha256:" + hashlib.sha256(data).hexdigest()
    )
    at = _when(message.get("Date"))
    raw = text if len(text) <= KEPT else text[:KEPT] + "\n[… cut: the rest is the returned digest]"
    original = _original_headers(message)
    found = DIGEST_ID.search(str(original.get("Message-ID", ""))) if original else None
    found = found or DIGEST_ID.search(text)
    subscriber_id = int(found.group(3)) if found else None
    newsletter = found.group(1) if found else None
    verp = None
    for header in ("X-Original-To", "Delivered-To", "Envelope-To", "To"):
        for _, address in getaddresses(message.get_all(header, [])):
            match = VERP.search(address)
            if match:
                verp = int(match.group(1))
                break
        if verp is not None:
            break
    subject = " ".join(str(message.get("Subject", "")).split())
    base = Report(
        Kind.OTHER,
        report_id,
        at,
        subject or "no subject",
        subscriber_id=subscriber_id,
        newsletter=newsletter,
        message_id=found.group(0) if found else None,
        verp_id=verp,
        raw=raw,
    )

    report_type = str(message.get_param("report-type", "") or "").lower()
    for part in message.walk():
        kind_of_part = part.get_content_type()
        if kind_of_part == "message/feedback-report" or (
            report_type == "feedback-report" and kind_of_part == "message/feedback-report"
        ):
            kind, addresses, detail, arrived = _arf(part)
            return replace(
                base, kind=kind, at=arrived or at, detail=detail, addresses=tuple(addresses)
            )
        if kind_of_part == "message/delivery-status":
            dsn = _dsn(part)
            if dsn is not None:
                kind, addresses, detail = dsn
                return replace(base, kind=kind, detail=detail, addresses=tuple(addresses))

    wanted = UNSUBSCRIBE_SUBJECT.match(subject)
    if wanted:
        sender = parseaddr(str(message.get("From", "")))[1]
        return replace(
            base,
            kind=Kind.UNSUBSCRIBE,
            detail=f"mailto: request from {sender}",
            token=wanted.group(1),
            addresses=(sender,) if sender else (),
        )

    # not an RFC 3464 report: Mailman's detectors for the many other formats
    try:
        temporary, permanent = all_failures(message)
    except Exception as e:  # a heuristic detector tripped on an odd message: not a bounce
        return replace(base, detail=f"{base.detail} (the bounce detectors failed: {e!r})")
    if permanent or temporary:
        kind = Kind.HARD if permanent else Kind.SOFT
        failed = sorted(a.decode("utf-8", "replace") for a in (permanent or temporary))
        detail = f"{'permanent' if permanent else 'temporary'} failure ({subject or 'no subject'})"
        return replace(base, kind=kind, detail=detail, addresses=tuple(failed))
    return base
