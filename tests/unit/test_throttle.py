"""The per-client limit of the subscribe form: a sliding window counter in memory."""

from __future__ import annotations

import threading

from publisher.web.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# A client gets exactly its rate in one period, and a refused hit is not counted.
def test_a_client_gets_its_rate_and_no_more() -> None:
    clock = Clock()
    throttle = Throttle("3/minute", clock)
    assert [throttle.hit("a") for _ in range(5)] == [True, True, True, False, False]
    assert throttle.hit("b"), "each client counts on its own"


# The last period still counts in proportion to how much of it the window covers,
# so a burst at the end of one minute cannot be followed by a full one at the start
# of the next; once a whole period has passed, the client has its full rate again.
def test_the_window_slides() -> None:
    clock = Clock()
    clock.now = 60 * 1000 + 59  # the last second of a minute
    throttle = Throttle("10/minute", clock)
    assert sum(throttle.hit("a") for _ in range(10)) == 10
    clock.now += 2  # one second into the next minute: the last one weighs 59/60
    assert not throttle.hit("a")
    clock.now += 30  # half-way: the last minute's 10 weigh 5
    assert sum(throttle.hit("a") for _ in range(10)) == 5
    clock.now += 120  # two periods on: nothing left of either
    assert sum(throttle.hit("a") for _ in range(20)) == 10


# Threads hitting at once never let more through than the rate.
def test_threads_cannot_overrun_the_limit() -> None:
    throttle = Throttle("100/hour", Clock())
    passed: list[bool] = []

    def hammer() -> None:
        for _ in range(50):
            passed.append(throttle.hit("same"))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(passed) == 100


# An IPv6 client holds a whole /64 and could take a new address for each request:
# the per-client limit counts the network; IPv4 (mapped or not) counts the address.
def test_an_ipv6_client_is_counted_by_its_64() -> None:
    from publisher.web.throttle import client_key

    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("192.0.2.7") == client_key("::ffff:192.0.2.7") == "client:192.0.2.7"
    assert client_key("192.0.2.7") != client_key("192.0.2.8")
