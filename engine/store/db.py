"""Connecting to the database: one SQLAlchemy engine and session factory per process."""

from __future__ import annotations

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


def _sqlite_begin(conn: Any) -> None:
    # A deferred BEGIN that reads and then writes fails at once with SQLITE_BUSY when
    # another process wrote in between (WAL snapshots cannot be upgraded). Writers
    # therefore take the write lock up front with BEGIN IMMEDIATE and wait their turn
    # (busy_timeout); readers keep the cheap deferred BEGIN and never block anyone.
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """The engine and session factory for one database URL."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 20) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 15}
            kwargs["isolation_level"] = None  # we issue BEGIN ourselves, see _sqlite_begin
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _configure_sqlite)
            event.listen(self.engine, "begin", _sqlite_begin)
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
