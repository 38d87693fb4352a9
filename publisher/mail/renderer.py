"""Messages made in a process of their own (the *renderer*), beside the send loop.

The send loop's main thread keeps the store and feeds the connections; making
each recipient's message (their links signed, their values put in the compiled
edition, DKIM when configured) is most of a message's CPU, and threads of one
process take turns with the interpreter. So the loop forks a renderer when it
starts: it inherits the settings, the signing key and the editions compiled so
far; an edition loaded later is sent to it once. The loop hands it a group's
recipients once the commit that marks them ``sending`` is done
(:meth:`Renderer.submit`), keeps the store for the next group meanwhile, and
then collects their messages (dot-stuffed for DATA), or why one cannot be
written (:meth:`Renderer.collect`). One group at a time.

The renderer never touches the store (the connections it inherited belong to
the sender), ignores SIGINT and SIGTERM (the sender decides when to stop, and
stops it), and ends when the sender closes its end of the pipe or dies (on
Linux the kernel kills it then, ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from ..audience.recipients import Recipient
from ..config import Settings
from ..errors import PublisherError
from ..processes import kill_with_parent
from .compose import compile_edition
from .digest import Digest
from .message import MessageTemplate, dot_stuff
from .render import Placeholders, RenderedDigest
from .signing import DkimSigner

#: the sender's to act on (finish what is in flight), not the renderer's
_STOPS = {signal.SIGINT, signal.SIGTERM}


class Job(NamedTuple):
    """A message to make: for whom, from which edition (its topics). (Tuples: they
    cross the pipe by the thousand.)"""

    delivery_id: int
    topics: tuple[str, ...]
    email: str
    name: str | None
    subscriber_id: int


class Made(NamedTuple):
    """A message made (``data``, dot-stuffed), or why it could not be (``error``)."""

    delivery_id: int
    data: bytes | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Edition:
    """What the renderer needs to compile an edition the sender loaded after the fork."""

    topics: frozenset[str]
    name: str
    period_start: datetime
    period_end: datetime
    subject: str
    html: str
    text: str
    nonce: str


class Renderer:
    """The renderer process, and the sender's end of its pipe.

    :param compiled: the editions compiled before the fork, by their topics.
    :param date: the messages' ``Date`` (the run's start).
    :param key: signs each recipient's links.
    """

    def __init__(
        self,
        settings: Settings,
        compiled: dict[frozenset[str], MessageTemplate],
        date: datetime,
        key: str,
    ) -> None:
        context = multiprocessing.get_context("fork")
        self._pipe, theirs = context.Pipe()
        self._known = set(compiled)
        #: a group was submitted and not yet collected
        self._making = False
        # made here, before the fork: a key that cannot sign stops the send before any
        # message (the renderer would fail every message, each as its own)
        dkim = DkimSigner(settings.email.dkim, settings.source) if settings.email.dkim else None
        self._process = context.Process(
            target=_serve,
            args=(theirs, self._pipe, settings, dict(compiled), date, key, dkim),
            name="publisher-renderer",
            daemon=True,
        )
        # the renderer ignores the sender's stop signals; blocked until it does, so that
        # one arriving as it starts waits for the sender rather than killing it
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            self._process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        theirs.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def submit(self, jobs: Sequence[Job], templates: dict[frozenset[str], MessageTemplate]) -> None:
        """Start making each job's message (``templates``: the editions the jobs use);
        :meth:`collect` gives them. One group at a time: collect it before the next.

        :raises PublisherError: when the renderer is gone.
        """
        assert not self._making, "collect the group being made first"
        try:
            for topics, template in templates.items():
                if topics not in self._known:
                    self._pipe.send(_edition(topics, template))
                    self._known.add(topics)
            self._pipe.send(list(jobs))
        except OSError as e:
            raise _stopped(e) from e
        self._making = True

    def ready(self) -> bool:
        """Are the messages of the group being made there to collect (without waiting)?"""
        try:
            return self._making and self._pipe.poll()
        except OSError:
            return self._making  # gone: collect says so

    def collect(self) -> list[Made]:
        """The messages of the group :meth:`submit` started, in order (waiting for them).

        :raises PublisherError: when the renderer is gone.
        """
        assert self._making, "nothing is being made"
        self._making = False
        try:
            made: list[Made] = self._pipe.recv()
        except (EOFError, OSError) as e:
            raise _stopped(e) from e
        return made

    def close(self) -> None:
        try:
            self._pipe.send(None)
        except OSError:
            pass
        self._pipe.close()
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _stopped(error: BaseException) -> PublisherError:
    return PublisherError(
        f"the process that makes the messages stopped ({error!r}); the deliveries it was "
        "making a message for were not sent: run `publisher digest send` again"
    )


def _edition(topics: frozenset[str], template: MessageTemplate) -> _Edition:
    rendered = template.rendered
    digest = rendered.digest
    return _Edition(
        topics,
        digest.name,
        digest.period_start,
        digest.period_end,
        rendered.subject,
        rendered.html,
        rendered.text,
        rendered.placeholders.nonce,
    )


def _serve(
    pipe: Connection,
    senders_end: Connection,
    settings: Settings,
    templates: dict[frozenset[str], MessageTemplate],
    date: datetime,
    key: str,
    dkim: DkimSigner | None,
) -> None:
    """The renderer's loop (in the forked process)."""
    senders_end.close()  # so that the sender's death reads as the end of the pipe
    kill_with_parent()
    for stop in _STOPS:
        signal.signal(stop, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
    while True:
        try:
            message: Any = pipe.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        if isinstance(message, _Edition):
            digest = Digest(message.name, message.period_start, message.period_end, ())
            rendered = RenderedDigest(
                digest, message.subject, message.html, message.text, Placeholders(message.nonce)
            )
            templates[message.topics] = compile_edition(rendered, settings, date, key)
            continue
        made = [_make(job, templates, dkim) for job in message]
        try:
            pipe.send(made)
        except OSError:  # the sender closed its end without collecting them (an error)
            break
    os._exit(0)


def _make(
    job: Job, templates: dict[frozenset[str], MessageTemplate], dkim: DkimSigner | None
) -> Made:
    template = templates[frozenset(job.topics)]
    recipient = Recipient(job.email, job.name, job.subscriber_id, job.topics)
    try:
        if dkim is None:
            data = template.render(recipient, stuffed=True)
        else:
            data = dot_stuff(dkim.sign(template.render(recipient)))
    except Exception as e:  # noqa: BLE001 - whatever the encoder says, one delivery fails
        return Made(job.delivery_id, None, str(e) or type(e).__name__)
    return Made(job.delivery_id, data)
