"""The production WSGI server (waitress), with the limits the ``web`` settings set.

waitress buffers each request and response, closes connections idle or
stalled for ``web.channel_timeout`` seconds, takes at most
``web.connection_limit`` connections (the rest wait in the listen queue)
and refuses bodies over ``web.max_request_body_kb`` (413), so slow or
half-open clients cannot tie up a thread each as they did with the
development server.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

import waitress
from waitress.server import BaseWSGIServer, MultiSocketServer
from waitress.wasyncore import close_all

from ..config import WebSettings
from ..errors import PublisherError

#: largest request line plus headers (waitress's default is 256 KB)
MAX_HEADER_BYTES = 32 * 1024


def server_options(web: WebSettings) -> dict[str, Any]:
    """waitress's adjustments from the ``web`` settings."""
    return {
        "threads": web.threads,
        "connection_limit": web.connection_limit,
        "channel_timeout": web.channel_timeout,
        # idle channels are only looked for this often (waitress's default: 30 s)
        "cleanup_interval": max(1, min(30, web.channel_timeout // 2)),
        "max_request_body_size": web.max_request_body_kb * 1024,
        "max_request_header_size": MAX_HEADER_BYTES,
        "ident": "publisher",
        # proxies are believed through ProxyFix (web.trusted_proxies), not by waitress
        "clear_untrusted_proxy_headers": False,
    }


def serve(app: Any, web: WebSettings, host: str, port: int) -> None:
    """Serve ``app`` until Ctrl-C (SIGINT) or SIGTERM; then close the sockets and return.

    SIGTERM (what service managers and ``docker stop`` send) ends the server
    as Ctrl-C does, so the caller can finish its work (the confirmation
    emails still queued) instead of the process dying mid-send.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)  # waitress's loop catches it, closes its sockets and returns

    # SIGINT too, explicitly (as `publisher digest send` and `run` do): a process a
    # shell without job control starts in the background (a script's `&`) inherits
    # SIGINT ignored, and Python then raises no KeyboardInterrupt for it
    stops = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, stop) for s in stops}
    try:
        logging.basicConfig()  # as waitress.serve does: its warnings reach stderr
        try:
            server = waitress.create_server(app, host=host, port=port, **server_options(web))
        except (OSError, ValueError) as e:  # the port taken, an address not of this machine
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise PublisherError(
                f"cannot serve on {host}:{port}: {why} (choose another with --host/--port, "
                "or web.host/web.port)"
            ) from e
        server.print_listen("Serving on http://{}:{}")
        server.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class ServerThread:
    """``app`` served by waitress on 127.0.0.1 in a thread (tests and benchmarks)."""

    def __init__(self, app: Any, web: WebSettings, host: str = "127.0.0.1", port: int = 0):
        server = waitress.create_server(app, host=host, port=port, **server_options(web))
        assert isinstance(server, BaseWSGIServer) and not isinstance(server, MultiSocketServer)
        self.server = server
        self.port: int = server.effective_port
        self.url = f"http://{host}:{self.port}"
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="waitress")

    def _run(self) -> None:
        try:
            self.server.run()
        except OSError:
            # closing the sockets under a running select() can end the loop with
            # EBADF; that is the stop we asked for, anything else is not
            if not self._stopping.is_set():
                raise

    def __enter__(self) -> ServerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Close every socket from inside the server's loop, which then ends."""
        logging.getLogger("waitress").setLevel(logging.ERROR)
        self._stopping.set()
        server = self.server
        try:
            server.trigger.pull_trigger(lambda: close_all(server._map))
        except OSError:  # the trigger is gone already: close from here (the loop then ends)
            close_all(server._map, ignore_all=True)
        self._thread.join(timeout=10)
        server.task_dispatcher.shutdown()
