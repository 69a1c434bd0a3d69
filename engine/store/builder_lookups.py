"""What the builder suggests and counts: known event names, attribute and property names,
audience sizes and the last day's delivery counts per campaign.

Read-only queries over recent rows: suggestions sample the newest rows instead of scanning
whole tables, so the editor stays fast on a busy workspace.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.rules.sql import conditions_to_sql
from engine.store.models import Contact, Event, Notification

SAMPLE_ROWS = 500
MAX_SUGGESTIONS = 200


def known_event_names(
    session: Session, workspace_id: str, limit: int = MAX_SUGGESTIONS
) -> list[str]:
    """Distinct event names the workspace has received, alphabetically."""
    query = (
        select(Event.name)
        .where(Event.workspace_id == workspace_id)
        .group_by(Event.name)
        .order_by(Event.name)
        .limit(limit)
    )
    return list(session.scalars(query))


def _keys(documents: list[Mapping[str, Any] | None], prefix: str) -> list[str]:
    names: set[str] = set()
    for document in documents:
        for key, value in (document or {}).items():
            names.add(f"{prefix}{key}")
            if isinstance(value, Mapping):
                names.update(f"{prefix}{key}.{inner}" for inner in value)
    return sorted(names)[:MAX_SUGGESTIONS]


def contact_attribute_paths(session: Session, workspace_id: str) -> list[str]:
    """``contact.<attribute>`` paths seen on the newest contacts."""
    rows = session.scalars(
        select(Contact.attributes)
        .where(Contact.workspace_id == workspace_id)
        .order_by(Contact.id.desc())
        .limit(SAMPLE_ROWS)
    )
    return _keys(list(rows), "contact.")


def event_property_paths(session: Session, workspace_id: str) -> list[str]:
    """``event.properties.<name>`` paths seen on the newest events."""
    rows = session.scalars(
        select(Event.properties)
        .where(Event.workspace_id == workspace_id)
        .order_by(Event.received_at.desc())
        .limit(SAMPLE_ROWS)
    )
    return _keys(list(rows), "event.properties.")


def count_matching_contacts(
    session: Session, workspace_id: str, conditions: Mapping[str, Any] | None, *, now: datetime
) -> int:
    """How many of the workspace's contacts a schedule audience would address right now."""
    dialect = session.get_bind().dialect.name
    where = conditions_to_sql(
        conditions or None,
        attributes=Contact.attributes,
        external_id=Contact.external_id,
        contact_id=Contact.id,
        dialect_name=dialect,
        now=now,
    )
    query = select(func.count()).select_from(Contact).where(Contact.workspace_id == workspace_id)
    return int(session.scalar(query.where(where)) or 0)


def delivery_counts_since(
    session: Session, workspace_id: str, since: datetime
) -> dict[str, dict[str, int]]:
    """``{campaign_id: {"delivered": n, "failed": n}}`` for notifications created since then.

    Test sends are left out: the list shows what real contacts received.
    """
    query = (
        select(Notification.campaign_id, Notification.status, func.count())
        .where(
            Notification.workspace_id == workspace_id,
            Notification.created_at >= since,
            Notification.status.in_(("delivered", "failed")),
            Notification.test.is_(False),
        )
        .group_by(Notification.campaign_id, Notification.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for campaign_id, status, number in session.execute(query):
        counts.setdefault(campaign_id, {"delivered": 0, "failed": 0})[status] = int(number)
    return counts
