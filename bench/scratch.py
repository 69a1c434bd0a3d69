"""Scratch databases for benchmarks: migrated, used for one measurement, then dropped."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.store import Database, migrate


def postgres_admin_url() -> str | None:
    """Where to create PostgreSQL scratch databases, if anywhere."""
    return os.environ.get("HOOKCAST_BENCH_POSTGRES_URL") or os.environ.get(
        "HOOKCAST_TEST_POSTGRES_URL"
    )


@contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """The URL of a fresh database at schema head: ``kind`` is "sqlite" or "postgresql"."""
    if kind == "sqlite":
        directory = tempfile.mkdtemp(prefix="hookcast-bench-")
        url = f"sqlite:///{os.path.join(directory, 'db.sqlite3')}"

        def drop() -> None:  # a million-row log is hundreds of MB: nothing is left behind
            shutil.rmtree(directory, ignore_errors=True)

    else:
        admin_url = postgres_admin_url()
        assert admin_url, "set HOOKCAST_BENCH_POSTGRES_URL or HOOKCAST_TEST_POSTGRES_URL"
        admin = create_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
        name = f"hookcast_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    database = Database(url)
    migrate.upgrade(database)
    database.dispose()
    try:
        yield url
    finally:
        drop()


def database_kinds() -> list[str]:
    """SQLite always; PostgreSQL where a server is configured."""
    return ["sqlite"] + (["postgresql"] if postgres_admin_url() else [])
