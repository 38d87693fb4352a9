"""A real SMTP server for the send tests: aiosmtpd on 127.0.0.1, recording every
message it accepts, and answering as a test script tells it (4xx, 5xx, 421, a
dropped connection, a refused login, a per-connection message cap)."""

from __future__ import annotations

import asyncio
import email
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    recipient: str
    message_id: str
    data: bytes


#: a script: (what, address, how many times this address was seen at this step) -> reply or None
Script = Callable[[str, str, int], str | None]


@dataclass
class Recorder:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    script: Script | None = None
    #: refuse every login
    refuse_login: bool = False
    #: offer ESMTP PIPELINING in the EHLO reply
    pipelining: bool = True
    #: answer 421 after this many messages on one connection (0: no cap)
    cap: int = 0
    #: seconds each DATA takes, to give a kill somewhere to land
    delay: float = 0.0
    seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def by_recipient(self) -> dict[str, list[Received]]:
        out: dict[str, list[Received]] = {}
        with self.lock:
            for r in self.received:
                out.setdefault(r.recipient, []).append(r)
        return out

    def _scripted(self, step: str, address: str) -> str | None:
        with self.lock:
            self.seen[(step, address)] += 1
            n = self.seen[(step, address)]
        return self.script(step, address, n) if self.script else None


class _Handler:
    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook names
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        session.count = 0
        if self.r.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        reply = self.r._scripted("RCPT", address)
        if reply == "drop":
            server.transport.close()
            return "250 OK"
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.r.delay:
            await asyncio.sleep(self.r.delay)
        session.count = getattr(session, "count", 0) + 1
        if self.r.cap and session.count > self.r.cap:
            return "421 4.7.0 too many messages on this connection"
        address = envelope.rcpt_tos[0]
        reply = self.r._scripted("DATA", address)
        if reply == "drop":
            server.transport.close()
            return "250 OK"
        if reply:
            return reply
        data = envelope.original_content
        message_id = email.message_from_bytes(data)["Message-ID"]
        with self.r.lock:
            self.r.received.append(Received(address, message_id, data))
        return "250 2.0.0 accepted"


def _authenticator(recorder: Recorder) -> Callable[..., AuthResult]:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and not recorder.refuse_login
        return AuthResult(success=ok, handled=False)

    return check


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RecordingServer:
    """Start with ``with RecordingServer(recorder) as r:``; ``r.port`` is where it listens."""

    def __init__(self, recorder: Recorder, auth: bool = False) -> None:
        self.recorder = recorder
        recorder.port = free_port()
        options: dict[str, Any] = {}
        if auth:
            options = {
                "authenticator": _authenticator(recorder),
                "auth_require_tls": False,
                "auth_required": True,  # (no TLS on loopback in tests)
            }
        self.controller = Controller(
            _Handler(recorder), hostname="127.0.0.1", port=recorder.port, **options
        )

    def __enter__(self) -> Recorder:
        self.controller.start()
        return self.recorder

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
