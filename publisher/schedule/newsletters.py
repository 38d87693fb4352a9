"""A newsletter's due send: decided, claimed once, sent, recorded.

:func:`check_newsletter` is the one entry point, called when the newsletter's
crontab fires, at start-up, at every periodic tick and by ``publisher run
--once``. It is idempotent: it deals with every fire time since the last one
recorded in ``scheduled_sends``, and with nothing else.

Windows stay contiguous because the send path starts each window where the
last digest that went out ended, and ends it at the fire time the send stands
for (not at the moment it ran): a skipped or empty send makes no run, so its
posts fall into the next window; nothing is in two.

An empty window (``empty: skip``, the default) sends nothing and leaves the
window where it was: the next digest starts where the last one that went out
ended, so a post that reaches the store late with an earlier date (an import,
a back-dated file) is still sent. With ``empty: note`` the empty window's run
is the "nothing new" note, sent like a digest, and like a digest it closes
the window: the next one starts at its end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .. import queries
from ..config import DigestSettings, Settings
from ..db import transaction
from ..errors import EmptyDigest, PublisherError, SenderBusy
from ..mail.window import digest_window
from ..models import ScheduledSend
from .events import emit
from .times import decide_due, fire_times_between, local, next_fire_times


@dataclass(frozen=True)
class SendResult:
    """What one send of a newsletter did."""

    period_start: datetime
    period_end: datetime
    #: False: messages are left (temporary failures, or a stop): the send is resumed later
    finished: bool
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    #: temporary failures, left for the resumed send
    retry: int = 0
    run_id: int | None = None
    #: why the send stopped before it finished (the SMTP server, a stop signal)
    stopped: str | None = None
    #: the window was empty and this was its "nothing new" note (``empty: note``)
    note: bool = False


#: sends newsletter ``config`` for the period ending at ``due`` (finishing its open run
#: first), finishing the messages in flight and returning early once ``stop`` is set
#: :raises EmptyDigest: when no post is in the window
SendFunction = Callable[[DigestSettings, datetime, threading.Event], SendResult]


def check_newsletter(
    factory: sessionmaker[Session],
    settings: Settings,
    config: DigestSettings,
    now: datetime,
    send: SendFunction,
    stop: threading.Event,
) -> list[str]:
    """Resume this newsletter's unfinished sends, then deal with the sends due since the last
    recorded one: send the newest when at most ``misfire_grace`` late, else record it skipped.

    :returns: the outcome of each send it dealt with (``sent``, ``empty``, ``skipped``…;
        ``stopped``: left open by a transport error, which the next check resumes).
    """
    outcomes: list[str] = []
    zone = settings.site.zone
    name = config.name
    with factory() as session:
        last = queries.last_scheduled_send(session, name)
        unsettled = [
            (row.id, row.due_at) for row in queries.unsettled_scheduled_sends(session, name)
        ]
    if last is None:
        if _insert(factory, name, now, "watching", now, "first scheduled by publisher run"):
            upcoming = next_fire_times(config.schedule, zone, now, 1)
            emit(
                "watching",
                f"newsletter {name}: scheduled from now on ({config.schedule}, {zone.key}); "
                f"next send {local(upcoming[0], zone) if upcoming else 'never'}",
                newsletter=name,
                next_send=upcoming[0] if upcoming else None,
            )
        return outcomes
    for row_id, due_at in unsettled:
        if stop.is_set():
            return outcomes
        if _only_waiting(factory, name, due_at, now):
            continue  # its deliveries left wait for retries later: nothing to do now
        emit(
            "resume",
            f"newsletter {name}: resuming the send due {local(due_at, zone)}",
            newsletter=name,
            due=due_at,
        )
        outcomes.append(_send_and_record(factory, settings, config, row_id, due_at, "", send, stop))
    with factory() as session:
        # a send still at work (deliveries due or in flight), or one that made no run
        # yet (SQLite's lock was taken), is finished before anything newer; one that only
        # waits for retries later does not hold up the next period
        unmade = any(
            queries.run_ending_at(session, name, row.due_at) is None
            for row in queries.unsettled_scheduled_sends(session, name)
        )
        at_work = any(
            queries.run_at_work(session, r.id, now) for r in queries.unfinished_runs(session, name)
        )
        if unmade or at_work:
            return outcomes
    fires = fire_times_between(config.schedule, zone, last.due_at, now)
    due = decide_due(fires, now, config.misfire_grace, zone)
    if due is None or stop.is_set():
        return outcomes
    if not due.send:
        if _insert(factory, name, due.at, "skipped", now, due.reason):
            emit(
                "skipped",
                f"newsletter {name}: the send due {local(due.at, zone)} is skipped: {due.reason}",
                logging.WARNING,
                newsletter=name,
                due=due.at,
                coalesced=due.coalesced,
                reason=due.reason,
            )
            outcomes.append("skipped")
        return outcomes
    claimed = _insert(factory, name, due.at, "sending", now, due.reason or None)
    if claimed is None:
        return outcomes  # another scheduler, or an earlier check, has it
    outcomes.append(
        _send_and_record(factory, settings, config, claimed, due.at, due.reason, send, stop)
    )
    return outcomes


def _only_waiting(
    factory: sessionmaker[Session], name: str, due_at: datetime, now: datetime
) -> bool:
    """The run of the send due at ``due_at`` is open, and every delivery it has left
    waits for a retry later (none due now, none in flight)."""
    with factory() as session:
        run = queries.run_ending_at(session, name, due_at)
        return (
            run is not None
            and run.finished_at is None
            and not queries.run_at_work(session, run.id, now)
        )


def _insert(
    factory: sessionmaker[Session],
    name: str,
    due_at: datetime,
    outcome: str,
    now: datetime,
    reason: str | None,
) -> int | None:
    """Record (claim) the send due at ``due_at``; None when it is already recorded."""
    try:
        with transaction(factory) as session:
            row = ScheduledSend(
                name=name, due_at=due_at, outcome=outcome, reason=reason, recorded_at=now
            )
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        return None


def _send_and_record(
    factory: sessionmaker[Session],
    settings: Settings,
    config: DigestSettings,
    row_id: int,
    due: datetime,
    reason: str,
    send: SendFunction,
    stop: threading.Event,
) -> str:
    zone = settings.site.zone
    name = config.name
    late = f" ({reason})" if reason else ""
    try:
        result = send(config, due, stop)
    except SenderBusy as e:  # a staff member's send on SQLite: the next check resumes
        _update(factory, row_id, "open", None, due, None, 0, 0, str(e))
        emit(
            "busy",
            f"newsletter {name}: not now: {e}",
            level=logging.WARNING,
            newsletter=name,
            due=due,
        )
        return "open"
    except EmptyDigest:
        start = _window_start(factory, settings, config, due)
        _update(factory, row_id, "empty", start, due, None, 0, 0, reason or None)
        emit(
            "empty",
            f"newsletter {name}: nothing new in {_span(start, due, zone)}; nothing sent{late}",
            newsletter=name,
            window_start=start,
            window_end=due,
            sent=0,
        )
        return "empty"
    except PublisherError as e:
        _update(factory, row_id, "failed", None, due, None, 0, 0, str(e))
        emit(
            "failed",
            f"newsletter {name}: the send due {local(due, zone)} failed: {e}; its posts go "
            "into the next window",
            logging.ERROR,
            newsletter=name,
            due=due,
            error=str(e),
        )
        return "failed"
    outcome = ("note" if result.note else "sent") if result.finished else "open"
    _update(
        factory,
        row_id,
        outcome,
        result.period_start,
        result.period_end,
        result.run_id,
        result.sent,
        result.failed,
        reason or None,
    )
    counts = f"{result.sent} sent, {result.failed} failed, {result.skipped} without a post"
    fields: dict[str, Any] = {
        "newsletter": name,
        "due": due,
        "window_start": result.period_start,
        "window_end": result.period_end,
        "sent": result.sent,
        "failed": result.failed,
        "skipped": result.skipped,
        "retry": result.retry,
        "run": result.run_id,
    }
    window = _span(result.period_start, result.period_end, zone)
    if result.finished and result.note:
        emit(
            "note",
            f"newsletter {name}: nothing new in {window}; the 'nothing new' note sent: "
            f"{counts}{late}",
            **fields,
        )
    elif result.finished:
        emit("sent", f"newsletter {name} sent: {window}, {counts}{late}", **fields)
    else:
        why = f" ({result.stopped})" if result.stopped else ""
        emit(
            "open",
            f"newsletter {name} stopped part way{why}: {window}, {counts}, {result.retry} to "
            "retry later; the next check resumes it",
            level=logging.WARNING,
            **fields,
        )
        if result.stopped and not stop.is_set():
            # the SMTP server failed it (down, login refused, refusing everyone): stored
            # open and resumed at the next check, but a failure for `run --once`'s status
            return "stopped"
    return outcome


def _update(
    factory: sessionmaker[Session],
    row_id: int,
    outcome: str,
    start: datetime | None,
    end: datetime | None,
    run_id: int | None,
    sent: int,
    failed: int,
    reason: str | None,
) -> None:
    with transaction(factory) as session:
        row = session.get(ScheduledSend, row_id)
        assert row is not None
        row.outcome, row.period_start, row.period_end = outcome, start, end
        row.run_id, row.reason = run_id, reason
        row.sent, row.failed = row.sent + sent, row.failed + failed


def _window_start(
    factory: sessionmaker[Session], settings: Settings, config: DigestSettings, due: datetime
) -> datetime | None:
    with factory() as session:
        try:
            return digest_window(session, config, settings, due)[0]
        except PublisherError:
            return None


def _span(start: datetime | None, end: datetime, zone: ZoneInfo) -> str:
    begin = local(start, zone) if start else "the start"
    return f"window {begin} → {local(end, zone)}"
