"""The subscribe endpoint under load (``bench/subscribers.py --only subscribe``).

``publisher serve`` runs as its own process, as in production (waitress, one
process); confirmation emails go to postfix's smtp-sink; the load generator is
``--clients`` processes, each on one keep-alive connection, each first fetching
the form (its cookie and CSRF token, as a browser does) and then sending it
with a new address every time, so every request does the whole work: CSRF
check, the per-address count, the store's request and consent rows, and the
confirmation email rendered and sent by the outbox thread.
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


def bench_subscribe(args: argparse.Namespace, root: Path) -> None:
    if not Path(SMTP_SINK).exists():
        print("subscribe endpoint: skipped, postfix's smtp-sink is not installed")
        return
    smtp, port = free_port(), free_port()
    config = root / "subscribe.yaml"
    config.write_text(CONFIG.format(smtp=smtp, port=port, db=root / "subscribe.db"))
    publisher = [sys.executable, "-m", "publisher", "--config", str(config)]
    subprocess.run([*publisher, "init", "--sample"], check=True, capture_output=True)
    sink = subprocess.Popen([SMTP_SINK, "-u", "nobody", f"127.0.0.1:{smtp}", "256"])
    env = {**os.environ, "PUBLISHER_SECRET_KEY": "bench-secret-" + "k" * 32}
    server = subprocess.Popen(
        [*publisher, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for(port, server)
        load(port, args.clients, 99, 200, True)  # warm up: imports, caches, the SMTP connection
        settle(server.pid)
        posts, drained, by_cpu, pages = [], [], [], []
        for run in range(args.runs):
            cpu, started = cpu_seconds(server.pid), time.perf_counter()
            seconds, good = load(port, args.clients, run, args.requests, True)
            done = good / seconds
            quiet = settle(server.pid)
            used = cpu_seconds(server.pid) - cpu
            posts.append(done)
            drained.append(good / (quiet - started - 0.3))
            by_cpu.append(good / used)
            assert good == args.requests // args.clients * args.clients, f"{good} usual answers"
            page_seconds, page_good = load(port, args.clients, run, args.requests, False)
            pages.append(page_good / page_seconds)
            print(
                f"  run {run + 1}: {good:,} subscribe requests in {seconds:.2f} s = {done:,.0f}/s;"
                f" emails all sent after {quiet - started - 0.3:.2f} s; server CPU {used:.2f} s;"
                f" form page {pages[-1]:,.0f}/s"
            )
    finally:
        server.terminate()
        server.wait()
        sink.terminate()
        sink.wait()
    median = statistics.median(posts)
    page = statistics.median(pages)
    print(
        f"Subscribe endpoint, one waitress process on SQLite, {args.clients} client processes "
        f"(median of {args.runs}): {median:,.0f} requests/s"
    )
    print(f"  goal {GOAL}/s: {median / GOAL:.2f}x the goal")
    print(
        f"  until the last confirmation email was sent: {statistics.median(drained):,.0f}/s; "
        f"by the server's CPU time: {statistics.median(by_cpu):,.0f}/s per core"
    )
    print(f"  form page (GET /subscribe): {page:,.0f}/s; subscribe / page: {median / page:.2f}x")
