"""Backing up and restoring a SQLite database file, safely while Hookcast may be running.

A backup goes through SQLite's online backup API: it copies a consistent snapshot while
other processes keep writing (in WAL mode a reader never blocks the writer), into a
single self-contained file that is checked (``PRAGMA integrity_check``) before it takes its
name. A restore refuses while any process uses the database: a worker heartbeat in the
last :data:`RECENT_HEARTBEAT` (``serve`` and ``worker`` beat every second), or any other open
connection (``hookcast web``, a shell), which SQLite reveals because a database in WAL mode
cannot leave it while another connection has it open. It then holds the database
exclusively, keeps the current content beside it (``<file>.before-restore-<time>``) and
copies the backup in through the same API. PostgreSQL has pg_dump and pg_restore.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import inspect

from engine.store import migrate, workers
from engine.store.db import Database
from engine.store.types import utcnow

#: A worker heard from this recently is taken to be running.
RECENT_HEARTBEAT = timedelta(seconds=10)
_LOCK_TIMEOUT_SECONDS = 15.0


class RestoreRefused(ValueError):
    """The database is in use, or the file is not a Hookcast backup this version can use."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    revision: str | None
    size: int


@dataclass(frozen=True)
class RestoreResult:
    revision: str | None
    saved_as: Path | None


def sqlite_file(database: Database) -> Path:
    name = database.url.database
    if database.dialect != "sqlite" or not name or name == ":memory:" or name.startswith("file:"):
        raise ValueError(f"{database.url.render_as_string()} is not a SQLite database file")
    return Path(name)


def backup_sqlite(database: Database, target: Path) -> BackupResult:
    """A consistent copy of the live database at ``target`` (which must not exist yet)."""
    live = sqlite_file(database)
    if not live.is_file():
        raise ValueError(f"there is no database at {live}")
    if target.exists():
        raise ValueError(
            f"{target} already exists; choose a new name (backups are never overwritten)"
        )
    if not target.parent.is_dir():
        raise ValueError(f"{target.parent} is not a directory")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        source = sqlite3.connect(live, timeout=_LOCK_TIMEOUT_SECONDS)
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # in one step: a snapshot, however busy the writers are
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
            _check_integrity(copy, target)
            revision = _revision(copy)
        finally:
            copy.close()
            source.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise ValueError(f"backing up {live} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, revision, target.stat().st_size)


def restore_sqlite(database: Database, source: Path) -> RestoreResult:
    """Replace the live database's content with the backup at ``source``; refuses while
    anything uses the database (see the module's docstring)."""
    live = sqlite_file(database)
    revision = check_backup(source)
    _refuse_while_workers_beat(database)
    database.dispose()  # our own pooled connections would look like another process
    saved_as = None
    try:
        backup = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        target = sqlite3.connect(live, timeout=0.5)
        try:
            if live.stat().st_size > 0:
                _hold_exclusively(target, live)
                saved_as = live.with_name(
                    f"{live.name}.before-restore-{utcnow().strftime('%Y%m%dT%H%M%SZ')}"
                )
                keep = sqlite3.connect(saved_as)
                target.backup(keep)
                keep.close()
            backup.backup(target)
            target.execute("PRAGMA journal_mode=WAL")
            _check_integrity(target, live)
        finally:
            target.close()
            backup.close()
    except sqlite3.Error as exc:
        raise ValueError(f"restoring {live} failed: {exc}") from None
    return RestoreResult(revision, saved_as)


def check_backup(source: Path) -> str | None:
    """The schema revision of a backup file, after checking it is a sound Hookcast database
    whose schema this version knows."""
    if not source.is_file():
        raise RestoreRefused(f"there is no file at {source}")
    try:
        backup = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            _check_integrity(backup, source)
            revision = _revision(backup)
        finally:
            backup.close()
    except sqlite3.DatabaseError as exc:
        raise RestoreRefused(f"{source} is not a SQLite database ({exc})") from None
    if revision is None:
        raise RestoreRefused(f"{source} is not a Hookcast database (it has no schema revision)")
    if revision not in migrate.revisions():
        raise RestoreRefused(
            f"{source} has schema revision {revision}, which this Hookcast does not know "
            "(a backup made by a newer version)"
        )
    return revision


def _refuse_while_workers_beat(database: Database) -> None:
    if not inspect(database.engine).has_table("worker_heartbeats"):
        return
    with database.session() as session:
        running = workers.live(session, utcnow(), live_within=RECENT_HEARTBEAT)
    if running:
        raise RestoreRefused(
            f"a Hookcast process is using the database (worker {', '.join(running)}): "
            "stop `hookcast serve`/`hookcast worker` first"
        )


def _hold_exclusively(connection: sqlite3.Connection, live: Path) -> None:
    """Take the database for this connection alone until it closes, or refuse."""
    try:
        mode = connection.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError:
        mode = None
    if mode != "delete":
        raise RestoreRefused(
            f"another process has {live} open (`hookcast web`, `serve` or `worker`, or a "
            "SQLite shell): stop it first"
        )
    connection.execute("PRAGMA locking_mode=EXCLUSIVE")
    connection.execute("BEGIN EXCLUSIVE")
    connection.execute("COMMIT")  # the exclusive lock stays until the connection closes


def _check_integrity(connection: sqlite3.Connection, name: Path) -> None:
    result = [row[0] for row in connection.execute("PRAGMA integrity_check")]
    if result != ["ok"]:
        raise RestoreRefused(f"{name} failed its integrity check: {'; '.join(result[:3])}")


def _revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table
        return None
    return row[0] if row else None
