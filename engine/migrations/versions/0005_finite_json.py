"""finite JSON: NaN and Infinity that SQLite stored before 0.2 become null

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01

Hookcast 0.1.0 read ``1e400`` in a request body as Infinity and, on SQLite, stored it:
``GET /contacts/x`` then answered invalid JSON (``"score":Infinity``) and every event
matching a campaign for that contact failed. Requests may no longer carry such numbers and
the store refuses to write them; this revision repairs what was stored, turning each NaN,
Infinity and -Infinity in a JSON column into null (nothing else changes). PostgreSQL's
jsonb never held them: nothing to do there. Downgrading keeps the repaired values.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

#: Every JSON column (encrypted ones excepted: they hold secrets as text, never numbers).
JSON_COLUMNS = (
    ("contacts", "attributes"),
    ("events", "properties"),
    ("campaigns", "trigger"),
    ("campaigns", "audience"),
    ("campaigns", "frequency_cap"),
    ("campaigns", "channel"),
    ("templates", "channel"),
    ("notifications", "request"),
    ("attempts", "response_headers"),
    ("bulk_jobs", "filters"),
)
_BATCH = 500


def _null(_constant: str) -> None:
    return None


def repaired(text: str) -> str | None:
    """``text`` with NaN/Infinity read as null, re-serialised; None when it had none."""
    value: Any = json.loads(text, parse_constant=_null)
    again = json.dumps(value)
    return again if again != json.dumps(json.loads(text)) else None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    for table_name, column_name in JSON_COLUMNS:
        rowid, column = sa.column("rowid"), sa.column(column_name, sa.Text)
        table = sa.table(table_name, rowid, column)
        suspects = connection.execute(
            sa.select(rowid, column).where(column.like("%Infinity%") | column.like("%NaN%"))
        ).all()
        fixes = []
        for row_id, text in suspects:
            fixed = repaired(text) if isinstance(text, str) else None
            if fixed is not None:
                fixes.append({"row_id": row_id, "value": fixed})
        statement = (
            sa.update(table)
            .where(rowid == sa.bindparam("row_id"))
            .values({column_name: sa.bindparam("value")})
        )
        for start in range(0, len(fixes), _BATCH):
            connection.execute(statement, fixes[start : start + _BATCH])


def downgrade() -> None:
    """Nothing to undo: the values repaired stay valid JSON."""
