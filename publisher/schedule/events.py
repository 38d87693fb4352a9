"""One log line per event: what happened, to which newsletter, its window and counts.

``publisher run --log-format json`` writes the same events as JSON lines
(``time``, ``level``, ``event``, ``message`` and the event's fields), for a
log shipper; the text format is for people.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

log = logging.getLogger("publisher.schedule")

LogFormat = Literal["text", "json"]


def emit(event: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event; ``fields`` are the values a JSON line carries besides the message."""
    log.log(level, message, extra={"event": event, "fields": fields})


class JsonLines(logging.Formatter):
    """Each record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="seconds"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", record.name),
            "message": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            line[key] = value.isoformat() if isinstance(value, datetime) else value
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(log_format: LogFormat, stream: TextIO) -> None:
    """Send the publisher's log lines to ``stream``; the libraries' only when they warn."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
