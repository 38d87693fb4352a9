"""Send benchmark: the digest to 100,000 subscribers through Postfix's smtp-sink.

Beside each of our sends it runs Postfix's ``smtp-source`` with the same
message size and number of connections: the mail server's floor (what a
minimal C client gets from the same sink). For SQLite and PostgreSQL, at 1
and 4 connections, on loopback and through a proxy on 127.0.0.1 that adds
2.5 ms of round trip (as a relay on the next machine would), it prints
messages/s, the ratio to smtp-source, CPU per message (the sender's and its
renderer's; the database server's, all its processes, when it runs on this
machine; smtp-sink's), peak memory (PSS of both, at 10,000 and 100,000
subscribers), and on PostgreSQL the rate of the last 10% of the send against
the first 10%. Then what the cores allow when all three share them (their CPU
per message together), and every goal of the issue, met or not.

Each send runs in a child process (so its peak memory is its own); the run is
claimed beforehand (``claim`` is timed apart). smtp-source figures are medians
of three; our 100,000 sends run once each (they take a minute).

    python bench/send.py [--subscribers 100000] [--small 10000] [--proxied 10000]
                         [--baseline DIR]

``--baseline DIR``: a checkout of another version (``git archive REV | tar -x
-C DIR``); each send is made with its code as well, right after ours on the
same list, in a database its own migrations made (so that a change of index or
table options counts), and printed beside it: before and after from the same run.

Needs /usr/sbin/smtp-sink and /usr/sbin/smtp-source (Debian: apt-get install
postfix) and, for the PostgreSQL rows, PostgreSQL on 127.0.0.1:5432 (user
postgres, database test), else those rows are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

NOW = datetime(2019, 12, 6, 9, 0, tzinfo=UTC)
SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CONFIG = """\
site:
  title: International Civil Society Centre
  base_url: https://icscentre.org/
  timezone: Europe/Berlin
  postal_address: Agricolastraße 26, 10555 Berlin, Germany
email:
  sender: International Civil Society Centre <news@icscentre.org>
  smtp: {{host: 127.0.0.1, port: {port}, security: none, connections: {connections}}}
digests:
  - {{name: weekly, schedule: "0 9 * * MON"}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_port(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


# -- the delay proxy -------------------------------------------------------------------


async def _pipe(reader: Any, writer: Any, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds late; a reset
    connection ends the copy as its end of stream would (a sender's connection is
    dropped when it is done, or killed mid-send)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def pump() -> None:
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                data = b""
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                return

    task = asyncio.create_task(pump())
    try:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
        task.cancel()


def run_proxy(listen: int, upstream: int, delay: float) -> None:
    """Forward 127.0.0.1:listen to :upstream, each direction ``delay`` seconds late."""

    async def handle(client_r: Any, client_w: Any) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            _pipe(client_r, server_w, delay),
            _pipe(server_r, client_w, delay),
            return_exceptions=True,
        )

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def migrate(url: str, schema: str | None) -> None:
    """In a child process: make the schema with the migrations of the ``publisher``
    on the path (a baseline's)."""
    from publisher import db

    connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
    engine = db.make_engine(url, connect_args=connect_args)
    db.upgrade(engine)
    engine.dispose()


# -- one send, in a child process ------------------------------------------------------


def run_child(config: str, url: str, schema: str | None) -> None:
    from publisher import db
    from publisher.config import load_settings
    from publisher.mail.runs import claim_run
    from publisher.mail.send import SendReport, send_run

    settings = load_settings(config)
    connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
    engine = db.make_engine(url, connect_args=connect_args)
    factory = db.make_sessionmaker(engine)
    claim = claim_run(factory, settings, None, NOW)
    server = DatabaseServer.of(engine)  # after the run is made: only the send is counted
    marks: list[tuple[float, int]] = []

    def progress(report: SendReport) -> None:
        marks.append((time.perf_counter(), report.sent + report.failed))

    peak = MemoryWatch()
    cpu0 = _cpu()
    start = time.perf_counter()
    report = send_run(factory, settings, claim, progress=progress)
    elapsed = time.perf_counter() - start
    cpu = _cpu() - cpu0  # the renderer's too: it has ended and been waited for
    server_cpu = server.cpu() - server.start if server else None
    peak.stop()
    total = report.sent + report.failed
    print(
        json.dumps(
            {
                "messages": total,
                "failed": report.failed,
                "stopped": report.stopped,
                "elapsed": elapsed,
                "cpu": cpu,
                "db_cpu": server_cpu,
                "maxrss_mb": peak.mb,
                "startup": (marks[0][0] - start) if marks else 0.0,
                "first10": _stretch_rate(marks, start, 0.0, 0.1, total),
                "last10": _stretch_rate(marks, start, 0.9, 1.0, total),
            }
        )
    )


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended."""
    own, ended = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime


def process_cpu(pid: int, ended_children: bool = False) -> float:
    """CPU seconds of process ``pid`` (and of its children that have ended, if asked)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if ended_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


class DatabaseServer:
    """The CPU a local PostgreSQL spends, all its processes together (the backends,
    the WAL writer, autovacuum): the postmaster's children that have ended and those
    still running. None where the server is not a process of this machine (or the
    database is SQLite, whose work is the sender's own)."""

    def __init__(self, postmaster: int) -> None:
        self.postmaster = postmaster
        self.start = self.cpu()

    @classmethod
    def of(cls, engine: Any) -> DatabaseServer | None:
        if engine.dialect.name != "postgresql":
            return None
        with engine.connect() as conn:
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        try:
            stat = Path(f"/proc/{backend}/stat").read_text()
            return cls(int(stat.rsplit(")", 1)[1].split()[1]))
        except (OSError, ValueError):
            return None

    def cpu(self) -> float:
        total = process_cpu(self.postmaster, ended_children=True)
        children = Path(f"/proc/{self.postmaster}/task/{self.postmaster}/children")
        for child in children.read_text().split():
            try:
                total += process_cpu(int(child))
            except OSError:  # ended meanwhile: counted with the ended ones next time
                continue
        return total


class MemoryWatch:
    """The peak memory of this process and its children (the renderer), as their
    proportional set size (PSS: pages they share counted once between them), sampled
    every 0.5 s: reading smaps makes the kernel walk each process's pages, and every
    0.2 s that cost ~5 µs of CPU per message, counted as the sender's. Not ru_maxrss:
    on Linux it survives exec, so a child would report the bench parent's size at the
    fork (the parent holds the list it loaded)."""

    def __init__(self) -> None:
        self.mb = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(0.5):
            self.sample()

    def sample(self) -> None:
        pids = [os.getpid()]
        children = Path(f"/proc/self/task/{os.getpid()}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            except OSError:  # ended meanwhile
                continue
        self.mb = max(self.mb, total / 1024)

    def stop(self) -> None:
        self.sample()
        self._done.set()
        self._thread.join()


def _stretch_rate(
    marks: list[tuple[float, int]], start: float, lo: float, hi: float, total: int
) -> float:
    """Messages/s over the stretch of the send from ``lo`` to ``hi`` (fractions of it),
    counted from the first recorded chunk (after the one-off rendering)."""
    points = marks or [(start, 0)]

    def when(count: float) -> float:
        for (t0, c0), (t1, c1) in zip(points, points[1:], strict=False):
            if c1 >= count:
                return t0 + (t1 - t0) * ((count - c0) / max(c1 - c0, 1))
        return points[-1][0]

    a, b = when(total * lo), when(total * hi)
    return (total * (hi - lo)) / max(b - a, 1e-9)


# -- the parent ------------------------------------------------------------------------


class Store:
    """A database with the sample posts and N subscribers; each send gets a fresh run.

    Its schema is made by the migrations of ``code`` (a baseline's checkout) when
    given, else by this checkout's: each version sends on the schema it ships, so
    a change of index or table options is measured too.
    """

    def __init__(
        self, kind: str, folder: Path, config: Path, sample: Path, code: Path | None = None
    ) -> None:
        from publisher import db
        from publisher.config import load_settings

        self.kind = kind
        self.settings = load_settings(config)
        self.sample = sample
        self.schema: str | None = None
        if kind == "sqlite":
            name = f"bench-{uuid.uuid4().hex[:8]}.db"
            self.url = f"sqlite:///{folder / name}"
            self.engine = db.make_engine(self.url)
        else:
            self.url = PG
            self.schema = f"bench_{uuid.uuid4().hex[:8]}"
            self.admin = db.make_engine(PG)
            with self.admin.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{self.schema}"')
            self.engine = db.make_engine(
                PG, connect_args={"options": f"-csearch_path={self.schema}"}
            )
        if code is None:
            db.upgrade(self.engine)
        else:
            env = {**os.environ, "PYTHONPATH": str(code)}
            args = [sys.executable, __file__, "--migrate", self.url, self.schema or ""]
            subprocess.run(args, check=True, env=env)
        self.factory = db.make_sessionmaker(self.engine)
        self.count = 0

    def load(self, subscribers: int) -> None:
        from sqlalchemy import delete, insert, select

        from publisher.content.importer import import_target
        from publisher.models import Delivery, DigestRun, Subscriber, Subscription

        if self.count == 0:
            import_target(self.factory, str(self.sample), self.settings, NOW)
        with self.factory.begin() as session:
            session.execute(delete(Delivery))
            session.execute(delete(DigestRun))
            if subscribers != self.count:
                session.execute(delete(Subscription))
                session.execute(delete(Subscriber))
                rows = [
                    {
                        "email": f"reader{n}@example.org",
                        "name": f"Reader {n}",
                        "status": "active",
                        "created_at": NOW,
                    }
                    for n in range(subscribers)
                ]
                session.execute(insert(Subscriber), rows)
                ids = session.scalars(select(Subscriber.id)).all()
                session.execute(
                    insert(Subscription),
                    [{"subscriber_id": i, "newsletter": "weekly", "created_at": NOW} for i in ids],
                )
        self.count = subscribers
        if self.kind == "postgresql":
            # committed: under a transaction that is rolled back, ANALYZE's statistics
            # are rolled back with it (and the planner then believes the tables empty)
            with self.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")

    def close(self) -> None:
        self.engine.dispose()
        if self.schema:
            with self.admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{self.schema}" CASCADE')
            self.admin.dispose()


def write_config(folder: Path, port: int, connections: int) -> Path:
    path = folder / f"config-{port}-{connections}.yaml"
    path.write_text(CONFIG.format(port=port, connections=connections))
    return path


def our_send(store: Store, config: Path, code: Path | None = None) -> dict[str, Any]:
    """One send in a child process; ``code``: a checkout whose ``publisher`` it runs
    (the baseline), else this one's."""
    env = {**os.environ, "PUBLISHER_SECRET_KEY": "bench-secret"}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    args = [sys.executable, __file__, "--child", str(config), store.url, store.schema or ""]
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def source_rate(port: int, connections: int, messages: int, size: int, repeats: int = 3) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [
                SOURCE,
                "-d",
                "-s",
                str(connections),
                "-m",
                str(messages),
                "-l",
                str(size),
                "-f",
                "news@icscentre.org",
                "-t",
                "reader@example.org",
                f"127.0.0.1:{port}",
            ],
            check=True,
        )
        rates.append(messages / (time.perf_counter() - start))
    return statistics.median(rates)


def message_size(store: Store) -> int:
    from publisher.audience.recipients import Recipient
    from publisher.mail.compose import Editions, build_digest

    settings = store.settings
    with store.factory() as session:
        digest = build_digest(session, settings.digests[0], settings, NOW)
    template = Editions(digest, settings.digests[0], settings, NOW, "k").template(())
    assert template is not None
    return len(template.render(Recipient("reader1@example.org", "Reader 1", 1), stuffed=True))


HEAD = (
    "database",
    "code",
    "path",
    "conns",
    "messages",
    "ours msg/s",
    "smtp-source msg/s",
    "ratio",
    "CPU ms/msg",
    "database CPU",
    "mail server CPU",
    "peak MB (PSS)",
    "first 10% msg/s",
    "last 10% msg/s",
)


class Bench:
    """The sends of one run of the bench, their rows, and the goals they meet."""

    def __init__(self, folder: Path, baseline: Path | None, sink: int) -> None:
        self.folder = folder
        #: the smtp-sink process: the mail server's CPU per message is printed too
        self.sink = sink
        self.codes: list[tuple[str, Path | None]] = [("this", None)]
        if baseline is not None:
            self.codes.append(("baseline", baseline))
        self.rows: list[tuple[str, ...]] = []
        self.goals: list[tuple[str, bool]] = []
        self.notes: list[str] = []

    def send(
        self,
        stores: dict[str, Store],
        subscribers: int,
        where: str,
        port: int,
        conns: int,
        floor: float,
    ) -> dict[str, dict[str, Any]]:
        """The same send made by each code on its own store, side by side (the list
        loaded afresh for each)."""
        found = {}
        for label, code in self.codes:
            store = stores[label]
            store.load(subscribers)
            started = time.perf_counter()
            sink_cpu = process_cpu(self.sink)
            result = our_send(store, write_config(self.folder, port, conns), code)
            messages = max(result["messages"], 1)
            result["rate"] = result["messages"] / result["elapsed"]
            result["cpu_ms"] = 1000 * result["cpu"] / messages
            result["sink_ms"] = 1000 * (process_cpu(self.sink) - sink_cpu) / messages
            db_cpu = result["db_cpu"]
            result["db_ms"] = 0.0 if db_cpu is None else 1000 * db_cpu / messages
            self.rows.append(
                (
                    store.kind,
                    label,
                    where,
                    str(conns),
                    f"{result['messages']:,}",
                    f"{result['rate']:,.0f}",
                    f"{floor:,.0f}",
                    f"{result['rate'] / floor:.2f}",
                    f"{result['cpu_ms']:.3f}",
                    "-" if db_cpu is None else f"{result['db_ms']:.3f}",
                    f"{result['sink_ms']:.3f}",
                    f"{result['maxrss_mb']:.0f}",
                    f"{result['first10']:,.0f}",
                    f"{result['last10']:,.0f}",
                )
            )
            print(" | ".join(self.rows[-1]), f"({time.perf_counter() - started:.0f} s)")
            found[label] = result
        return found

    def goal(self, text: str, met: bool) -> None:
        self.goals.append((text, met))

    def ceiling(self, kind: str, result: dict[str, Any], floor: float) -> None:
        """What the machine's cores allow when the sender, the database server and the
        mail server share them: the CPU of a message, all of them together."""
        cores = len(os.sched_getaffinity(0))
        total = result["cpu_ms"] + result["db_ms"] + result["sink_ms"]
        most = cores * 1000 / total
        self.notes.append(
            f"{kind}: a message costs {total:.3f} ms of CPU in all (sender "
            f"{result['cpu_ms']:.3f}, database server {result['db_ms']:.3f}, mail server "
            f"{result['sink_ms']:.3f}): {cores} cores allow at most {most:,.0f} msg/s, "
            f"{most / floor:.2f} of smtp-source; this send used "
            f"{result['rate'] * total / 1000:.2f} of them"
        )

    def report(self) -> None:
        rows = self.rows
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEAD)]
        print()
        print("  ".join(h.ljust(w) for h, w in zip(HEAD, widths, strict=True)))
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        print()
        for text in self.notes:
            print(text)
        print()
        for text, met in self.goals:
            print(f"[{'met' if met else 'NOT met'}] {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000, help="the smaller list (memory)")
    parser.add_argument(
        "--one-connection", type=int, help="the list for the 1-connection send (default: all)"
    )
    parser.add_argument("--proxied", type=int, default=10_000, help="messages through the proxy")
    parser.add_argument("--source-messages", type=int, default=20_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another version (git archive REV | tar -x -C DIR): each send "
        "is made with its code too, side by side",
    )
    args = parser.parse_args()
    for tool in (SINK, SOURCE):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install postfix (it need not run)")

    folder = Path(tempfile.mkdtemp(prefix="bench-send-"))
    sink_port, proxy_port = free_port(), free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen([SINK, *user, f"127.0.0.1:{sink_port}", "1024"])
    proxy = subprocess.Popen(
        [sys.executable, __file__, "--proxy", str(proxy_port), str(sink_port), "0.00125"]
    )
    wait_port(sink_port)
    wait_port(proxy_port)
    bench = Bench(folder, args.baseline, sink.pid)
    try:
        with resources.as_file(resources.files("publisher") / "sample") as sample:
            floors: dict[tuple[str, int], float] = {}
            for kind in [args.only] if args.only else ["sqlite", "postgresql"]:
                config = write_config(folder, sink_port, 4)
                stores: dict[str, Store] = {}
                try:
                    for label, code in bench.codes:
                        stores[label] = Store(kind, folder, config, sample, code)
                except Exception as e:  # noqa: BLE001 - no PostgreSQL: say so, go on
                    print(f"{kind}: skipped ({e})")
                    for made in stores.values():
                        made.close()
                    continue
                store = stores["this"]
                try:
                    store.load(args.small)
                    if not floors:
                        size = message_size(store)
                        print(f"message size {size:,} bytes (smtp-source -l {size})")
                        for where, port, n_source in (
                            ("loopback", sink_port, args.source_messages),
                            ("proxy +2.5 ms", proxy_port, max(1000, args.proxied // 5)),
                        ):
                            for conns in (1, 4):
                                floors[(where, conns)] = source_rate(port, conns, n_source, size)
                    measure(bench, stores, args, floors, sink_port, proxy_port)
                finally:
                    for made in stores.values():
                        made.close()
    finally:
        proxy.terminate()
        sink.terminate()
        shutil.rmtree(folder, ignore_errors=True)
    bench.report()


def measure(
    bench: Bench,
    stores: dict[str, Store],
    args: argparse.Namespace,
    floors: dict[tuple[str, int], float],
    sink_port: int,
    proxy_port: int,
) -> None:
    """Every send of the bench on one database, and the goals they meet (ours)."""
    kind, loopback = stores["this"].kind, floors[("loopback", 4)]
    # peak memory at the small list and at the big one (4 connections, loopback)
    small = bench.send(stores, args.small, "loopback", sink_port, 4, loopback)["this"]
    one = args.one_connection or args.subscribers
    bench.send(stores, one, "loopback", sink_port, 1, floors[("loopback", 1)])
    ours = bench.send(stores, args.subscribers, "loopback", sink_port, 4, loopback)["this"]
    for conns in (1, 4):
        floor = floors[("proxy +2.5 ms", conns)]
        found = bench.send(stores, args.proxied, "proxy +2.5 ms", proxy_port, conns, floor)
        rate = found["this"]["rate"]
        bench.goal(
            f"{kind}: through the proxy at {conns} connection(s), at least smtp-source's "
            f"rate ({rate / floor:.2f})",
            rate >= floor,
        )
    bench.ceiling(kind, ours, loopback)
    bench.goal(
        f"{kind}: loopback, 4 connections, at least 0.8 of smtp-source "
        f"({ours['rate'] / loopback:.2f})",
        ours["rate"] >= 0.8 * loopback,
    )
    bench.goal(
        f"{kind}: CPU per message at most 0.25 ms ({ours['cpu_ms']:.3f} ms)",
        ours["cpu_ms"] <= 0.25,
    )
    if kind == "postgresql":
        change = ours["last10"] / ours["first10"]
        bench.goal(
            f"postgresql: last 10% rate within 10% of the first 10% ({change:.2f})",
            change >= 0.9,
        )
    small_mb, big_mb = small["maxrss_mb"], ours["maxrss_mb"]
    bench.goal(
        f"{kind}: peak memory under 150 MB ({big_mb:.0f} MB at {args.subscribers:,})",
        big_mb < 150,
    )
    bench.goal(
        f"{kind}: memory flat in the list size ({small_mb:.0f} MB at {args.small:,}, "
        f"{big_mb:.0f} MB at {args.subscribers:,})",
        big_mb <= small_mb * 1.2 + 5,
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        run_child(sys.argv[2], sys.argv[3], sys.argv[4] or None)
    elif len(sys.argv) > 1 and sys.argv[1] == "--migrate":
        migrate(sys.argv[2], sys.argv[3] or None)
    elif len(sys.argv) > 1 and sys.argv[1] == "--proxy":
        run_proxy(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        main()
