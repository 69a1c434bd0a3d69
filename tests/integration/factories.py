"""Rows for delivery tests, made the way ingestion makes them (rendered at creation).

Until the campaign engine's ingestion exists, tests create campaigns, contacts and
notifications directly here; notifications are rendered with ``engine.render`` and stored
as the data conventions say (masked snapshot + encrypted secret headers, due now).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from engine import signing
from engine.ids import new_id
from engine.netguard import parse_networks
from engine.render import RenderSettings, build_variables, render_request
from engine.store import Database, outbox
from engine.store.models import Campaign, Contact, Notification
from engine.store.types import utcnow

TEST_RENDER_SETTINGS = RenderSettings(
    require_https=False, allowed_networks=parse_networks("127.0.0.0/8,::1/128")
)


def channel(url: str, **overrides: Any) -> dict[str, Any]:
    """A webhook channel (SPEC §4) with the schema's defaults, posting the default body."""
    base: dict[str, Any] = {
        "url": url,
        "method": "POST",
        "content_type": "json",
        "headers": [],
        "auth": {"type": "none"},
        "body": {"mode": "default"},
        "log_response_body": True,
        "active": True,
        "timeout_seconds": 5,
        "retry": {"schedule": [1], "max_attempts": 3},
        "disable_after_failures": 20,
    }
    base.update(overrides)
    return base


def make_campaign(
    session: Session,
    workspace_id: str,
    url: str,
    *,
    name: str = "Delivery test",
    secrets: Mapping[str, Any] | None = None,
    signing_secret: str | None = None,
    **channel_overrides: Any,
) -> Campaign:
    campaign = Campaign(
        workspace_id=workspace_id,
        name=name,
        status="active",
        trigger_type="event",
        trigger={"type": "event", "events": ["test.*"]},
        audience={},
        channel=channel(url, **channel_overrides),
        channel_secrets=dict(secrets) if secrets else None,
        signing_secret=signing_secret or signing.generate_secret(),
    )
    session.add(campaign)
    session.flush()
    return campaign


def make_contact(session: Session, workspace_id: str, external_id: str = "lead-1") -> Contact:
    contact = Contact(
        workspace_id=workspace_id, external_id=external_id, attributes={"email": "a@b.test"}
    )
    session.add(contact)
    session.flush()
    return contact


def _full_channel(campaign: Campaign) -> dict[str, Any]:
    full = dict(campaign.channel)
    secrets = campaign.channel_secrets or {}
    if full.get("auth") and secrets:
        full["auth"] = {**full["auth"], **{k: v for k, v in secrets.items() if v}}
    return full


def make_notification(
    session: Session,
    campaign: Campaign,
    contact: Contact,
    *,
    now: datetime | None = None,
    properties: Mapping[str, Any] | None = None,
    test: bool = False,
    announce: bool = True,
) -> Notification:
    """A rendered, due notification (``held`` when the webhook is disabled or inactive)."""
    now = now or utcnow()
    notification_id = new_id("msg")
    variables = build_variables(
        contact={
            "id": contact.id,
            "external_id": contact.external_id,
            "attributes": contact.attributes,
        },
        event={
            "id": new_id("evt"),
            "name": "test.event",
            "occurred_at": now,
            "properties": dict(properties or {}),
        },
        campaign={"id": campaign.id, "name": campaign.name},
        workspace={"id": campaign.workspace_id, "name": "Acme"},
        notification_id=notification_id,
        now=now,
    )
    rendered = render_request(_full_channel(campaign), variables, TEST_RENDER_SETTINGS)
    notification = Notification(
        id=notification_id,
        workspace_id=campaign.workspace_id,
        campaign_id=campaign.id,
        contact_id=contact.id,
        contact_external_id=contact.external_id,
        event_name="test.event",
        test=test,
        status="pending",
        endpoint_host=urlsplit(rendered.url).hostname,
        request=rendered.masked(),
        request_secrets=rendered.secret_headers(),
        next_attempt_at=now,
        created_at=now,
    )
    if campaign.webhook_disabled or campaign.channel.get("active") is False:
        notification.status = "held"
        notification.reason = (
            "webhook_disabled" if campaign.webhook_disabled else "webhook_inactive"
        )
        notification.next_attempt_at = None
    session.add(notification)
    session.flush()
    if announce:
        outbox.announce_new_notifications(session)
    return notification


def make_notifications(
    db: Database, workspace_id: str, url: str, count: int, **channel_overrides: Any
) -> tuple[str, list[str]]:
    """One campaign and ``count`` due notifications to ``url``; (campaign id, ids)."""
    with db.transaction() as session:
        campaign = make_campaign(session, workspace_id, url, **channel_overrides)
        contact = make_contact(session, workspace_id, new_id("lead"))
        ids = [make_notification(session, campaign, contact).id for _ in range(count)]
        return campaign.id, ids
