"""attempt requests and bulk retry members: attempts.request, bulk_job_notifications

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

``attempts.request`` keeps the request an attempt sent when a retry renders the
notification's request again from a fixed recipe (null: the notification's own request).
``bulk_job_notifications`` records which notifications a bulk retry moved, so its page can
say how they ended. Nothing existing changes: a 0.1.0 database upgrades in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "request",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
    op.create_table(
        "bulk_job_notifications",
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("notification_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["bulk_jobs.id"],
            name=op.f("fk_bulk_job_notifications_job_id_bulk_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_bulk_job_notifications_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "notification_id", name=op.f("pk_bulk_job_notifications")),
    )
    op.create_index(
        op.f("ix_bulk_job_notifications_notification_id"),
        "bulk_job_notifications",
        ["notification_id"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_bulk_job_notifications_notification_id"), table_name="bulk_job_notifications"
    )
    op.drop_table("bulk_job_notifications")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_column("request")
