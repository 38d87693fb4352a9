"""The subscribe endpoint under load (``bench/subscribers.py --only subscribe``).

``publisher serve`` runs as its own process, as in production (waitress, one
process); confirmation emails go to postfix's smtp-sink; the load generator is
``--clients`` processes, each on one keep-alive connection, each first fetching
the form (its cookie and CSRF token, as a browser does) and then sending it
with a new address every time, so every request does the whole work: CSRF
check, the per-address count, the store's request and consent rows, and the
confirmation email rendered and sent by the outbox thread.

Each version (:class:`Version`: this checkout, and a ``--baseline`` source
tree) gets its own server, database and smtp-sink; the runs take turns.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

GOAL = 300
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
CONFIG = """\
site: {{title: International Civil Society Centre, base_url: "https://icscentre.org/",
       timezone: Europe/Berlin, postal_address: "Agricolastraße 26, 10555 Berlin, Germany"}}
email:
  sender: "International Civil Society Centre <news@icscentre.org>"
  smtp: {{host: 127.0.0.1, port: {smtp}, security: none}}
database: {{url: "sqlite:///{db}"}}
digests:
  - {{name: weekly, schedule: "0 9 * * MON"}}
  - {{name: monthly, schedule: "0 9 1 * *"}}
web:
  port: {port}
  secure_cookies: false
  subscribe_limit_per_client: 1000000/hour
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answers on port {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(port: int, worker: int, run: int, count: int, post: bool) -> int:
    """One browser: fetch the form, then send it ``count`` times. Returns the answers that
    were the usual one."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/subscribe")
    response = connection.getresponse()
    page = response.read().decode()
    cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found and cookie, "the form has no CSRF token or cookie"
    good = 0
    for i in range(count):
        if not post:
            connection.request("GET", "/subscribe")
            good += connection.getresponse().read().count(b"csrf_token") > 0
            continue
        body = urllib.parse.urlencode(
            {
                "csrf_token": found.group(1),
                "address": f"load.{run}.{worker}.{i}@example.org",
                "name": "Load Test",
                "newsletter": ["weekly", "monthly"],
                "topic": "sdgs",
                "website": "",
            },
            doseq=True,
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
        connection.request("POST", "/subscribe", body, headers)
        answer = connection.getresponse()
        good += answer.status == 200 and b"Check your inbox" in answer.read()
    connection.close()
    return good


def load(port: int, clients: int, run: int, total: int, post: bool) -> tuple[float, int]:
    each = total // clients
    with multiprocessing.Pool(clients) as pool:
        started = time.perf_counter()
        results = pool.starmap(client, [(port, w, run, each, post) for w in range(clients)])
        return time.perf_counter() - started, sum(results)


def settle(pid: int) -> float:
    """Wait until the server's CPU goes quiet (its outbox has sent every email); when."""
    last = cpu_seconds(pid)
    while True:
        time.sleep(0.3)
        now = cpu_seconds(pid)
        if now - last < 0.01:
            return time.perf_counter()
        last = now


@dataclass(frozen=True)
class Version:
    """A version of publisher to measure: its source tree, put first on PYTHONPATH."""

    label: str
    tree: Path

    def env(self, **more: str) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.tree), **more}


class Server:
    """``publisher serve`` of one version, on its own database and smtp-sink."""

    def __init__(self, version: Version, root: Path) -> None:
        self.version = version
        folder = root / f"subscribe-{version.label}"
        folder.mkdir()
        smtp, self.port = free_port(), free_port()
        config = folder / "subscribe.yaml"
        config.write_text(CONFIG.format(smtp=smtp, port=self.port, db=folder / "subscribe.db"))
        publisher = [sys.executable, "-m", "publisher", "--config", str(config)]
        # run from the folder: ``python -m`` puts the working directory before PYTHONPATH
        subprocess.run(
            [*publisher, "init", "--sample"],
            check=True,
            capture_output=True,
            env=version.env(),
            cwd=folder,
        )
        self.sink = subprocess.Popen([SMTP_SINK, "-u", "nobody", f"127.0.0.1:{smtp}", "256"])
        # the server's log goes to a file: a pipe nobody reads fills up, and then
        # waitress's "queue depth" warnings block every thread that logs
        self.log = folder / "serve.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*publisher, "serve"],
                env=version.env(PUBLISHER_SECRET_KEY="bench-secret-" + "k" * 32),
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=folder,
            )
        self.pid = self.process.pid

    def start(self) -> None:
        try:
            wait_for(self.port, self.process)
        except SystemExit:
            print(self.log.read_text()[-2000:])
            raise

    def stop(self) -> None:
        for process in (self.process, self.sink):
            process.terminate()
            process.wait()


@dataclass
class Figures:
    """One version's runs."""

    posts: list[float] = field(default_factory=list)
    drained: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    pages: list[float] = field(default_factory=list)


def measure(server: Server, args: argparse.Namespace, run: int, requests: int) -> Figures:
    """One run: ``requests`` subscribe forms, then as many form pages."""
    figures = Figures()
    cpu, started = cpu_seconds(server.pid), time.perf_counter()
    seconds, good = load(server.port, args.clients, run, requests, True)
    quiet = settle(server.pid)
    used = cpu_seconds(server.pid) - cpu
    assert good == requests // args.clients * args.clients, f"{good} usual answers"
    figures.posts.append(good / seconds)
    figures.drained.append(good / (quiet - started - 0.3))
    figures.cpu_ms.append(used / good * 1000)
    page_seconds, page_good = load(server.port, args.clients, run, requests, False)
    figures.pages.append(page_good / page_seconds)
    print(
        f"  run {run + 1}, {server.version.label}: {good:,} subscribe requests in {seconds:.2f} s"
        f" = {figures.posts[-1]:,.0f}/s; emails all sent after {quiet - started - 0.3:.2f} s;"
        f" server CPU {figures.cpu_ms[-1]:.2f} ms a request; form page {figures.pages[-1]:,.0f}/s"
    )
    return figures


def bench_subscribe(args: argparse.Namespace, root: Path, versions: list[Version]) -> None:
    if not Path(SMTP_SINK).exists():
        print("subscribe endpoint: skipped, postfix's smtp-sink is not installed")
        return
    servers = [Server(v, root) for v in versions]
    results = {v.label: Figures() for v in versions}
    try:
        for server in servers:
            server.start()
            load(server.port, args.clients, 99, 200, True)  # warm up: imports, caches, SMTP
            settle(server.pid)
        for run in range(args.runs):  # the versions take turns, so both see the same load
            for server in servers:
                requests = args.requests if server is servers[0] else args.baseline_requests
                figures = measure(server, args, run, requests)
                mine = results[server.version.label]
                for name in ("posts", "drained", "cpu_ms", "pages"):
                    getattr(mine, name).extend(getattr(figures, name))
    finally:
        for server in servers:
            server.stop()
    median = statistics.median
    this = results[versions[0].label]
    print(
        f"Subscribe endpoint, one waitress process on SQLite, {args.clients} client processes "
        f"(median of {args.runs}): {median(this.posts):,.0f} requests/s"
    )
    print(f"  goal {GOAL}/s: {median(this.posts) / GOAL:.2f}x the goal")
    print(
        f"  until the last confirmation email was sent: {median(this.drained):,.0f}/s; "
        f"server CPU {median(this.cpu_ms):.2f} ms a request "
        f"({1000 / median(this.cpu_ms):,.0f}/s per core)"
    )
    print(
        f"  form page (GET /subscribe): {median(this.pages):,.0f}/s; "
        f"subscribe / page: {median(this.posts) / median(this.pages):.2f}x"
    )
    for version in versions[1:]:
        base = results[version.label]
        print(
            f"  {version.label} ({version.tree}): {median(base.posts):,.0f} requests/s, "
            f"server CPU {median(base.cpu_ms):.2f} ms a request; "
            f"this / {version.label}: {median(this.posts) / median(base.posts):.1f}x requests/s, "
            f"{median(base.cpu_ms) / median(this.cpu_ms):.1f}x less CPU a request"
        )
