"""Cross-process wake-ups on PostgreSQL: ``LISTEN hookcast_outbox`` on a dedicated connection.

Any process that commits new work issues ``NOTIFY hookcast_outbox``
(``engine.store.wakeups.announce_new_notifications``); every worker's listener wakes its
dispatcher. After a lost connection the listener reconnects and wakes the dispatcher once,
since notifications sent meanwhile were missed (the periodic poll also covers that gap).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import URL

from engine.store.wakeups import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)


def libpq_conninfo(url: URL) -> str:
    """A SQLAlchemy PostgreSQL URL as a libpq connection string."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class OutboxListener:
    """A thread that calls ``on_notify`` whenever new outbox work is announced."""

    def __init__(self, url: URL, on_notify: Callable[[], None]) -> None:
        self._conninfo = libpq_conninfo(url)
        self._on_notify = on_notify
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hookcast-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._on_notify()  # anything announced while we were not listening
                    backoff = 0.5
                    while not self._stopped.is_set():
                        for _notify in conn.notifies(timeout=1.0):
                            self._on_notify()
            except psycopg.Error as exc:
                logger.warning("outbox listener lost its connection (%s); reconnecting", exc)
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, 10.0)
