"""Writing the activity log from views: who acts is the signed-in user or the API key."""

from __future__ import annotations

from flask import g
from sqlalchemy.orm import Session

from engine.store import activity
from engine.store.models import BulkJob, Campaign, Notification, Template


def current_actor() -> activity.Actor:
    user = g.get("user")
    if user is not None:
        return activity.Actor(user.email, user.id)
    return activity.Actor(g.get("api_key_label") or "unknown")


def current_workspace_id() -> str:
    workspace = g.get("workspace")
    return workspace.id if workspace is not None else g.workspace_id


def record(
    db: Session,
    kind: str,
    summary: str,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
) -> None:
    """Add an entry for the current workspace in ``db``'s transaction (the caller commits)."""
    activity.record(
        db,
        current_workspace_id(),
        current_actor(),
        kind,
        summary,
        object_type=object_type,
        object_id=object_id,
    )


_CAMPAIGN_VERBS = {
    "campaign.created": "created",
    "campaign.saved": "saved",
    "campaign.activated": "activated",
    "campaign.paused": "paused",
    "campaign.archived": "archived",
    "campaign.deleted": "deleted",
}


def record_campaign(db: Session, kind: str, campaign: Campaign, detail: str = "") -> None:
    summary = f"{_CAMPAIGN_VERBS[kind]} campaign {campaign.name!r}"
    record(
        db,
        kind,
        f"{summary} {detail}".strip(),
        object_type="campaign",
        object_id=campaign.id,
    )


def record_template(db: Session, kind: str, template: Template, detail: str = "") -> None:
    verb = kind.split(".")[1]
    record(
        db,
        kind,
        f"{verb} template {template.name!r} {detail}".strip(),
        object_type="template",
        object_id=template.id,
    )


def record_retry(db: Session, notification: Notification) -> None:
    record(
        db,
        "notification.retried",
        f"retried notification {notification.id} by hand",
        object_type="notification",
        object_id=notification.id,
    )


def record_bulk_retry(db: Session, job: BulkJob) -> None:
    shown = ", ".join(f"{k}={v}" for k, v in sorted(job.filters.items()) if v not in (None, ""))
    record(
        db,
        "notifications.bulk_retried",
        f"started a bulk retry of {job.total} notifications ({shown or 'no filter'})",
        object_type="bulk_job",
        object_id=job.id,
    )
