"""The Alembic revisions build the schema the models describe, and upgrade a database that
0.1.0 left (revision 0001) in place, on both databases."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    create_engine,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.sql.elements import ClauseElement

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


# -- every earlier revision, with data, upgrades to the schema a fresh `init` makes -------------
#
# The data is generated from the tables as they stand at that revision (reflected, not the
# models, which describe head), so a revision added later is covered without editing this.

EARLIER = migrate.revisions()[:-1]
ROWS_PER_TABLE = 3
MOMENT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _secret(row: int) -> str:
    return crypto.encrypt(f"secret-{row}")


def _recorded_request(row: int) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": f"https://example.invalid/hook/{row}",
        "headers": [{"name": "Content-Type", "value": "application/json"}],
        "body": json.dumps({"row": row}),
    }


#: Values as the application writes them, for the columns a later revision's data migration
#: might read or constrain (states, roles, recipes, encrypted secrets); other columns get
#: generated values of their type.
REALISTIC: dict[tuple[str, str], Callable[[int], Any]] = {
    ("users", "email"): lambda row: f"user{row}@example.com",
    ("memberships", "role"): lambda row: ("owner", "editor", "viewer")[row % 3],
    ("campaigns", "status"): lambda row: ("active", "draft", "paused")[row % 3],
    ("campaigns", "trigger_type"): lambda row: ("event", "schedule", "event")[row % 3],
    ("campaigns", "trigger"): lambda row: (
        {"type": "event", "events": ["lead.*"]}
        if row % 3 != 1
        else {"type": "schedule", "cron": "0 9 * * MON", "timezone": "Europe/Dublin"}
    ),
    ("campaigns", "audience"): lambda row: {},
    ("campaigns", "frequency_cap"): lambda row: {"max": 1, "per_seconds": 86400},
    ("campaigns", "channel"): lambda row: factories.channel(f"https://example.invalid/{row}"),
    ("templates", "channel"): lambda row: factories.channel(f"https://example.invalid/{row}"),
    ("campaigns", "channel_secrets"): lambda row: crypto.encrypt(json.dumps({"password": "pw"})),
    ("templates", "channel_secrets"): lambda row: crypto.encrypt(json.dumps({"token": "t"})),
    ("campaigns", "signing_secret"): _secret,
    ("campaigns", "previous_signing_secret"): _secret,
    ("notifications", "status"): lambda row: ("pending", "delivered", "retrying")[row % 3],
    ("notifications", "request"): _recorded_request,
    ("notifications", "request_secrets"): lambda row: crypto.encrypt(json.dumps({})),
    ("mail_messages", "params"): lambda row: crypto.encrypt(json.dumps({"name": f"n{row}"})),
    ("notifications", "leased_by"): lambda row: None,
    ("schedule_runs", "status"): lambda row: ("done", "running", "failed")[row % 3],
    ("bulk_jobs", "status"): lambda row: ("done", "running", "queued")[row % 3],
    ("bulk_jobs", "kind"): lambda row: "retry",
    ("bulk_jobs", "filters"): lambda row: {"status": "failed"},
    ("events", "properties"): lambda row: {"score": row, "plan": "pro"},
    ("contacts", "attributes"): lambda row: {"email": f"c{row}@example.com", "plan": "pro"},
}


def _value(table: Table, column: Column, row: int, seeded: dict[str, list[dict]]) -> Any:
    realistic = REALISTIC.get((table.name, column.name))
    if realistic is not None:
        return realistic(row)
    for fk in column.foreign_keys:
        parent = fk.column
        if seeded.get(parent.table.name):
            return seeded[parent.table.name][row % len(seeded[parent.table.name])][parent.name]
    kind = column.type
    if isinstance(kind, Boolean):
        return row % 2 == 1
    if isinstance(kind, Integer):
        return row + 1
    if isinstance(kind, Float | Numeric):
        return row + 0.5
    if isinstance(kind, DateTime):
        return (MOMENT + timedelta(minutes=row)).replace(tzinfo=None)
    if isinstance(kind, JSON):
        return {"row": row, "table": table.name, "nested": {"list": [1, "two", None]}}
    if isinstance(kind, String):  # (Text included)
        text_value = f"{table.name[:12]}-{column.name[:12]}-{row}"
        return text_value[: kind.length] if kind.length else text_value
    raise AssertionError(f"no sample value for {table.name}.{column.name} ({kind!r})")


def seed_every_table(database: Database) -> dict[str, list[dict]]:
    """ROWS_PER_TABLE rows in every table as it is now (parents first); what was written."""
    crypto.configure_encryption(TEST_ENCRYPTION_KEY)
    metadata = MetaData()
    metadata.reflect(database.engine)
    seeded: dict[str, list[dict]] = {}
    with database.engine.begin() as connection:
        for table in metadata.sorted_tables:
            if table.name == "alembic_version":
                continue
            rows = [
                {c.name: _value(table, c, row, seeded) for c in table.columns}
                for row in range(ROWS_PER_TABLE)
            ]
            connection.execute(table.insert(), rows)
            seeded[table.name] = rows
    return seeded


def read_back(database: Database, seeded: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The seeded columns of every seeded table, now (in the order of their primary keys)."""
    metadata = MetaData()
    metadata.reflect(database.engine)
    found: dict[str, list[dict]] = {}
    with database.engine.connect() as connection:
        for name, rows in seeded.items():
            table = metadata.tables[name]
            columns = [table.c[column] for column in rows[0]]
            query = select(*columns).order_by(*table.primary_key.columns)
            found[name] = [dict(row._mapping) for row in connection.execute(query)]
    return found


def _by_primary_key(database: Database, seeded: dict[str, list[dict]]) -> dict[str, list[dict]]:
    inspector = inspect(database.engine)
    ordered = {}
    for name, rows in seeded.items():
        keys = inspector.get_pk_constraint(name)["constrained_columns"]
        ordered[name] = sorted(rows, key=lambda row: tuple(str(row[k]) for k in keys))
    return ordered


def _plain(value: Any) -> Any:
    """Inspector output with SQL expressions (partial index predicates) as their text."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, ClauseElement):
        return " ".join(str(value).split())
    return value


def schema_of(database: Database) -> dict[str, Any]:
    """Tables, columns, keys, indexes and constraints as the database reports them."""
    inspector = inspect(database.engine)
    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        columns = sorted(
            repr((c["name"], str(c["type"]), c["nullable"], str(c.get("default"))))
            for c in inspector.get_columns(table)
        )
        schema[table] = {
            "columns": columns,
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(repr(_plain(fk)) for fk in inspector.get_foreign_keys(table)),
            "indexes": sorted(repr(_plain(ix)) for ix in inspector.get_indexes(table)),
            "unique": sorted(repr(_plain(uq)) for uq in inspector.get_unique_constraints(table)),
        }
    return schema


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    """What `hookcast init` makes: an empty database migrated to head, on the same backend."""
    backend = request.node.callspec.params["empty_database"]
    if backend == "sqlite":
        database = Database(f"sqlite:///{tmp_path}/fresh.sqlite3")
        migrate.upgrade(database)
        yield database
        database.dispose()
        return
    admin = create_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"hookcast_fresh_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(make_url(POSTGRES_URL).set(database=name).render_as_string(False))
    migrate.upgrade(database)
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize("revision", EARLIER)
def test_a_database_at_each_earlier_revision_upgrades_with_its_data(
    revision: str, empty_database: Database, fresh_database: Database
) -> None:
    migrate.upgrade(empty_database, revision)
    seeded = _by_primary_key(empty_database, seed_every_table(empty_database))
    assert seeded, "nothing to seed"

    migrate.upgrade(empty_database)

    assert migrate.current_revision(empty_database) == migrate.head_revision(empty_database)
    assert read_back(empty_database, seeded) == seeded
    assert schema_of(empty_database) == schema_of(fresh_database)
    # and the application's models read every row (types, JSON, encrypted secrets)
    with empty_database.session() as session:
        for mapper in Base.registry.mappers:
            rows = list(session.scalars(select(mapper.class_)))
            assert len(rows) == len(seeded.get(mapper.local_table.name, rows))
    with empty_database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.parametrize("revision", EARLIER)
def test_head_downgrades_to_each_earlier_revision_and_back_with_its_data(
    revision: str, empty_database: Database, fresh_database: Database
) -> None:
    migrate.upgrade(empty_database, revision)
    seeded = _by_primary_key(empty_database, seed_every_table(empty_database))
    migrate.upgrade(empty_database)
    migrate.downgrade(empty_database, revision)
    assert migrate.current_revision(empty_database) == revision
    assert read_back(empty_database, seeded) == seeded
    migrate.upgrade(empty_database)
    assert read_back(empty_database, seeded) == seeded
    assert schema_of(empty_database) == schema_of(fresh_database)


def test_revision_0003_keeps_keys_users_and_memberships(empty_database: Database) -> None:
    """A database at 0002 with users, memberships and API keys upgrades to 0003: existing keys
    get the ``full`` scope (what they could do before) and still authenticate; downgrading
    drops the new tables and column again."""
    crypto.configure_encryption(TEST_ENCRYPTION_KEY)
    migrate.upgrade(empty_database, "0002")
    key = crypto.generate_api_key()
    with empty_database.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO workspaces (id, name, created_at) VALUES ('ws_1', 'Kept', :now)"),
            {"now": utcnow().replace(tzinfo=None)},
        )
        connection.execute(
            text(
                "INSERT INTO users (id, email, password_hash, created_at) "
                "VALUES ('usr_1', 'kept@example.com', 'hash', :now)"
            ),
            {"now": utcnow().replace(tzinfo=None)},
        )
        connection.execute(
            text(
                "INSERT INTO memberships (user_id, workspace_id, role, created_at) "
                "VALUES ('usr_1', 'ws_1', 'owner', :now)"
            ),
            {"now": utcnow().replace(tzinfo=None)},
        )
        connection.execute(
            text(
                "INSERT INTO api_keys (id, workspace_id, name, prefix, key_hash, created_at) "
                "VALUES ('key_1', 'ws_1', 'crm', :prefix, :hash, :now)"
            ),
            {
                "prefix": key[:10],
                "hash": crypto.hash_api_key(key),
                "now": utcnow().replace(tzinfo=None),
            },
        )
    migrate.upgrade(empty_database)
    assert migrate.current_revision(empty_database) == migrate.head_revision(empty_database)
    tables = set(inspect(empty_database.engine).get_table_names())
    assert {"login_sessions", "login_throttles", "activity"} <= tables
    with empty_database.transaction() as session:
        record = accounts.authenticate_api_key(session, key)
        assert record is not None and record.scope == "full" and record.name == "crm"
        assert accounts.count_owners(session, "ws_1") == 1
        assert accounts.get_user_by_email(session, "kept@example.com").password_hash == "hash"
    config = migrate.alembic_config(empty_database)
    with empty_database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    tables = set(inspect(empty_database.engine).get_table_names())
    assert not {"login_sessions", "login_throttles", "activity"} & tables
    columns = {c["name"] for c in inspect(empty_database.engine).get_columns("api_keys")}
    assert "scope" not in columns
    with empty_database.engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM api_keys")).scalars().all() == ["crm"]


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


def test_0008_keeps_attempts_and_jobs_and_downgrades(empty_database: Database) -> None:
    """Revision 0008 adds ``attempts.request`` and ``bulk_job_notifications`` to a database
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
