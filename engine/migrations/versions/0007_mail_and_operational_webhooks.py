"""mail and operational webhooks: the mail queue, invitations, password resets, alert emails

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01

Adds the durable mail queue (``mail_messages``), invitations and password resets (token
hashes only) and each user's alert-email choice (on for existing users). The alerts webhook
needs no table: it is a hidden channel (``campaigns.trigger_type = 'operational'``). A 0.1.0
database upgrades in place, its data kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.store.types

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch rebuild of ``users`` on SQLite would cascade-delete the
    # memberships and sessions that reference it.
    op.add_column(
        "users",
        sa.Column("alert_emails", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.create_table(
        "mail_messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("params", engine.store.types.EncryptedJSON(), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", engine.store.types.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("sent_at", engine.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_mail_messages_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_messages")),
    )
    op.create_index(
        "ix_mail_messages_due",
        "mail_messages",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_mail_messages_workspace", "mail_messages", ["workspace_id", "status"], unique=False
    )
    op.create_index(
        op.f("ix_mail_messages_created_at"), "mail_messages", ["created_at"], unique=False
    )
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("accepted_at", engine.store.types.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", engine.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["invited_by"],
            ["users.id"],
            name=op.f("fk_invitations_invited_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_invitations_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    op.create_index(
        op.f("ix_invitations_workspace_id"), "invitations", ["workspace_id"], unique=False
    )
    op.create_table(
        "password_resets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", engine.store.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", engine.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_password_resets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    op.create_index(
        op.f("ix_password_resets_user_id"), "password_resets", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_password_resets_user_id"), table_name="password_resets")
    op.drop_table("password_resets")
    op.drop_index(op.f("ix_invitations_workspace_id"), table_name="invitations")
    op.drop_table("invitations")
    op.drop_index(op.f("ix_mail_messages_created_at"), table_name="mail_messages")
    op.drop_index("ix_mail_messages_workspace", table_name="mail_messages")
    op.drop_index(
        "ix_mail_messages_due",
        table_name="mail_messages",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.drop_table("mail_messages")
    op.execute("DELETE FROM campaigns WHERE trigger_type = 'operational'")
    # ALTER TABLE … DROP COLUMN (SQLite 3.35+), again not a rebuild that would cascade.
    op.execute("ALTER TABLE users DROP COLUMN alert_emails")
