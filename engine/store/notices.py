"""What leaves Hookcast when an endpoint's health changes or a bulk retry ends: alert emails
to the workspace's owners and operational events for its alerts webhook.

Called inside the transaction that raised the alert (settling, re-enabling, finishing a
bulk job), so a notice is queued exactly when its cause is committed, once. Emails are
queued only in a process that sends email (``SMTP_URL`` set, see :func:`configure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store import alerts_webhook, mail_queue
from engine.store.models import BulkJob, Campaign, Membership, User, Workspace

_config = {"alert_emails": False, "base_url": ""}


def configure(*, alert_emails: bool, base_url: str) -> None:
    """Whether this process queues alert emails, and the public URL links start with."""
    _config["alert_emails"] = alert_emails
    _config["base_url"] = base_url.rstrip("/")


@dataclass(frozen=True)
class EndpointAlert:
    """An alert raised by endpoint health: ``kind`` ``failures_<N>`` or ``disabled``."""

    workspace_id: str
    campaign_id: str
    campaign_name: str
    kind: str
    consecutive_failures: int
    last_error_code: str | None
    last_error_message: str | None
    notification_id: str | None
    reason: str | None = None  # why it was disabled

    @property
    def threshold(self) -> int | None:
        return int(self.kind.split("_")[1]) if self.kind.startswith("failures_") else None

    @property
    def last_error(self) -> str:
        return self.last_error_message or self.last_error_code or "unknown error"


def _links(campaign_id: str, notification_id: str | None) -> dict[str, str] | None:
    base = _config["base_url"]
    if not base:
        return None
    links = {"health": f"{base}/campaigns/{quote(campaign_id)}/health"}
    if notification_id:
        links["notification"] = f"{base}/notifications/{quote(notification_id)}"
    return links


def alert_recipients(session: Session, workspace_id: str) -> list[str]:
    """The emails of the workspace's owners who keep alert emails on."""
    return list(
        session.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.workspace_id == workspace_id,
                Membership.role == "owner",
                User.alert_emails.is_(True),
            )
            .order_by(User.email)
        )
    )


def endpoint_alert(session: Session, alert: EndpointAlert, now: datetime) -> None:
    """Queue the alert's emails and its operational event."""
    disabled = alert.kind == "disabled"
    data: dict[str, Any] = {
        "workspace_id": alert.workspace_id,
        "campaign_id": alert.campaign_id,
        "campaign_name": alert.campaign_name,
        "consecutive_failures": alert.consecutive_failures,
        "last_error": {"code": alert.last_error_code, "message": alert.last_error_message},
        "notification_id": alert.notification_id,
        "links": _links(alert.campaign_id, alert.notification_id),
    }
    if disabled:
        data["reason"] = alert.reason
    else:
        data["threshold"] = alert.threshold
    event = "endpoint.disabled" if disabled else "endpoint.failing"
    alerts_webhook.emit(session, alert.workspace_id, event, data, now)
    if not _config["alert_emails"]:
        return
    workspace = session.get(Workspace, alert.workspace_id)
    params = {
        "alert_kind": "disabled" if disabled else "failing",
        "campaign_id": alert.campaign_id,
        "campaign_name": alert.campaign_name,
        "workspace_name": workspace.name if workspace else alert.workspace_id,
        "threshold": alert.threshold,
        "failures": alert.consecutive_failures,
        "last_error": alert.last_error,
        "reason": alert.reason,
        "notification_id": alert.notification_id,
    }
    for email in alert_recipients(session, alert.workspace_id):
        mail_queue.enqueue(
            session,
            kind="alert",
            to_address=email,
            params=params,
            now=now,
            workspace_id=alert.workspace_id,
        )


def endpoint_enabled(session: Session, campaign: Campaign, actor: str, now: datetime) -> None:
    """A disabled webhook was enabled again: the operational event."""
    alerts_webhook.emit(
        session,
        campaign.workspace_id,
        "endpoint.enabled",
        {
            "workspace_id": campaign.workspace_id,
            "campaign_id": campaign.id,
            "campaign_name": campaign.name,
            "enabled_by": actor,
            "links": _links(campaign.id, None),
        },
        now,
    )


def bulk_retry_finished(session: Session, job: BulkJob, now: datetime) -> None:
    """A bulk retry ended: the operational event (not for one of the alerts webhook's own)."""
    hook = alerts_webhook.get(session, job.workspace_id)
    if hook is None or (job.filters or {}).get("campaign_id") == hook.id:
        return
    alerts_webhook.emit(
        session,
        job.workspace_id,
        "bulk_retry.finished",
        {
            "workspace_id": job.workspace_id,
            "job_id": job.id,
            "filters": job.filters,
            "retried": job.done,
            "created_at": job.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        now,
    )
