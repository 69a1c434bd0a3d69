"""The Alembic revisions build the schema the models describe, and upgrade a database that
0.1.0 left (revision 0001) in place, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from engine import crypto
from engine.store import Database, accounts, log_bulk, migrate, outbox
from engine.store.log import LogFilter
from engine.store.models import Attempt, Base, BulkJob, Notification
from engine.store.types import utcnow
from tests.conftest import BACKENDS, POSTGRES_URL, TEST_ENCRYPTION_KEY
from tests.integration import factories


def test_migrations_reach_head_and_match_the_models(db: Database) -> None:
    assert migrate.current_revision(db) == migrate.head_revision(db)
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrade_is_idempotent(db: Database) -> None:
    migrate.upgrade(db)
    migrate.upgrade(db)
    tables = set(inspect(db.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path) -> None:
    database = Database(f"sqlite:///{tmp_path}/wal.db")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    """A database with no schema at all, on each configured backend."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path}/released.sqlite3")
        yield database
        database.dispose()
        return
    admin = create_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"hookcast_upgrade_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(make_url(POSTGRES_URL).set(database=name).render_as_string(False))
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_released_database_upgrades_in_place_with_its_data(empty_database: Database) -> None:
    """0.1.0 shipped revision 0001: a database holding real data at 0001 upgrades to head,
    keeps every row, and its waiting notifications are claimed by the new delivery path."""
    crypto.configure_encryption(TEST_ENCRYPTION_KEY)
    migrate.upgrade(empty_database, "0001")
    assert migrate.current_revision(empty_database) == "0001"
    with empty_database.transaction() as session:
        workspace = accounts.create_workspace(session, "Released")
        campaign = factories.make_campaign(session, workspace.id, "https://example.invalid/hook")
        contact = factories.make_contact(session, workspace.id)
        pending = factories.make_notification(session, campaign, contact, announce=False).id
        campaign_id = campaign.id
    migrate.upgrade(empty_database)
    assert migrate.current_revision(empty_database) == migrate.head_revision(empty_database)
    tables = set(inspect(empty_database.engine).get_table_names())
    assert {"channel_states", "worker_heartbeats"} <= tables
    with empty_database.transaction() as session:
        assert session.get(Notification, pending).status == "pending"
        due = outbox.due_channels(session, now=utcnow())
        assert [channel.campaign.id for channel in due] == [campaign_id]
        claimed = outbox.claim_channel(session, due[0].campaign, lease="w#1", now=utcnow(), limit=5)
        assert [item.id for item in claimed] == [pending]


def test_0004_keeps_attempts_and_jobs_and_downgrades(empty_database: Database) -> None:
    """Revision 0004 adds ``attempts.request`` and ``bulk_job_notifications`` to a database
    holding attempts and bulk jobs, keeps them, and steps back down with them kept too."""
    crypto.configure_encryption(TEST_ENCRYPTION_KEY)
    migrate.upgrade(empty_database, "0002")
    with empty_database.transaction() as session:
        workspace = accounts.create_workspace(session, "Released")
        campaign = factories.make_campaign(session, workspace.id, "https://example.invalid/hook")
        session.execute(  # the attempt as 0002 knew it: no request column yet
            text(
                "INSERT INTO notifications (id, workspace_id, campaign_id, test, status,"
                " attempt_count, created_at, updated_at)"
                " VALUES ('msg_1', :ws, :c, false, 'failed', 1, :t, :t)"
            ),
            {"ws": workspace.id, "c": campaign.id, "t": utcnow().replace(tzinfo=None)},
        )
        session.execute(
            text(
                "INSERT INTO attempts (notification_id, number, started_at, status_code,"
                " response_truncated) VALUES ('msg_1', 1, :t, 500, false)"
            ),
            {"t": utcnow().replace(tzinfo=None)},
        )
        session.execute(
            text(
                "INSERT INTO bulk_jobs (id, workspace_id, kind, filters, status, total, done,"
                " created_at) VALUES ('job_1', :ws, 'retry', '{}', 'done', 1, 1, :t)"
            ),
            {"ws": workspace.id, "t": utcnow().replace(tzinfo=None)},
        )
        workspace_id = workspace.id
    migrate.upgrade(empty_database)
    with empty_database.transaction() as session:
        (attempt,) = session.scalars(select(Attempt)).all()
        assert (attempt.notification_id, attempt.status_code, attempt.request) == (
            "msg_1",
            500,
            None,
        )
        assert session.get(BulkJob, "job_1").done == 1
        log_bulk.record_members(session, "job_1", ["msg_1"])
        assert log_bulk.job_outcomes(session, "job_1") == {"failed": 1}
        assert log_bulk.count_retryable(session, workspace_id, LogFilter()) == 1
    config = migrate.alembic_config(empty_database)
    with empty_database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    with empty_database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM attempts")).scalar() == 1
        assert connection.execute(text("SELECT count(*) FROM bulk_jobs")).scalar() == 1
    assert "bulk_job_notifications" not in inspect(empty_database.engine).get_table_names()
