"""The send loop's lanes: places reserved for groups being made count as held.

The bound on what a crash leaves uncertain (connections × batch rows ``sending``)
holds only if a group claimed but not yet handed over keeps its place: else the
next turn would claim for the same place again.
"""

from __future__ import annotations

import threading

from publisher.mail.lanes import DEPTH, Lanes
from publisher.mail.transport import BatchResult, Outcome, Outgoing, Verdict


class FakeConnection:
    """Answers every message ``sent``; waits for ``go`` before each group."""

    def __init__(self) -> None:
        self.pace = None
        self.go = threading.Event()
        self.server = "fake"

    def send_batch(self, group: list[Outgoing]) -> BatchResult:
        self.go.wait(10)
        return BatchResult(outcomes=[Outcome(m.delivery_id, Verdict.SENT, "250") for m in group])

    def close(self) -> None:
        pass


def message(n: int) -> Outgoing:
    return Outgoing(n, f"reader{n}@example.org", b"x")


# A reserved place is not room; handing a group fills it until the lane answers; an
# empty group frees it at once.
def test_reserved_places_are_held_until_answered_or_freed() -> None:
    connections = [FakeConnection(), FakeConnection()]
    lanes = Lanes(connections)  # type: ignore[arg-type]
    try:
        assert lanes.room == [0] * DEPTH + [1] * DEPTH and not lanes.busy
        lanes.reserve([0] * DEPTH + [1])
        assert lanes.room == [1] * (DEPTH - 1) and lanes.busy
        lanes.hand(1, [])  # nothing was made for it
        assert lanes.room == [1] * DEPTH
        lanes.hand(0, [message(1)])
        assert lanes.room == [1] * DEPTH  # on the wire: still held
        connections[0].go.set()
        (answer,) = lanes.answers(block=True)
        assert [o.delivery_id for o in answer.outcomes] == [1]
        assert lanes.room == [0] + [1] * DEPTH  # the other reserved place is still held
    finally:
        for connection in connections:
            connection.go.set()
        lanes.close()
