"""Several senders on one PostgreSQL run: whose ``sending`` rows are whose."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from publisher.config import Settings
from publisher.mail import senders
from publisher.mail.runs import claim_run
from publisher.mail.send import send_run
from publisher.models import Delivery, DeliveryStatus
from publisher.queries import claim_deliveries
from publisher.schedule.sending import make_send_function
from tests.integration.smtp_recorder import Recorder, RecordingServer
from tests.integration.test_send import NOW, FakeClock, add_readers, subscribed, with_smtp

__all__ = ["subscribed"]  # the fixture


# A delivery another sender claimed (`sending`) is that sender's while it lives: its
# message may be on the wire. Whoever else sends, a scheduler that has just taken
# the lead included, leaves it (before, a scheduler's first check took back every
# `sending` row of the run, and messages in flight went out twice); once that sender
# is gone, however it ended, the next send takes it back at once (no five minutes'
# wait) and sends it, and every reader has the digest once.
def test_a_live_sender_s_rows_are_left_and_a_dead_one_s_taken_back_at_once(
    subscribed: Settings, sessions: sessionmaker[Session], engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several senders share a run on PostgreSQL")
    add_readers(sessions, 4)
    recorder = Recorder()
    with RecordingServer(recorder):
        settings = with_smtp(subscribed, recorder.port, connections=1, batch=2)
        claim = claim_run(sessions, settings, None, NOW)
        # another sender, alive: its lock held on its connection, three rows claimed
        other = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        number = senders.take_number(other)
        assert number in senders.live_senders(other)
        with sessions.begin() as session:
            theirs = claim_deliveries(session, claim.run_id, "weekly", NOW, 3, sender=number)
        assert len(theirs) == 3
        in_flight = {row.email for row in theirs}

        scheduler = make_send_function(sessions, settings)
        during = scheduler(settings.digests[0], NOW, threading.Event())
        assert not during.finished
        assert not in_flight & set(recorder.by_recipient()), "a live sender's rows resent"
        with sessions() as session:
            left = session.scalars(select(Delivery).where(Delivery.id.in_([r.id for r in theirs])))
            assert {(d.status, d.sender) for d in left} == {(DeliveryStatus.SENDING, number)}

        other.invalidate()  # the other sender dies: its session, and its lock, are gone
        after = send_run(sessions, settings, claim, clock=FakeClock(NOW))
    assert after.finished and after.retaken == 3
    got = recorder.by_recipient()
    assert in_flight <= set(got) and all(len(copies) == 1 for copies in got.values())


# A sender that ends gives up its number: what it left `sending` (a transport error
# stopped it with messages in flight) is anyone's to take back at once.
def test_a_sender_that_ends_gives_up_its_number(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's advisory locks")
    with engine.connect() as mine, engine.connect() as theirs:
        number = senders.take_number(mine)
        assert number in senders.live_senders(theirs)
        assert senders.take_number(theirs) != number
        senders.give_up_number(mine, number)
        assert number not in senders.live_senders(theirs)
