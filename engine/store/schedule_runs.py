"""Schedule runs: claiming a fire time exactly once, the audience in SQL, run counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.ids import new_id
from engine.rules.sql import conditions_to_sql
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
            id=new_id("run"),
            workspace_id=campaign.workspace_id,
            campaign_id=campaign.id,
            fire_time=fire_time,
            status=status,
            claimed_by=claimed_by,
            started_at=now,
            heartbeat_at=now,
            finished_at=now if status != "running" else None,
            notification_count=0,
            skipped_count=0,
            failed_count=0,
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


def record_page(
    session: Session,
    run_id: str,
    *,
    owner: str,
    last_contact_id: str,
    now: datetime,
    notifications: int,
    skipped: int,
    failed: int,
) -> bool:
    """Count one written page of a run and move its resume point and heartbeat on.

    Only while ``owner`` still holds the running run: False when another process took it
    over (the caller must then write nothing). On PostgreSQL the row lock taken here
    orders this page against a concurrent takeover.
    """
    result = session.execute(
        update(ScheduleRun)
        .where(
            ScheduleRun.id == run_id,
            ScheduleRun.claimed_by == owner,
            ScheduleRun.status == "running",
        )
        .values(
            notification_count=ScheduleRun.notification_count + notifications,
            skipped_count=ScheduleRun.skipped_count + skipped,
            failed_count=ScheduleRun.failed_count + failed,
            last_contact_id=last_contact_id,
            heartbeat_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def finish_run(
    session: Session,
    run_id: str,
    *,
    owner: str,
    status: str,
    now: datetime,
    error: str | None = None,
) -> None:
    """End a running run, if ``owner`` still holds it."""
    session.execute(
        update(ScheduleRun)
        .where(
            ScheduleRun.id == run_id,
            ScheduleRun.claimed_by == owner,
            ScheduleRun.status == "running",
        )
        .values(status=status, finished_at=now, error=error)
        .execution_options(synchronize_session=False)
    )


def take_over_stalled_runs(
    session: Session, *, stalled_before: datetime, owner: str, now: datetime
) -> list[ScheduleRun]:
    """Claim running runs whose process stopped writing (heartbeat older than
    ``stalled_before``: it died or hangs). Each is taken by exactly one claimer, which
    continues it after ``last_contact_id``. The caller commits."""
    stalled = session.execute(
        select(ScheduleRun.id, ScheduleRun.claimed_by, ScheduleRun.heartbeat_at).where(
            ScheduleRun.status == "running", ScheduleRun.heartbeat_at < stalled_before
        )
    ).all()
    taken = []
    for run_id, previous_owner, heartbeat in stalled:
        result = session.execute(
            update(ScheduleRun)
            .where(
                ScheduleRun.id == run_id,
                ScheduleRun.status == "running",
                ScheduleRun.claimed_by == previous_owner,
                ScheduleRun.heartbeat_at == heartbeat,
            )
            .values(claimed_by=owner, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            taken.append(run_id)
    if not taken:
        return []
    return list(session.scalars(select(ScheduleRun).where(ScheduleRun.id.in_(taken))))
