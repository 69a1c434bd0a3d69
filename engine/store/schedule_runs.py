"""Schedule runs: claiming a fire time exactly once, the audience in SQL, run counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.ids import new_id
from engine.rules_sql import conditions_to_sql
from engine.store.models import Campaign, Contact, ScheduleRun


def claim_fire_time(
    session: Session,
    campaign: Campaign,
    fire_time: datetime,
    *,
    status: str,
    claimed_by: str,
    now: datetime,
) -> str | None:
    """Insert the run row of ``(campaign, fire_time)``; its id, or None when another
    process already holds it (the unique key decides, on SQLite and PostgreSQL alike)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(ScheduleRun)
        .values(
            id=new_id("run"), workspace_id=campaign.workspace_id, campaign_id=campaign.id,
            fire_time=fire_time, status=status, claimed_by=claimed_by, started_at=now,
            finished_at=now if status != "running" else None, notification_count=0,
            skipped_count=0, failed_count=0,
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "fire_time"])
        .returning(ScheduleRun.id)
    )
    return session.scalar(statement)


def audience_page(
    session: Session,
    campaign: Campaign,
    *,
    now: datetime,
    after_id: str | None,
    limit: int,
) -> list[tuple[str, str, dict[str, Any]]]:
    """The next ``limit`` contacts (by id, after ``after_id``) meeting the audience
    conditions, selected by the database: ``(id, external_id, attributes)``."""
    where = conditions_to_sql(
        (campaign.audience or {}).get("conditions"),
        attributes=Contact.attributes,
        external_id=Contact.external_id,
        contact_id=Contact.id,
        dialect_name=session.get_bind().dialect.name,
        now=now,
    )
    query = select(Contact.id, Contact.external_id, Contact.attributes).where(
        Contact.workspace_id == campaign.workspace_id, where
    )
    if after_id is not None:
        query = query.where(Contact.id > after_id)
    rows = session.execute(query.order_by(Contact.id).limit(limit))
    return [(cid, ext, attrs or {}) for cid, ext, attrs in rows]


def add_run_counts(
    session: Session, run_id: str, *, notifications: int, skipped: int, failed: int
) -> None:
    session.execute(
        update(ScheduleRun)
        .where(ScheduleRun.id == run_id)
        .values(
            notification_count=ScheduleRun.notification_count + notifications,
            skipped_count=ScheduleRun.skipped_count + skipped,
            failed_count=ScheduleRun.failed_count + failed,
        )
    )


def finish_run(
    session: Session, run_id: str, *, status: str, now: datetime, error: str | None = None
) -> None:
    session.execute(
        update(ScheduleRun)
        .where(ScheduleRun.id == run_id)
        .values(status=status, finished_at=now, error=error)
    )
