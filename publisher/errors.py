"""The one exception tree of the publisher.

Every error a user can cause is a :class:`PublisherError` whose message says
what is wrong, where (file, line, field) and, where it helps, how to fix it.
The CLI prints ``str(error)`` on one line; the web layer maps it to a 4xx.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class PublisherError(Exception):
    """Base of every error the publisher raises on purpose."""


class ConfigError(PublisherError):
    """config.yaml (or an environment variable it names) is wrong.

    :param path: the config file.
    :param key: dotted key, e.g. ``email.smtp.port``.
    :param message: what is wrong with it.
    :param line: 1-based line in the file, where known.
    """

    def __init__(self, path: str, key: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.key = key
        self.line = line
        where = f"{path}:{line}" if line else path
        text = f"{where}: {key}: {message}" if key else f"{where}: {message}"
        super().__init__(text)


class ContentError(PublisherError):
    """A post (a Markdown file, a feed entry or a stored post) is not usable.

    :param source: the file, URL or post id it came from.
    :param field: the front-matter field at fault, if one is.
    :param line: 1-based line in the file, where known.
    """

    def __init__(
        self, source: str, message: str, field: str | None = None, line: int | None = None
    ) -> None:
        self.source = source
        self.message = message
        self.field = field
        self.line = line
        where = f"{source}:{line}" if line else source
        what = f"{field}: {message}" if field else message
        super().__init__(f"{where}: {what}")

    def __reduce__(self) -> tuple[Callable[..., ContentError], tuple[Any, ...]]:
        # a parse worker returns its problem to the importer: it must survive pickling
        return type(self), (self.source, self.message, self.field, self.line)

    @property
    def each(self) -> list[ContentError]:
        """The problems this error stands for: itself."""
        return [self]


class PostProblems(ContentError):
    """Several problems of one post file, so its author fixes them in one go.

    Reads as the first where one problem is expected; :attr:`each` has them all,
    in the order of the file's lines.
    """

    def __init__(self, problems: Sequence[ContentError]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        super().__init__(first.source, first.message, first.field, first.line)
        self.args = ("\n".join(str(problem) for problem in self.problems),)

    @staticmethod
    def of(problems: Sequence[ContentError]) -> ContentError:
        """One file's problems as one error, in the order of their lines."""
        ordered = sorted(problems, key=lambda problem: problem.line or 0)
        return ordered[0] if len(ordered) == 1 else PostProblems(ordered)

    def __reduce__(self) -> tuple[Callable[..., ContentError], tuple[Any, ...]]:
        return type(self), (self.problems,)

    @property
    def each(self) -> list[ContentError]:
        return self.problems


class ImportFailed(PublisherError):
    """An import found errors; nothing was written.

    Carries every :class:`ContentError` found, so a user fixes them in one go.
    """

    def __init__(self, errors: Sequence[ContentError]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  {e}" for e in self.errors)
        count = len(self.errors)
        noun = "error" if count == 1 else "errors"
        super().__init__(f"import refused, {count} {noun}; the database is unchanged:\n{lines}")


class OutputError(PublisherError):
    """A generated file cannot be written."""


class DatabaseError(PublisherError):
    """The database cannot be reached, or its schema is not the one this version needs."""


class NotFound(PublisherError):
    """A thing named on the command line or in a URL does not exist."""


class EmptyDigest(PublisherError):
    """No post was published in the digest's window: nothing to send."""


class TemplateError(PublisherError):
    """An email template is missing or does not render."""


class AddressError(PublisherError):
    """An email address no server would take, or one this sender cannot deliver to.

    :param address: the address as it was given.
    :param why: what is wrong with it.
    """

    def __init__(self, address: str, why: str) -> None:
        self.address = address
        self.why = why
        super().__init__(f"{address!r} is not a usable email address: {why}")


class NameRefused(PublisherError):
    """A subscriber's name no store can keep as it is.

    :param why: what is wrong with it, as a phrase ("a name cannot hold …").
    :param length: its length, when it is too long (else None: a control character).
    """

    def __init__(self, why: str, length: int | None = None) -> None:
        self.why = why
        self.length = length
        super().__init__(why)


class DeliveryError(PublisherError):
    """A message could not be handed to the SMTP server.

    :param recipient: the address the message was for.
    :param permanent: True when retrying cannot help (5xx, bad address).
    """

    def __init__(
        self,
        recipient: str,
        message: str,
        permanent: bool = False,
        original_error: BaseException | None = None,
    ) -> None:
        self.recipient = recipient
        self.permanent = permanent
        self.original_error = original_error
        super().__init__(f"{recipient}: {message}")


class SubscriptionError(PublisherError):
    """A subscription cannot change as asked, because of where the subscriber stands.

    :param address: the subscriber's address.
    :param status: their status now (``unsubscribed``, ``bounced`` …, or ``erased``).
    """

    def __init__(self, address: str, status: str, message: str) -> None:
        self.address = address
        self.status = status
        super().__init__(f"{address} ({status}): {message}")


class BadToken(PublisherError):
    """A signed link that cannot be honoured.

    :param reason: ``invalid`` (forged or cut short), ``expired``, ``purpose``
        (a token made for another page), ``used`` (a confirmation already
        clicked) or ``test`` (a link from a test message).
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class TransportError(PublisherError):
    """The SMTP server cannot take messages now: never a recipient's fault.

    Refused connection, TLS failure, refused login, timeouts, 421, a refused
    sender address. The send stops with the run open; no subscriber is failed.

    :param server: ``host:port``.
    :param why: what went wrong, and the fix.
    """

    def __init__(self, server: str, why: str, original_error: BaseException | None = None) -> None:
        self.server = server
        self.why = why
        self.original_error = original_error
        super().__init__(f"SMTP server {server}: {why}")


class SenderBusy(PublisherError):
    """Another sender holds this digest's run where only one may (SQLite)."""


class AlreadyRunning(PublisherError):
    """Another ``publisher run`` holds the lead on this database and no second may start.

    :param lock: what is held (the lock file, or the database).
    :param holder: what the holder wrote about itself, if anything.
    """

    def __init__(self, lock: str, holder: str, message: str) -> None:
        self.lock = lock
        self.holder = holder
        super().__init__(message)
