"""Campaigns: reading and writing campaign rows (the channel recipe included), and runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.store.models import OPERATIONAL_TRIGGER, Campaign, ScheduleRun

#: Campaigns as people see them: not the hidden alerts webhook (``engine.store.alerts_webhook``).
_LISTED = Campaign.trigger_type != OPERATIONAL_TRIGGER


def list_campaigns(session: Session, workspace_id: str) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign)
            .where(Campaign.workspace_id == workspace_id, _LISTED)
            .order_by(Campaign.id.desc())
        )
    )


def list_campaigns_page(
    session: Session,
    workspace_id: str,
    *,
    limit: int,
    before_id: str | None = None,
    after_id: str | None = None,
    status: str | None = None,
) -> list[Campaign]:
    """Newest first, keyset-paginated on the id (ids sort by creation time): the ``limit``
    older than ``before_id``, or the ``limit`` just newer than ``after_id``."""
    query = select(Campaign).where(Campaign.workspace_id == workspace_id, _LISTED)
    if status:
        query = query.where(Campaign.status == status)
    if after_id:
        query = query.where(Campaign.id > after_id).order_by(Campaign.id).limit(limit)
        return list(reversed(session.scalars(query).all()))
    if before_id:
        query = query.where(Campaign.id < before_id)
    return list(session.scalars(query.order_by(Campaign.id.desc()).limit(limit)))


def get_campaign(
    session: Session, workspace_id: str, campaign_id: str, *, for_update: bool = False
) -> Campaign | None:
    query = select(Campaign).where(
        Campaign.workspace_id == workspace_id, Campaign.id == campaign_id, _LISTED
    )
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def add_campaign(session: Session, campaign: Campaign) -> Campaign:
    session.add(campaign)
    session.flush()
    return campaign


def delete_campaign(session: Session, campaign: Campaign) -> None:
    session.delete(campaign)
    session.flush()


def active_event_campaigns_version(session: Session, workspace_id: str) -> tuple:
    """A cheap fingerprint of the workspace's active event campaigns.

    It changes whenever one is activated, paused, edited or deleted, so an index built
    from those campaigns can be cached under it.
    """
    row = session.execute(
        select(func.count(), func.max(Campaign.updated_at), func.max(Campaign.id)).where(
            Campaign.workspace_id == workspace_id,
            Campaign.status == "active",
            Campaign.trigger_type == "event",
        )
    ).one()
    return tuple(row)


def active_event_patterns(session: Session, workspace_id: str) -> list[tuple[str, list[str]]]:
    """``(campaign id, event patterns)`` of every active event campaign in the workspace."""
    rows = session.execute(
        select(Campaign.id, Campaign.trigger).where(
            Campaign.workspace_id == workspace_id,
            Campaign.status == "active",
            Campaign.trigger_type == "event",
        )
    )
    return [(cid, list((trigger or {}).get("events") or [])) for cid, trigger in rows]


def campaigns_by_ids(session: Session, workspace_id: str, ids: set[str]) -> list[Campaign]:
    """The still-active event campaigns among ``ids`` (fresh rows: health, channel)."""
    if not ids:
        return []
    return list(
        session.scalars(
            select(Campaign)
            .where(
                Campaign.workspace_id == workspace_id,
                Campaign.id.in_(sorted(ids)),
                Campaign.status == "active",
                Campaign.trigger_type == "event",
            )
            .order_by(Campaign.id)
        )
    )


def active_schedule_campaigns(session: Session) -> list[Campaign]:
    """Every active schedule campaign, all workspaces (the scheduler's work list)."""
    return list(
        session.scalars(
            select(Campaign)
            .where(Campaign.status == "active", Campaign.trigger_type == "schedule")
            .order_by(Campaign.id)
        )
    )


def latest_fire_time(session: Session, campaign_id: str) -> datetime | None:
    return session.scalar(
        select(func.max(ScheduleRun.fire_time)).where(ScheduleRun.campaign_id == campaign_id)
    )


def list_runs(
    session: Session, campaign_id: str, *, limit: int, before_id: str | None = None
) -> list[ScheduleRun]:
    """A campaign's schedule runs, newest fire time first (keyset on the run id)."""
    query = select(ScheduleRun).where(ScheduleRun.campaign_id == campaign_id)
    if before_id:
        query = query.where(ScheduleRun.id < before_id)
    return list(session.scalars(query.order_by(ScheduleRun.id.desc()).limit(limit)))
