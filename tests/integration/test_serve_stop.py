"""``publisher serve`` stopped by SIGTERM (a service manager, ``docker stop``) or
Ctrl-C sends the confirmation emails still queued before it exits, so a reader
who has just subscribed gets their link."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.smtp_recorder import Recorder, RecordingServer
from tests.webclient import Browser

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Stopping the server while a confirmation is on its way (the mail server takes
# its time) delays the exit until it is sent: the reader is not left without
# their link. The process exits cleanly, on either signal.
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
        port = _free_port()
        server = subprocess.Popen(
            [*PUBLISHER, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"{base}/subscribe", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
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
