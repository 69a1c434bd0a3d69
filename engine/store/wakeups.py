"""Announcing new outbox work: PostgreSQL ``NOTIFY`` and in-process wake callbacks.

Whatever makes notifications due (ingest, schedules, manual retries, released leases or held
notifications) announces it here before committing, so dispatchers claim the work at once
instead of waiting for their next poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import event, text
from sqlalchemy.orm import Session

#: PostgreSQL channel on which new work is announced to every worker process.
NOTIFY_CHANNEL = "hookcast_outbox"

_wake_lock = threading.Lock()
_wake_callbacks: list[Callable[[], None]] = []
_ANNOUNCED_KEY = "hookcast_outbox_announced"


def add_wake_callback(callback: Callable[[], None]) -> None:
    """Call ``callback`` (cheap, thread-safe) after any commit that announced new work."""
    with _wake_lock:
        _wake_callbacks.append(callback)


def remove_wake_callback(callback: Callable[[], None]) -> None:
    with _wake_lock:
        if callback in _wake_callbacks:
            _wake_callbacks.remove(callback)


def wake_dispatchers() -> None:
    """Wake every dispatcher running in this process."""
    with _wake_lock:
        callbacks = list(_wake_callbacks)
    for callback in callbacks:
        callback()


def _after_commit(session: Session) -> None:
    if session.info.pop(_ANNOUNCED_KEY, False):
        wake_dispatchers()


def _after_rollback(session: Session) -> None:
    session.info.pop(_ANNOUNCED_KEY, None)


def announce_new_notifications(session: Session) -> None:
    """Announce that this transaction made notifications due; call it before commit.

    On PostgreSQL this issues ``NOTIFY hookcast_outbox`` (delivered to listening workers
    of every process at commit, dropped on rollback). In this process, dispatchers are
    woken right after the commit. Calling it several times in one transaction is cheap.
    """
    if session.info.get(_ANNOUNCED_KEY):
        return
    session.info[_ANNOUNCED_KEY] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    if not event.contains(session, "after_commit", _after_commit):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
