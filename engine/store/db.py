"""Connecting to the database: one SQLAlchemy engine and session factory per process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 15_000


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL for concurrent readers, a busy timeout for the single writer, real foreign keys."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    try:
        from engine.rules_sql import register_sqlite_functions
    except ImportError:  # the rule engine is optional for plain storage
        return
    register_sqlite_functions(dbapi_connection)


_HOLDS_WRITE_LOCK = "hookcast_holds_write_lock"


class _SQLiteWriters:
    """Serialises this process's SQLite writers on a Python lock.

    A deferred BEGIN that reads and then writes fails at once with SQLITE_BUSY when
    another process wrote in between (WAL snapshots cannot be upgraded), so writers take
    the write lock up front with BEGIN IMMEDIATE; readers keep the cheap deferred BEGIN.

    Writers of one process also queue on a Python lock first: a waiting thread is woken
    the moment the lock is released, where SQLite's own busy handler sleeps in growing
    steps (up to 100 ms) and polls. Other processes still meet SQLite's busy timeout.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def begin(self, conn: Any) -> None:
        if not conn.get_execution_options().get("sqlite_immediate", False):
            conn.exec_driver_sql("BEGIN")
            return
        self.lock.acquire()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        conn.info[_HOLDS_WRITE_LOCK] = True

    def end(self, conn: Any) -> None:
        if conn.info.pop(_HOLDS_WRITE_LOCK, False):
            self.lock.release()


class Database:
    """The engine and session factory for one database URL."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 20) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 15}
            kwargs["isolation_level"] = None  # we issue BEGIN ourselves, see _SQLiteWriters
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            writers = _SQLiteWriters()
            event.listen(self.engine, "connect", _configure_sqlite)
            event.listen(self.engine, "begin", writers.begin)
            event.listen(self.engine, "commit", writers.end)
            event.listen(self.engine, "rollback", writers.end)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.write_sessionmaker = sessionmaker(
            self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )

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
