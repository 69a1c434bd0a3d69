"""Campaigns: reading and writing campaign rows (the channel recipe included), and runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from engine.store.models import OPERATIONAL_TRIGGER, Campaign, Notification, ScheduleRun, Workspace

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


def lock_for_delete(session: Session, campaign_id: str) -> None:
    """Lock a campaign about to be deleted, in the order a worker settling attempts takes
    the same rows: the campaign's notifications (in id order), then the campaign.

    The delete cascades into the notifications; locking the campaign first (as a plain
    ``DELETE`` does) while a worker holds some of them and waits for the campaign's row to
    count a failure is a deadlock on PostgreSQL. SQLite has one writer: nothing to do."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        select(Notification.id)
        .where(Notification.campaign_id == campaign_id)
        .order_by(Notification.id)
        .with_for_update(of=Notification)
    )
    session.execute(select(Campaign.id).where(Campaign.id == campaign_id).with_for_update())


def delete_campaign(session: Session, campaign: Campaign) -> None:
    session.delete(campaign)
    session.flush()


def _active_event(workspace_id: Any) -> tuple[Any, ...]:
    return (
        Campaign.workspace_id == workspace_id,
        Campaign.status == "active",
        Campaign.trigger_type == "event",
    )


#: Built once: ingestion runs it on every request.
_ACTIVE_EVENT_VERSION = select(
    func.count(),
    func.max(Campaign.updated_at),
    func.max(Campaign.id),
    select(Workspace.name).where(Workspace.id == bindparam("workspace_id")).scalar_subquery(),
).where(*_active_event(bindparam("workspace_id")))


def active_event_campaigns_version(session: Session, workspace_id: str) -> tuple[tuple, str]:
    """A cheap fingerprint of the workspace's active event campaigns, and its name.

    It changes whenever one is activated, paused, edited or deleted, or its endpoint health
    changes (each moves ``updated_at``), so what is built from those campaigns can be cached
    under it.
    """
    row = session.execute(*active_event_campaigns_version_query(workspace_id)).one()
    return active_event_campaigns_version_of(tuple(row))


def active_event_campaigns_version_query(workspace_id: str) -> tuple[Any, dict[str, str]]:
    """The query of ``active_event_campaigns_version``, to be sent along with others."""
    return _ACTIVE_EVENT_VERSION, {"workspace_id": workspace_id}


def active_event_campaigns_version_of(row: tuple) -> tuple[tuple, str]:
    """``active_event_campaigns_version`` from its query's one row."""
    return (row[0], row[1], row[2], row[3]), row[3]


def active_event_campaign_rows(session: Session, workspace_id: str) -> list[dict[str, Any]]:
    """The columns ingestion reads of every active event campaign in the workspace."""
    rows = session.execute(
        select(
            Campaign.id,
            Campaign.workspace_id,
            Campaign.name,
            Campaign.updated_at,
            Campaign.webhook_disabled,
            Campaign.trigger,
            Campaign.audience,
            Campaign.frequency_cap,
            Campaign.channel,
            Campaign.channel_secrets,
        ).where(*_active_event(workspace_id))
    )
    return [dict(row._mapping) for row in rows]


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
