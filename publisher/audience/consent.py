"""Consent records: when and how someone agreed, to which words, from where.

A form consent is recorded when the form is sent and counts from the click
on the emailed link (``confirmed_at``: double opt-in); consents given to
staff or carried by an import count as recorded. Every consent is kept, so
``subscribers export-person`` can show the whole history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Consent, ConsentMethod


@dataclass(frozen=True)
class ConsentGiven:
    """What the way in knows about a consent.

    :param method: form, import or staff.
    :param text: the words they agreed to (the form's wording, or the import's note).
    :param at: when they agreed (UTC).
    :param page: the URL of the page the form was on.
    :param client_address: the client's IP address, as the web server saw it.
    """

    method: ConsentMethod
    text: str
    at: datetime
    page: str | None = None
    client_address: str | None = None


def record_consent(
    session: Session,
    subscriber_id: int,
    given: ConsentGiven,
    choices: dict[str, list[str]],
    confirmed_at: datetime | None,
) -> Consent:
    """Add a consent record (flushed, so it has an id)."""
    consent = Consent(
        subscriber_id=subscriber_id,
        method=given.method,
        at=given.at,
        page=given.page,
        client_address=given.client_address,
        text=given.text,
        choices=choices,
        confirmed_at=confirmed_at,
    )
    session.add(consent)
    session.flush()
    return consent


def consents_of(session: Session, subscriber_id: int) -> list[Consent]:
    """Every consent of a subscriber, oldest first."""
    query = select(Consent).where(Consent.subscriber_id == subscriber_id)
    return list(session.scalars(query.order_by(Consent.at, Consent.id)))
