"""Whether the database answers: the errors that mean it is away, a trivial health query,
waiting for it at start, and a log that says so once in a while instead of on every call.

An unreachable PostgreSQL, an SQLite file that cannot be opened or was deleted or replaced
under the process (:class:`~engine.store.db.DatabaseFileReplaced`), a lock not granted in
time or a broken connection are *operational* failures: callers answer "unavailable, try
again" and log one line, never a traceback.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from engine.store.db import Database, DatabaseUnavailable

logger = logging.getLogger(__name__)

_OPERATIONAL = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # no pooled connection within the pool timeout
    DatabaseUnavailable,
)


def is_unavailable_error(error: BaseException) -> bool:
    """True when ``error`` says the database cannot be used right now (not a bug)."""
    return isinstance(error, _OPERATIONAL)


def is_deadlock(error: BaseException) -> bool:
    """True when PostgreSQL chose this transaction as a deadlock's victim (SQLSTATE 40P01):
    rolling back and trying again is safe."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) == "40P01"


def describe(error: BaseException) -> str:
    """One line about an operational failure, without SQL, parameters or traceback."""
    if isinstance(error, DatabaseUnavailable):
        return str(error)
    original = getattr(error, "orig", None) or error
    first_line = (str(original).strip().splitlines() or [type(original).__name__])[0]
    return f"{type(original).__name__}: {first_line}"[:300]


def failure_class(error: BaseException) -> str:
    """The kind of failure, for rate limiting its log line (numbers and quotes dropped, so
    one outage is one class however its messages vary)."""
    return re.sub(r"\d+|\"[^\"]*\"|'[^']*'", "…", describe(error))[:120]


class RateLimitedLog:
    """Logs a line per failure class at most once per ``interval`` seconds, counting what
    it left out so the next line can say how many there were."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, log: logging.Logger, level: int, key: str, message: str) -> bool:
        """Log ``message`` unless ``key`` was logged less than ``interval`` ago; True if it was."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message = f"{message} ({suppressed} more like it since the last such line)"
        log.log(level, message)
        return True


def check_database(database: Database) -> str | None:
    """None when the database answers a trivial query (and, on SQLite, the file is still
    the one this process opened); else one line saying why not."""
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        if not is_unavailable_error(error):
            raise
        return describe(error)
    return database.file_problem()


def wait_for_database(
    database: Database,
    *,
    say: Callable[[str], None],
    first_delay: float = 0.5,
    longest_delay: float = 10.0,
    say_every: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Return once the database answers; until then retry with a growing delay (up to
    ``longest_delay``), saying why at most every ``say_every`` seconds."""
    delay = first_delay
    said_at: float | None = None
    while True:
        problem = check_database(database)
        if problem is None:
            if said_at is not None:
                say("the database answers; starting")
            return
        now = clock()
        if said_at is None or now - said_at >= say_every:
            say(f"waiting for the database ({problem}); retrying every {delay:g} s at most")
            said_at = now
        sleep(delay)
        delay = min(delay * 2, longest_delay)
