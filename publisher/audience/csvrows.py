"""CSV rows of subscribers, read and checked (nothing is written here).

Columns (a header row names them; case, spaces and underscores do not matter):

- ``address`` (required; or ``email``, as other mailers name it): checked and
  normalised like every address.
- ``name``.
- ``newsletters``: digests of config.yaml, separated by ``;`` (empty: all).
- ``topics``: tags (slug or name) separated by ``;``, followed in every
  listed newsletter; ``newsletter:topic`` follows a topic in one only.
- ``consent date``: when they agreed (``2024-05-01`` or
  ``2024-05-01T10:30:00+02:00``; a time without offset is in the site's
  time zone). Required, unless the import gives a default.
- ``status``: ``active`` (or empty), ``unsubscribed``, ``bounced`` or
  ``complained``: a list brought over from another mailer keeps those who
  left, so they are never mailed.

:func:`read_csv` returns the good rows (:class:`Row`) and every bad one as a
:class:`~publisher.errors.ContentError` with its line number and reason.
Rows share their dates and choices, so each distinct cell is checked once.
:mod:`.csvimport` writes the rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from ..addresses import normalise_address
from ..errors import AddressError, ContentError, ImportFailed, NameRefused, NotFound
from ..models import SubscriberStatus
from .choices import Catalogue, TagRef
from .names import tidy_name

COLUMNS = ("address", "name", "newsletters", "topics", "consent date", "status")
#: statuses a row may give; ``pending`` needs the person's own click, so no import sets it
ROW_STATUSES = {
    "": SubscriberStatus.ACTIVE,
    "active": SubscriberStatus.ACTIVE,
    "unsubscribed": SubscriberStatus.UNSUBSCRIBED,
    "bounced": SubscriberStatus.BOUNCED,
    "complained": SubscriberStatus.COMPLAINED,
}

#: (newsletter, tag ids) pairs: hashable, so rows that chose alike share their records
Choices = tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True)
class Row:
    line: int
    email: str
    name: str | None
    choices: Choices
    consent_at: datetime
    status: SubscriberStatus


@dataclass(frozen=True)
class _Fault:
    """What is wrong with a cell, before it has a line number."""

    column: str
    message: str


#: what other mailers (and `subscribers list`) call a column
_ALIASES = {"email": "address", "e mail": "address", "email address": "address"}


def _column(header: str) -> str:
    name = " ".join(header.strip().lower().replace("_", " ").replace("-", " ").split())
    return _ALIASES.get(name, name)


def _parse_date(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """A consent date as posts' dates are read: in the site's zone unless it says
    otherwise, a local time the clocks skip refused."""
    from ..content.postfile import parse_when

    when = parse_when(text.strip(), zone)
    if when > now:
        raise ValueError(f"{text.strip()} is in the future")
    return when


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


class _Reader:
    """Turns CSV records into checked rows, collecting every bad one."""

    def __init__(
        self,
        source: str,
        catalogue: Catalogue[TagRef],
        zone: ZoneInfo,
        now: datetime,
        default_consent: datetime | None,
    ) -> None:
        self.source = source
        self.catalogue = catalogue
        self.zone = zone
        self.now = now
        self.default_consent = default_consent
        self.bad: list[ContentError] = []
        self.seen: dict[str, int] = {}
        #: column → its place in a row (set by :meth:`header`)
        self.positions: dict[str, int] = {}
        self._dates: dict[str, datetime | str] = {}
        self._choices: dict[tuple[str, str], Choices | _Fault] = {}

    def fail(self, line: int, column: str | None, message: str) -> None:
        self.bad.append(ContentError(self.source, message, column, line))

    def header(self, names: Sequence[str]) -> list[str]:
        columns = [_column(n) for n in names]
        unknown = [n for n, c in zip(names, columns, strict=True) if c not in COLUMNS]
        if unknown or "address" not in columns:
            what = (
                f"unknown column {', '.join(repr(u) for u in unknown)}"
                if unknown
                else "no address column"
            )
            raise ImportFailed(
                [
                    ContentError(
                        self.source, f"{what}; the columns are: {', '.join(COLUMNS)}", None, 1
                    )
                ]
            )
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:  # which one would hold the value? (the last one did)
            raise ImportFailed(
                [
                    ContentError(
                        self.source,
                        f"the column {', '.join(repr(c) for c in twice)} is there twice; keep one",
                        None,
                        1,
                    )
                ]
            )
        self.positions = {column: index for index, column in enumerate(columns)}
        return columns

    def row(self, line: int, values: Sequence[str]) -> Row | None:
        """A checked row (``values`` in the header's order), or None (each fault reported)
        if the row is bad."""
        errors = len(self.bad)
        cell = self._cell
        email = ""
        try:
            email = normalise_address(cell(values, "address"))
        except AddressError as e:
            self.fail(line, "address", e.why)
        key = email.lower()
        if email and key in self.seen:
            self.fail(line, "address", f"{email} is a duplicate of line {self.seen[key]}")
        elif email:
            self.seen[key] = line
        choices = self._cached_choices(cell(values, "newsletters"), cell(values, "topics"))
        if isinstance(choices, _Fault):
            self.fail(line, choices.column, choices.message)
        consent_at = self._consent_date(line, cell(values, "consent date"))
        written = cell(values, "status")
        status = ROW_STATUSES.get(written.strip().lower())
        if status is None:
            self.fail(
                line,
                "status",
                f"{written.strip()!r} is not one of active, unsubscribed, bounced, complained",
            )
        name = None
        try:
            name = tidy_name(cell(values, "name"))
        except NameRefused as e:
            self.fail(line, "name", e.why)
        if len(self.bad) > errors:
            return None
        assert consent_at is not None and status is not None and isinstance(choices, tuple)
        return Row(line, email, name, choices, consent_at, status)

    def _cell(self, values: Sequence[str], column: str) -> str:
        """The row's value in ``column``; empty when the file has no such column."""
        index = self.positions.get(column)
        return "" if index is None else values[index]

    def _consent_date(self, line: int, text: str) -> datetime | None:
        if not text.strip():
            if self.default_consent is None:
                self.fail(
                    line,
                    "consent date",
                    "missing: say when this person agreed (or give the import a default date)",
                )
            return self.default_consent
        found = self._dates.get(text)
        if found is None:  # rows share dates: each distinct one is read once
            try:
                found = _parse_date(text, self.zone, self.now)
            except ValueError as e:
                found = str(e)
            self._dates[text] = found
        if isinstance(found, str):
            self.fail(line, "consent date", found)
            return None
        return found

    def _cached_choices(self, newsletters: str, topics: str) -> Choices | _Fault:
        """Rows share their choices: each distinct pair of cells is checked once."""
        key = (newsletters, topics)
        found = self._choices.get(key)
        if found is None:
            found = self._choices[key] = self._check_choices(newsletters, topics)
        return found

    def _check_choices(self, newsletters: str, topics: str) -> Choices | _Fault:
        catalogue = self.catalogue
        try:
            names = [catalogue.newsletter(n) for n in _split(newsletters)]
        except NotFound as e:
            return _Fault("newsletters", str(e))
        names = names or list(catalogue.newsletters)
        chosen: dict[str, list[int]] = {n: [] for n in names}
        try:
            for item in _split(topics):
                where, _, topic = item.rpartition(":")
                tag = catalogue.tag(topic)
                targets = [catalogue.newsletter(where)] if where else names
                for target in targets:
                    if target not in chosen:
                        raise NotFound(f"topic {item!r} is for a newsletter this row does not list")
                    chosen[target].append(tag.id)
        except NotFound as e:
            return _Fault("topics", str(e))
        return tuple((n, tuple(sorted(set(ids)))) for n, ids in chosen.items())


def read_csv(
    text: str,
    source: str,
    catalogue: Catalogue[TagRef],
    zone: ZoneInfo,
    now: datetime,
    default_consent: datetime | None = None,
) -> tuple[list[Row], list[ContentError]]:
    """The good rows of a CSV text, and every bad one (line and reason)."""
    reader = _Reader(source, catalogue, zone, now, default_consent)
    records = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(records)
    except StopIteration:
        raise ImportFailed(
            [ContentError(source, "is empty: expected a header row", None, 1)]
        ) from None
    columns = reader.header(header)
    rows: list[Row] = []
    line = records.line_num + 1
    try:
        for values in records:
            if "".join(values).strip():
                if len(values) != len(columns):
                    reader.fail(
                        line, None, f"has {len(values)} fields; the header has {len(columns)}"
                    )
                else:
                    row = reader.row(line, values)
                    if row is not None:
                        rows.append(row)
            line = records.line_num + 1
    except csv.Error as e:
        reader.fail(records.line_num, None, f"not valid CSV: {e}")
    return rows, reader.bad
