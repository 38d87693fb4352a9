"""Threads or asyncio for the send's SMTP side? Both, on the same messages and sink.

Sends the same pre-rendered message (the size of the sample digest) N times
into Postfix's smtp-sink on 127.0.0.1, with 4 connections, three ways:

- threads: our :class:`publisher.mail.transport.Connection` (smtplib to connect,
  then RFC 2920 pipelining), one thread per connection;
- threads, pipelining off: the same, one command per round trip;
- asyncio: aiosmtplib, one task per connection, one ``sendmail`` at a time each
  (aiosmtplib does not pipeline).

Prints messages/s and CPU per message (medians of three), loopback and
through the 2.5 ms delay proxy of bench/send.py.

    python bench/send_models.py [--messages 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from publisher.config import SmtpSettings
from publisher.mail.message import dot_stuff
from publisher.mail.transport import Connection, Outgoing

sys.path.insert(0, str(Path(__file__).parent))
from send import SINK, free_port, wait_port  # noqa: E402

SIZE = 16_000
CONNECTIONS = 4


def message(n: int) -> bytes:
    body = (b"x" * 76 + b"\r\n") * (SIZE // 78)
    return (
        f"From: news@example.org\r\nTo: r{n}@example.org\r\nSubject: bench\r\n"
        f"Message-ID: <{n}@example.org>\r\n\r\n".encode()
        + body
    )


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_threads(port: int, count: int, pipelining: bool) -> None:
    from concurrent.futures import ThreadPoolExecutor

    settings = SmtpSettings(
        host="127.0.0.1", port=port, security="none", max_messages_per_connection=0
    )
    data = dot_stuff(message(0))
    per = count // CONNECTIONS

    def one(lane: int) -> None:
        connection = Connection(settings, "news@example.org")
        connection.open()
        connection.pipelining = connection.pipelining and pipelining
        for start in range(0, per, 100):
            batch = [Outgoing(i, f"r{i}@example.org", data) for i in range(start, start + 100)]
            result = connection.send_batch(batch)
            assert result.error is None, result.error
        connection.close()

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        list(pool.map(one, range(CONNECTIONS)))


def run_asyncio(port: int, count: int) -> None:
    import aiosmtplib

    data = message(0)
    per = count // CONNECTIONS

    async def one() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=False, start_tls=False)
        await client.connect()
        for i in range(per):
            await client.sendmail("news@example.org", [f"r{i}@example.org"], data)
        await client.quit()

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(CONNECTIONS)))

    asyncio.run(main())


def measure(label: str, count: int, run: object) -> tuple[str, float, float]:
    rates, costs = [], []
    for _ in range(3):
        c0, t0 = cpu(), time.perf_counter()
        run()  # type: ignore[operator]
        elapsed, spent = time.perf_counter() - t0, cpu() - c0
        rates.append(count / elapsed)
        costs.append(1000 * spent / count)
    return label, statistics.median(rates), statistics.median(costs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--proxied", type=int, default=1000)
    args = parser.parse_args()
    sink_port, proxy_port = free_port(), free_port()
    sink = subprocess.Popen([SINK, "-u", "nobody", f"127.0.0.1:{sink_port}", "1024"])
    proxy = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "send.py"),
            "--proxy",
            str(proxy_port),
            str(sink_port),
            "0.00125",
        ]
    )
    wait_port(sink_port)
    wait_port(proxy_port)
    try:
        for where, port, n in (
            ("loopback", sink_port, args.messages),
            ("proxy +2.5 ms", proxy_port, args.proxied),
        ):
            results = [
                measure("threads + pipelining", n, lambda p=port, n=n: run_threads(p, n, True)),
                measure("threads, no pipelining", n, lambda p=port, n=n: run_threads(p, n, False)),
                measure("asyncio (aiosmtplib)", n, lambda p=port, n=n: run_asyncio(p, n)),
            ]
            base = results[0][1]
            print(f"{where}, {CONNECTIONS} connections, {n} messages of {SIZE:,} bytes:")
            for label, rate, cost in results:
                print(
                    f"  {label:24} {rate:8,.0f} msg/s  {cost:.3f} ms CPU/msg  "
                    f"({rate / base:.2f}× threads + pipelining)"
                )
    finally:
        proxy.terminate()
        sink.terminate()


if __name__ == "__main__":
    main()
