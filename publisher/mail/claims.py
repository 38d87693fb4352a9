"""The send loop's turns at the store: the answers so far recorded, the next rows claimed.

Each turn of :func:`~publisher.mail.send.send_run`'s main thread comes here once:
:func:`save_and_claim` records what the lanes answered (:class:`.Ledger`) and
claims the rows for the groups that are free, an answer and its row's
replacement committed together. On PostgreSQL the sender holds its number
(:mod:`.senders`) on a connection of its own in autocommit, where the usual
turn is one statement.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection as StoreConnection, Engine
from sqlalchemy.orm import Session

from .. import queries
from ..config import Settings
from .ledger import Ledger, suppressed_of
from .report import SendReport
from .runs import RunClaim, stale_after
from .senders import give_up_number, live_senders, take_number


class Claiming(NamedTuple):
    """What a claim needs to know besides the moment and how many."""

    settings: Settings
    claim: RunClaim
    report: SendReport
    #: no other sender can be at work (SQLite, under the lock)
    alone: bool
    #: of the suppression list's hashes
    salt: str
    #: PostgreSQL: this sender's number, its lock held (see :mod:`.senders`)
    sender: int | None


def autocommit(
    session: Session, stack: contextlib.ExitStack[bool | None]
) -> StoreConnection | None:
    """On PostgreSQL, a connection of its own in autocommit for the usual turn's one
    statement (see :func:`save_and_claim`); None elsewhere."""
    engine = session.get_bind()
    if engine.dialect.name != "postgresql":
        return None
    assert isinstance(engine, Engine)
    return stack.enter_context(engine.connect().execution_options(isolation_level="AUTOCOMMIT"))


def hold_number(
    fast: StoreConnection | None, stack: contextlib.ExitStack[bool | None]
) -> int | None:
    """PostgreSQL: this sender's number, its lock held on ``fast`` until the send ends
    (then given up, or gone with the session when the process dies)."""
    if fast is None:
        return None
    number = take_number(fast)
    stack.callback(_give_up, fast, number)
    return number


def _give_up(fast: StoreConnection, number: int) -> None:
    with contextlib.suppress(Exception):  # the session gone: so is the lock
        give_up_number(fast, number)


def save_and_claim(
    session: Session,
    fast: StoreConnection | None,
    work: Ledger,
    claiming: Claiming,
    now: datetime,
    limit: int,
    cursor: int,
) -> tuple[list[queries.Claimed], int, set[str]]:
    """Every answer so far recorded, and up to ``limit`` due rows claimed (``sending``)
    for the free groups; the addresses among them on the suppression list, and the
    cursor past them.

    An answer and the claim of its row's replacement commit together. On SQLite, and
    when nothing is claimed, in one transaction. On PostgreSQL (``fast``: a connection
    in autocommit) the usual turn is one statement, one round trip: the deliveries the
    server accepted recorded and the next rows claimed
    (:func:`~publisher.queries.record_sent_and_claim`); the rarer answers (refusals,
    deferrals, unsent, bounces) are recorded before it, in a transaction of their own.
    (Its five round trips took 2.8 ms of a 6.9 ms turn before: README, Sending.)
    """
    if fast is None or not limit:
        with session.begin():
            work.save(session)
            if not limit:
                return [], cursor, set()
            rows, cursor = _claim(session, claiming, now, limit, cursor)
            return rows, cursor, suppressed_of(session, rows, claiming.salt)
    sent_at, sent = work.take_sent()
    try:
        if work.pending:
            with session.begin():
                work.save(session)
        first, anyone = queries.record_sent_and_claim(
            fast,
            claiming.claim.run_id,
            claiming.claim.name,
            now,
            limit,
            cursor,
            sent_at,
            sent,
            claiming.sender,
        )
    except BaseException:
        work.give_back_sent(sent_at, sent)  # recorded by the next save (or the last one)
        raise
    if len(first) == limit and not anyone:
        return first, first[-1].id, set()
    # the end of the run (rows from its start, or left by a dead sender: the statement
    # did not see them, nor so whether anyone is suppressed), or someone is suppressed
    with session.begin():
        rows, cursor = _claim(session, claiming, now, limit, cursor, first)
        return rows, cursor, suppressed_of(session, rows, claiming.salt)


def _claim(
    session: Session,
    claiming: Claiming,
    now: datetime,
    limit: int,
    cursor: int,
    first: list[queries.Claimed] | None = None,
) -> tuple[list[queries.Claimed], int]:
    """Up to ``limit`` due rows, marked ``sending``; and the cursor past them.

    The rows past the cursor first (``first``: claimed already); then from the start
    of the run (4xx retries that fell due, rows released unsent); then, when other
    senders may be at work, ``sending`` rows a dead sender left (counted in
    ``report.retaken``): on PostgreSQL, those whose sender holds no lock any more
    (:mod:`.senders`).
    """
    run, name, sender = claiming.claim.run_id, claiming.claim.name, claiming.sender
    if first is None:
        first = queries.claim_deliveries(session, run, name, now, limit, None, cursor, sender)
    rows = list(first)
    if rows:
        cursor = rows[-1].id
    if len(rows) < limit and cursor:
        rows += queries.claim_deliveries(session, run, name, now, limit - len(rows), sender=sender)
    if len(rows) < limit and not claiming.alone:
        old = now - stale_after(claiming.settings)
        live = live_senders(session.connection()) if sender is not None else []
        retaken = queries.claim_deliveries(
            session, run, name, now, limit - len(rows), old, sender=sender, live=live
        )
        claiming.report.retaken += len(retaken)
        rows += retaken
    return rows, cursor
