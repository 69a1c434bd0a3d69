"""The Alembic revisions build the schema the models describe, and upgrade a database that
0.1.0 left (revision 0001) in place, on both databases."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from engine import crypto
from engine.store import Database, accounts, migrate, outbox
from engine.store.models import Base, Notification
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


def test_revision_0005_turns_stored_infinity_and_nan_into_null(empty_database: Database) -> None:
    """0.1.0 on SQLite stored ``1e400`` as Infinity; 0005 repairs it, keeping everything else
    (on PostgreSQL, which never stored them, the data simply comes through)."""
    crypto.configure_encryption(TEST_ENCRYPTION_KEY)
    migrate.upgrade(empty_database, "0002")
    with empty_database.transaction() as session:
        workspace = accounts.create_workspace(session, "Released")
        contact = factories.make_contact(session, workspace.id, "c-1")
        other = factories.make_contact(session, workspace.id, "c-2")
        contact.attributes = {"score": 1, "note": "Infinity and NaN, as words"}
        other.attributes = {"plan": "pro"}
        contact_id, other_id = contact.id, other.id
    if empty_database.dialect == "sqlite":  # what 0.1.0 wrote for 1e400, -1e400 and NaN
        with empty_database.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE contacts SET attributes = "
                    """'{"score": Infinity, "low": -Infinity, "odd": [NaN, 2], """
                    """"note": "Infinity and NaN, as words"}' WHERE id = :id"""
                ),
                {"id": contact_id},
            )
    migrate.upgrade(empty_database)
    assert migrate.current_revision(empty_database) == migrate.head_revision(empty_database)
    with empty_database.engine.connect() as connection:
        rows = dict(connection.execute(text("SELECT id, attributes FROM contacts")).all())
    stored = {key: json.loads(value, parse_constant=pytest.fail) if isinstance(value, str)
              else value for key, value in rows.items()}  # fmt: skip
    if empty_database.dialect == "sqlite":
        assert stored[contact_id] == {
            "score": None,
            "low": None,
            "odd": [None, 2],
            "note": "Infinity and NaN, as words",
        }
    else:
        assert stored[contact_id] == {"score": 1, "note": "Infinity and NaN, as words"}
    assert stored[other_id] == {"plan": "pro"}
    config = migrate.alembic_config(empty_database)
    with empty_database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    assert migrate.current_revision(empty_database) == "0002"
