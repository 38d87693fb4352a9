"""A sender's SMTP connections, each in a thread of its own (a *lane*), fed groups.

A lane holds at most :data:`DEPTH` groups of messages: one on the wire, the
next queued behind it, so that its connection never waits while the main
thread records answers and claims and renders the next group. Lanes never
touch the store; the main thread hands them groups and takes their answers
(:class:`~publisher.mail.transport.BatchResult`) from one queue.

Threads, not asyncio: a lane is blocked in socket I/O most of the time (which
releases the GIL). Measured on two cores: ``bench/send_models.py``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

from ..errors import TransportError
from .transport import BatchResult, Connection, Outgoing

#: groups a lane holds at once: one on the wire, one queued behind it
DEPTH = 2


class Lanes:
    """One thread per connection; ``held[i]``: groups lane ``i`` has and has not answered,
    and places reserved in it for groups being made.

    :param pace: called before each message is handed over (a rate limit), if set.
    """

    def __init__(
        self, connections: Sequence[Connection], pace: Callable[[], None] | None = None
    ) -> None:
        self.connections = list(connections)
        self.held = [0] * len(self.connections)
        #: set: a lane hands nothing more; groups still queued come back unsent
        self.halted = threading.Event()
        self._answers: queue.SimpleQueue[tuple[int, BatchResult]] = queue.SimpleQueue()
        self._inboxes: list[queue.SimpleQueue[list[Outgoing] | None]] = []
        self._threads = []
        for index, connection in enumerate(self.connections):
            connection.pace = pace
            inbox: queue.SimpleQueue[list[Outgoing] | None] = queue.SimpleQueue()
            thread = threading.Thread(
                target=self._run, args=(index, connection, inbox), name=f"smtp-{index}"
            )
            thread.start()
            self._inboxes.append(inbox)
            self._threads.append(thread)

    def _run(
        self,
        index: int,
        connection: Connection,
        inbox: queue.SimpleQueue[list[Outgoing] | None],
    ) -> None:
        while (group := inbox.get()) is not None:
            if self.halted.is_set():
                result = BatchResult(unsent=[m.delivery_id for m in group])
            else:
                try:
                    result = connection.send_batch(group)
                except Exception as e:  # noqa: BLE001 - a fault here must not lose the group
                    connection.close()
                    result = BatchResult(
                        uncertain=[m.delivery_id for m in group],
                        error=TransportError(connection.server, f"the sender failed: {e!r}", e),
                    )
            if result.error is not None:
                self.halted.set()  # the other lanes hand over nothing more either
            self._answers.put((index, result))

    @property
    def room(self) -> list[int]:
        """A lane index for each group the lanes can take now."""
        return [i for i, held in enumerate(self.held) for _ in range(DEPTH - held)]

    @property
    def busy(self) -> bool:
        return any(self.held)

    def reserve(self, lanes: Sequence[int]) -> None:
        """Hold a place in each of ``lanes`` for a group being made (see :meth:`hand`)."""
        for lane in lanes:
            assert self.held[lane] < DEPTH
            self.held[lane] += 1

    def hand(self, lane: int, group: list[Outgoing]) -> None:
        """Give a lane the group its reserved place was for (an empty one frees it)."""
        assert self.held[lane] > 0
        if group:
            self._inboxes[lane].put(group)
        else:
            self.held[lane] -= 1

    def answers(self, block: bool) -> list[BatchResult]:
        """The answers the lanes have given (waiting for one first, if ``block``)."""
        found: list[BatchResult] = []
        try:
            if block:
                index, result = self._answers.get()
                self.held[index] -= 1
                found.append(result)
            while True:
                index, result = self._answers.get_nowait()
                self.held[index] -= 1
                found.append(result)
        except queue.Empty:
            return found

    def close(self) -> list[BatchResult]:
        """Stop every lane after the group it is on (the rest come back unsent), close
        the connections; the answers not yet taken."""
        self.halted.set()
        for inbox in self._inboxes:
            inbox.put(None)
        for thread in self._threads:
            thread.join()
        for connection in self.connections:
            connection.close()
        return self.answers(block=False)
