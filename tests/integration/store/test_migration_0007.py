"""Revision 0007 (mail queue, invitations, password resets, alert-email choice) upgrades a
0003 database with its users, memberships and sessions kept (SQLite must not rebuild
``users``: that would cascade-delete them), and downgrades again keeping them."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from engine import crypto
from engine.store import Database, accounts, migrate
from engine.store.models import User
from engine.store.types import utcnow
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.integration.store.test_migrations import empty_database  # noqa: F401

NEW_TABLES = {"mail_messages", "invitations", "password_resets"}


def _now() -> object:
    return utcnow().replace(tzinfo=None)


def test_revision_0007_keeps_users_memberships_and_sessions(
    empty_database: Database,  # noqa: F811
) -> None:
    crypto.configure_encryption(TEST_ENCRYPTION_KEY)
    migrate.upgrade(empty_database, "0003")
    with empty_database.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO workspaces (id, name, created_at) VALUES ('ws_1', 'Kept', :now)"),
            {"now": _now()},
        )
        connection.execute(
            text(
                "INSERT INTO users (id, email, password_hash, created_at) "
                "VALUES ('usr_1', 'kept@example.com', 'hash', :now)"
            ),
            {"now": _now()},
        )
        connection.execute(
            text(
                "INSERT INTO memberships (user_id, workspace_id, role, created_at) "
                "VALUES ('usr_1', 'ws_1', 'owner', :now)"
            ),
            {"now": _now()},
        )
        connection.execute(
            text(
                "INSERT INTO login_sessions (id, token_hash, user_id, workspace_id, "
                "client_address, user_agent, created_at, last_seen_at) VALUES "
                "('ses_1', 'h', 'usr_1', 'ws_1', '127.0.0.1', 'test', :now, :now)"
            ),
            {"now": _now()},
        )
    migrate.upgrade(empty_database)
    assert migrate.current_revision(empty_database) == migrate.head_revision(empty_database)
    assert set(inspect(empty_database.engine).get_table_names()) >= NEW_TABLES
    with empty_database.transaction() as session:
        user = session.get(User, "usr_1")
        assert user.alert_emails is True and user.password_hash == "hash"
        assert accounts.count_owners(session, "ws_1") == 1
        sessions = session.execute(text("SELECT count(*) FROM login_sessions")).scalar()
        assert sessions == 1

    config = migrate.alembic_config(empty_database)
    with empty_database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    assert not NEW_TABLES & set(inspect(empty_database.engine).get_table_names())
    columns = {c["name"] for c in inspect(empty_database.engine).get_columns("users")}
    assert "alert_emails" not in columns
    with empty_database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM memberships")).scalar() == 1
        assert connection.execute(text("SELECT count(*) FROM login_sessions")).scalar() == 1
