"""A workspace's alerts webhook: operational events (``endpoint.failing``, …) sent to a URL
of the owners' choosing, by the same delivery engine as any notification.

It is stored as a hidden campaign (``trigger_type = 'operational'``): its notifications are
claimed, signed with its own ``whsec_`` secret (encrypted at rest), retried and logged like
any other, but no event or schedule ever matches it, campaign lists leave it out, and
endpoint health never raises alerts, emails or operational events about it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store.models import OPERATIONAL_TRIGGER, Campaign, Notification
from engine.store.wakeups import announce_new_notifications

EVENT_TYPES = ("endpoint.failing", "endpoint.disabled", "endpoint.enabled", "bulk_retry.finished")
NAME = "Alerts webhook"
#: Operational events are retried like a campaign's webhook by default.
RETRY_POLICY = {"policy": "standard"}


def channel_for(url: str, active: bool) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": url,
        "content_type": "application/json",
        "headers": [],
        "auth": {"type": "none"},
        "body": {"mode": "raw", "template": ""},
        "timeout_seconds": 15,
        "retry": RETRY_POLICY,
        "log_response_body": True,
        "active": active,
    }


def get(session: Session, workspace_id: str) -> Campaign | None:
    return session.scalar(
        select(Campaign).where(
            Campaign.workspace_id == workspace_id, Campaign.trigger_type == OPERATIONAL_TRIGGER
        )
    )


def save(
    session: Session,
    workspace_id: str,
    *,
    url: str,
    active: bool,
    new_secret: str,
    now: datetime,
) -> tuple[Campaign, bool]:
    """Set the workspace's alerts webhook; ``(campaign, created)``. ``new_secret`` signs a
    newly created one (an existing one keeps its secret)."""
    campaign = get(session, workspace_id)
    created = campaign is None
    if campaign is None:
        campaign = Campaign(
            workspace_id=workspace_id,
            name=NAME,
            status="active",
            trigger_type=OPERATIONAL_TRIGGER,
            trigger={"type": OPERATIONAL_TRIGGER},
            audience={},
            signing_secret=new_secret,
            activated_at=now,
            created_at=now,
        )
        session.add(campaign)
    campaign.channel = channel_for(url, active)
    campaign.updated_at = now
    session.flush()
    return campaign, created


def rotate_secret(session: Session, campaign: Campaign, new_secret: str, now: datetime) -> None:
    """A new secret; the old one keeps signing too for 24 hours (as for campaigns)."""
    campaign.previous_signing_secret = campaign.signing_secret
    campaign.previous_secret_expires_at = now + timedelta(hours=24)
    campaign.signing_secret = new_secret
    campaign.updated_at = now
    session.flush()


def remove(session: Session, campaign: Campaign) -> None:
    """Delete the alerts webhook with its log of operational events."""
    session.delete(campaign)
    session.flush()


def emit(
    session: Session, workspace_id: str, event_type: str, data: dict[str, Any], now: datetime
) -> str | None:
    """Queue ``event_type`` for the workspace's alerts webhook, in the caller's transaction;
    the notification id, or None when the workspace has no active alerts webhook."""
    campaign = get(session, workspace_id)
    if campaign is None or (campaign.channel or {}).get("active") is False:
        return None
    url = str(campaign.channel["url"])
    notification = Notification(
        workspace_id=workspace_id,
        campaign_id=campaign.id,
        event_name=event_type,
        status="pending",
        endpoint_host=(urlsplit(url).hostname or "").lower() or None,
        attempt_count=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(notification)
    session.flush()
    body = {
        "type": event_type,
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": data,
    }
    notification.request = {
        "method": "POST",
        "url": url,
        "headers": [{"name": "Content-Type", "value": "application/json"}],
        "body": json.dumps(body, separators=(",", ":"), default=str),
    }
    notification.request_secrets = {}
    if campaign.webhook_disabled:
        notification.status, notification.reason = "held", "webhook_disabled"
        notification.next_attempt_at = None
    else:
        announce_new_notifications(session)
    session.flush()
    return notification.id
