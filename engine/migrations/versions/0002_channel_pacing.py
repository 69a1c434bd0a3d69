"""channel pacing: channel_states, worker_heartbeats, indexes for fair per-channel claims

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Adds the shared delivery state of each webhook channel (rate limit slot, Retry-After or
breaker pause, stall and 429 streaks), the live worker processes (among which channels'
max_concurrency is shared out) and a partial index the per-channel claim reads.
Nothing existing changes: a 0.1.0 database upgrades in place, its data kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OPEN = "status IN ('pending', 'retrying', 'sending')"


def upgrade() -> None:
    op.create_table(
        "channel_states",
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("rate_next_at", engine.store.types.UTCDateTime(), nullable=True),
        sa.Column("paused_until", engine.store.types.UTCDateTime(), nullable=True),
        sa.Column("pause_reason", sa.String(length=20), nullable=True),
        sa.Column("stalls", sa.Integer(), nullable=False),
        sa.Column("throttles", sa.Integer(), nullable=False),
        sa.Column("updated_at", engine.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_channel_states_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_channel_states")),
    )
    op.create_index(
        "ix_notifications_open_by_campaign",
        "notifications",
        ["campaign_id", "next_attempt_at"],
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=100), nullable=False),
        sa.Column("heartbeat_at", engine.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
    op.drop_index("ix_notifications_open_by_campaign", table_name="notifications")
    op.drop_table("channel_states")
