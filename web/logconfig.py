"""Logging for the long-running commands (``serve``, ``web``, ``worker``): readable text by
default, or with ``LOG_FORMAT=json`` one JSON object per line for log aggregators.

A JSON line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, plus
``workspace_id``, ``campaign_id`` and ``notification_id`` where the code logging it knows
them (passed as ``extra=``), and ``exception`` (the traceback as one string) for bugs.
Expected operational errors (the database unreachable, an unusable stored schedule) are
logged as one line by the code that meets them, not as tracebacks.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

#: Record attributes copied into a JSON line when a log call passed them in ``extra``.
CONTEXT_FIELDS = ("workspace_id", "campaign_id", "notification_id")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Libraries that narrate every step at INFO (a job ran, a connection opened, the schema
#: checked at start).
_CHATTY = ("apscheduler", "urllib3", "alembic")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (a test runner may swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def check_log_format(value: Any) -> str:
    text = str(value or "text").strip().lower()
    if text not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {value!r}")
    return text


def gunicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """gunicorn configures its own loggers: in JSON mode, this makes its lines (and the
    root logger's, in its workers) JSON too. None keeps gunicorn's text lines."""
    if log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "root": {"level": "INFO", "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False},
            # no access log, as with waitress (and as gunicorn does in text mode)
            "gunicorn.access": {"level": "WARNING", "handlers": ["json"], "propagate": False},
        },
    }


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Send the root logger's records to stderr in ``log_format`` (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
