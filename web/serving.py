"""Serving the app with waitress (``hookcast serve`` and ``hookcast web``).

Waitress warns "Task queue depth is N" each time a request arrives while all its threads
are busy: under load that is a line per request (issue #14: 4,200 lines in 30 s). The
thread pool is sized for the work a request does (a database round trip or a render, not
CPU-bound minutes), the listen backlog holds bursts, and the warning is let through at most
once a minute, saying how many were left out and the deepest queue seen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

#: Request threads by default: enough that requests waiting on the database (the SQLite
#: writer lock, a PostgreSQL round trip) do not queue the quick ones; fewer than the
#: database pool (20 + 20 overflow per process), so a thread never waits for a connection.
DEFAULT_THREADS = 16
#: Connections the kernel queues while every thread is busy (waitress: 1024).
LISTEN_BACKLOG = 2048
QUEUE_WARNING_INTERVAL = 60.0


class QueueDepthWarnings(logging.Filter):
    """A filter for the ``waitress.queue`` logger: one warning per ``interval`` seconds."""

    def __init__(
        self, interval: float = QUEUE_WARNING_INTERVAL, clock: Callable[[], float] = time.monotonic
    ):
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._left_out = 0
        self._deepest = 0

    def filter(self, record: logging.LogRecord) -> bool:
        depth = record.args[0] if isinstance(record.args, tuple) and record.args else 0
        now = self._clock()
        with self._lock:
            self._deepest = max(self._deepest, depth if isinstance(depth, int) else 0)
            if self._last is not None and now - self._last < self.interval:
                self._left_out += 1
                return False
            left_out, deepest = self._left_out, self._deepest
            self._last, self._left_out, self._deepest = now, 0, 0
        if left_out:
            record.msg = (
                "Task queue depth is %d (every request thread busy; %d more such warnings "
                "in the last %d s left out, deepest queue %d)"
            )
            record.args = (depth, left_out, int(self.interval), deepest)
        return True


_queue_filter = QueueDepthWarnings()


def quiet_queue_warnings() -> None:
    """Install the once-a-minute filter on waitress's queue logger (once per process)."""
    queue_logger = logging.getLogger("waitress.queue")
    if _queue_filter not in queue_logger.filters:
        queue_logger.addFilter(_queue_filter)


def waitress_server(app: Any, host: str, port: int, threads: int) -> Callable[[], None]:
    """What serves ``app`` with waitress until interrupted (``hookcast serve`` and ``web``)."""

    def serve() -> None:
        import waitress

        logging.getLogger("hookcast").info("Hookcast is listening on http://%s:%d/", host, port)
        quiet_queue_warnings()
        waitress.serve(app, **waitress_options(host, port, threads))

    return serve


def waitress_options(host: str, port: int, threads: int) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "threads": threads,
        "backlog": LISTEN_BACKLOG,
        "ident": "Hookcast",
    }


class RequestsInFlight:
    """WSGI middleware counting the requests being answered, for ``hookcast serve``: its
    delivery worker gives them precedence (``Worker(answering_requests=...)``)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self._app = app
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self._lock:
            self._count += 1
        try:
            return self._app(environ, start_response)
        finally:
            with self._lock:
                self._count -= 1

    def answering(self) -> bool:
        return self._count > 0
