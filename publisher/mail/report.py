"""What a sender did with one run: counts, the last refusals, why it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class SendReport:
    """What a sender did with one run. ``finished``: every delivery is settled."""

    name: str
    run_id: int
    period_start: datetime
    period_end: datetime
    #: this sender created the run (else it joined or resumed one)
    created: bool
    subject: str = ""
    #: deliveries in the run
    total: int = 0
    #: settled before this sender started (an earlier attempt, or another sender)
    earlier: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    #: 4xx answers, each retried later (until email.retry_hours)
    deferred: int = 0
    #: ``sending`` rows of a crashed sender this one took back (SQLite: all; PostgreSQL: stale)
    retaken: int = 0
    #: handed to the server without an answer when the connection died: left ``sending``
    uncertain: int = 0
    #: refused in the streak that stopped the send (the server refused everyone): put
    #: back to ``pending`` for the next send, not counted as failed
    reopened: int = 0
    #: refusals, the latest last (a few)
    errors: list[str] = field(default_factory=list)
    #: why the sender stopped before the run finished (a transport error, a stop signal)
    stopped: str | None = None
    finished: bool = False
    #: while the sender waits for deferred deliveries to fall due: until when
    waiting_until: datetime | None = None

    @property
    def done(self) -> int:
        return self.earlier + self.sent + self.failed + self.skipped
