"""Connecting to the database: one SQLAlchemy engine and session factory per process."""

from __future__ import annotations

import ctypes
import functools
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

try:
    import fcntl
except ImportError:  # not on Windows: writers of several processes then rely on SQLite alone
    fcntl = None  # type: ignore[assignment]


def _flock_keeping_the_gil() -> Any:
    """libc's ``flock`` called without releasing the GIL, or None where there is none.

    Only for operations that never block (``LOCK_NB``, ``LOCK_UN``): ``fcntl.flock`` lets go
    of the GIL around the call, and with busy sender threads getting it back costs a switch
    interval (up to 5 ms) — twice per write transaction, on the delivery hot path."""
    if fcntl is None:
        return None
    try:
        function = ctypes.PyDLL(None).flock
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int)
    function.restype = ctypes.c_int
    return function


_flock_nb = _flock_keeping_the_gil()

SQLITE_BUSY_TIMEOUT_MS = 15_000


class DatabaseUnavailable(Exception):
    """The database cannot be used right now; an operational failure, not a bug."""


class DatabaseFileReplaced(DatabaseUnavailable):
    """The SQLite file at the configured path is no longer the one this process opened
    (deleted, renamed away or replaced): writing on would lose the data, reading on would
    answer from the wrong file."""


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL for concurrent readers, a busy timeout for the single writer, real foreign keys."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    try:
        from engine.rules.sql import register_sqlite_functions
    except ImportError:  # the rule engine is optional for plain storage
        return
    register_sqlite_functions(dbapi_connection)


_HOLDS_WRITE_LOCK = "hookcast_holds_write_lock"


class _SQLiteWriters:
    """Serialises SQLite writers: a Python lock within the process, a lock file across
    processes, then BEGIN IMMEDIATE.

    A deferred BEGIN that reads and then writes fails at once with SQLITE_BUSY when
    another process wrote in between (WAL snapshots cannot be upgraded), so writers take
    the write lock up front with BEGIN IMMEDIATE; readers keep the cheap deferred BEGIN.

    Waiting writers queue on the two locks first because SQLite's own busy handler sleeps
    in growing steps (up to 100 ms) and polls: a writer of this process is woken the
    moment the Python lock is released, one of another process (``hookcast web`` beside
    ``hookcast worker``, or ``worker --processes``) within a couple of milliseconds of the
    lock file's release. After the busy timeout a writer goes on to BEGIN IMMEDIATE
    regardless, and SQLite decides.
    """

    def __init__(self, path: str | None) -> None:
        self.lock = threading.RLock()
        self._path = f"{path}.writer-lock" if path and fcntl is not None else None
        self._file: Any = None
        self._pid = 0
        self._depth = 0  # write transactions this process has open (the RLock is reentrant)

    def begin(self, conn: Any) -> None:
        if not conn.get_execution_options().get("sqlite_immediate", False):
            conn.exec_driver_sql("BEGIN")
            return
        self.lock.acquire()
        try:
            if self._depth == 0:
                self._lock_file()
            self._depth += 1
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                self._leave()
                raise
        except BaseException:
            self.lock.release()
            raise
        conn.info[_HOLDS_WRITE_LOCK] = True

    def end(self, conn: Any) -> None:
        if conn.info.pop(_HOLDS_WRITE_LOCK, False):
            self._leave()
            self.lock.release()

    def close(self) -> None:
        with self.lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _leave(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._file is not None:
            if _flock_nb is not None:
                _flock_nb(self._file.fileno(), fcntl.LOCK_UN)
            else:
                fcntl.flock(self._file, fcntl.LOCK_UN)

    def _lock_file(self) -> None:
        if self._path is None:
            return
        if self._file is not None and self._pid != os.getpid():
            self._file.close()  # a forked child's copy; the parent's lock stays as it was
            self._file = None
        if self._file is None:
            self._file = open(self._path, "a+b")  # noqa: SIM115 - kept open, see close()
            self._pid = os.getpid()
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        pause = 0.0005
        while True:
            try:
                if _flock_nb is None:
                    fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                elif _flock_nb(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB) != 0:
                    raise BlockingIOError  # held by another process (EWOULDBLOCK)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return  # let BEGIN IMMEDIATE and SQLite's busy timeout decide
                time.sleep(pause)
                pause = min(pause * 2, 0.002)


#: A pooled server connection idle this long is pinged before it is used again (a server
#: restart or an idle timeout may have closed it). One in steady use is not: a ping on every
#: checkout (``pool_pre_ping``) cost each delivery cycle a round trip, a tenth of its time.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a connection on checkout when it sat idle; a dead one is replaced (the pool
    retries the checkout with a new connection). Last-in-first-out pooling keeps the
    connections in use warm and lets the idle ones age."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError("the pooled connection is gone") from error


class _FileIdentity:
    """The device and inode of the SQLite file this process opened first, checked against
    what the path names now: whenever a pooled connection is handed out, before each
    commit, and before a new connection opens (SQLite would create an empty file at a
    path whose file was deleted). A mismatch raises :class:`DatabaseFileReplaced`, so no
    write is acknowledged unless it is in the file the next start will open."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.identity: tuple[int, int] | None = None

    def _current(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (stat.st_dev, stat.st_ino)

    def problem(self) -> str | None:
        if self.identity is None:
            return None
        current = self._current()
        if current == self.identity:
            return None
        what = "deleted or renamed" if current is None else "replaced by another file"
        return (
            f"the database file {self.path} was {what} after this process opened it; "
            "restore it or restart the process"
        )

    def check(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise DatabaseFileReplaced(problem)

    def before_connect(self, *_args: Any) -> None:
        self.check()

    def after_connect(self, *_args: Any) -> None:
        if self.identity is None:
            self.identity = self._current()
        self.check()

    def on_checkout(self, *_args: Any) -> None:
        self.check()

    def before_commit(self, conn: Any) -> None:
        problem = self.problem()
        if problem is not None:
            # Not committed: roll the open transaction back here, as SQLAlchemy leaves a
            # transaction whose commit event raised open on the connection.
            conn.connection.dbapi_connection.rollback()
            raise DatabaseFileReplaced(problem)


class Database:
    """The engine and session factory for one database URL."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 20) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        # NaN and Infinity are not JSON: a value holding one is refused, never stored as
        # text that reads back invalid (SQLite) or fails inside the driver (PostgreSQL).
        kwargs: dict[str, Any] = {
            "echo": echo,
            "future": True,
            "json_serializer": functools.partial(json.dumps, allow_nan=False),
        }
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 15}
            kwargs["isolation_level"] = None  # we issue BEGIN ourselves, see _SQLiteWriters
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_use_lifo=True)
            if self.dialect == "postgresql" and "connect_timeout" not in self.url.query:
                # a host that drops packets: fail (then wait, answer 503), do not hang
                kwargs["connect_args"] = {"connect_timeout": 10}
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect != "sqlite":
            _ping_when_idle(self.engine)
        self._writers: _SQLiteWriters | None = None
        self._file: _FileIdentity | None = None
        if self.dialect == "sqlite":
            database_file = self.url.database
            in_memory = (
                not database_file
                or database_file == ":memory:"
                or (database_file.startswith("file:") and "mode=memory" in database_file)
            )
            writers = self._writers = _SQLiteWriters(None if in_memory else database_file)
            event.listen(self.engine, "connect", _configure_sqlite)
            self._file = None if in_memory else _FileIdentity(database_file)
            if self._file is not None:  # before the writers' commit: checked, then unlocked
                event.listen(self.engine, "do_connect", self._file.before_connect)
                event.listen(self.engine, "connect", self._file.after_connect)
                event.listen(self.engine.pool, "checkout", self._file.on_checkout)
                event.listen(self.engine, "commit", self._file.before_commit)
            event.listen(self.engine, "begin", writers.begin)
            event.listen(self.engine, "commit", writers.end)
            event.listen(self.engine, "rollback", writers.end)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.write_sessionmaker = sessionmaker(
            self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )

    def file_problem(self) -> str | None:
        """Why the SQLite file may not be used (deleted or replaced since it was opened), or
        None (also for PostgreSQL and in-memory SQLite)."""
        return None if self._file is None else self._file.problem()

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def session(self, *, write: bool = False) -> Session:
        """A new session; the caller commits or rolls back and closes it.

        ``write=True`` for transactions that will write (on SQLite: BEGIN IMMEDIATE).
        """
        return (self.write_sessionmaker if write else self.sessionmaker)()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        with self.session(write=write) as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        if self._writers is not None:
            self._writers.close()
