"""Pooled PostgreSQL connections: pinged only after sitting idle, replaced when dead."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from engine.store import Database
from engine.store import db as db_module


@pytest.fixture
def pg_database(postgres_database: str):
    database = Database(postgres_database, pool_size=2)
    yield database
    database.dispose()


def _backend_pid(database: Database) -> int:
    with database.transaction(write=False) as session:
        return session.scalar(text("SELECT pg_backend_pid()"))


def test_a_connection_killed_while_idle_is_replaced_unnoticed(
    pg_database: Database, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(pg_database)
    admin = Database(postgres_database, pool_size=1)
    try:
        with admin.transaction() as session:
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    finally:
        admin.dispose()
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has sat idle enough

    second = _backend_pid(pg_database)  # no error: the dead connection was pinged, replaced

    assert second != first


def test_a_connection_is_pinged_only_after_sitting_idle(
    pg_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialect = pg_database.engine.dialect
    pings: list[object] = []
    real_ping = dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    pid = _backend_pid(pg_database)
    assert _backend_pid(pg_database) == pid  # the same warm connection (last in, first out)
    assert pings == []

    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend_pid(pg_database) == pid  # alive: pinged and kept
    assert len(pings) == 1
