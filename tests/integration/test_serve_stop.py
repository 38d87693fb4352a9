"""``publisher serve`` stopped by SIGTERM (a service manager, ``docker stop``) or
Ctrl-C sends the confirmation emails still queued before it exits, so a reader
who has just subscribed gets their link."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.smtp_recorder import Recorder, RecordingServer, free_port
from tests.webclient import Browser, wait_until_served

pytestmark = pytest.mark.integration

PUBLISHER = [sys.executable, "-m", "publisher"]
CONFIG = """\
site: {{title: Stop test, base_url: "https://news.example.org/", postal_address: "1 Road, Town",
       timezone: Europe/Berlin}}
email:
  sender: "News <news@example.org>"
  smtp: {{host: 127.0.0.1, port: {port}, security: none}}
database: {{url: "sqlite:///publisher.db"}}
feeds: {{output_dir: feeds}}
digests:
  - name: weekly
    schedule: "0 9 * * MON"
web: {{secure_cookies: false}}
"""


# Stopping the server while a confirmation is on its way (the mail server takes
# its time) delays the exit until it is sent: the reader is not left without
# their link. The process exits cleanly, on either signal (SIGINT too when it was
# started with SIGINT ignored, as in the background of a script), and leaves everything in
# the SQLite database file itself (its write-ahead log merged back): a copy of that
# file alone holds the new subscriber.
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_server_sends_the_queued_confirmation_first(
    tmp_path: Path, stop: signal.Signals
) -> None:
    with RecordingServer(Recorder(delay=1.5)) as smtp:
        (tmp_path / "config.yaml").write_text(CONFIG.format(port=smtp.port))
        env = {
            **os.environ,
            "PUBLISHER_CONFIG": str(tmp_path / "config.yaml"),
            "PUBLISHER_SECRET_KEY": "stop-test-secret",
        }
        env.pop("PUBLISHER_DATABASE_URL", None)
        subprocess.run(
            [*PUBLISHER, "init", "--sample"], cwd=tmp_path, env=env, check=True, capture_output=True
        )
        port = free_port()
        server = subprocess.Popen(
            [*PUBLISHER, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # as a shell without job control starts it in the background (`serve &`)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        try:
            base = f"http://127.0.0.1:{port}"
            assert wait_until_served(f"{base}/subscribe"), "publisher serve did not start"
            answer = Browser(base).submit(
                "/subscribe", {"address": "new@example.org", "newsletter": ["weekly"]}
            )
            assert answer.status == 200, answer.text
            server.send_signal(stop)
            output, _ = server.communicate(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        assert server.returncode == 0, output
        assert "Traceback" not in output
        assert [r.recipient for r in smtp.received] == ["new@example.org"]
    shutil.copy(tmp_path / "publisher.db", tmp_path / "copy.db")
    with contextlib.closing(sqlite3.connect(tmp_path / "copy.db")) as copy:
        emails = [row[0] for row in copy.execute("SELECT email FROM subscribers")]
    assert emails == ["new@example.org"]
