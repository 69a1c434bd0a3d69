"""Test data for integration tests, in one place.

Three kinds of builders:

- rows the delivery path expects (``make_campaign``, ``make_contact``, ``make_notification``,
  ``make_notifications``): notifications rendered with ``engine.templating.render`` at creation and
  stored as the data conventions say (masked snapshot + encrypted secret headers, due now);
- rows the notifications log shows (``make_event``, ``make_recorded_notification``): a
  notification in any status with its attempts, stored as given, with an id whose ULID
  time matches ``created_at`` so time filters and pagination behave as in production;
- requests through the REST API (``webhook``, ``event_campaign``, ``send_event``) for the
  campaign, event and schedule tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from engine.campaigns.service import channel_with_secrets
from engine.delivery import signing
from engine.ids import new_id, new_ulid, ulid_floor
from engine.netguard import parse_networks
from engine.store import Database
from engine.store.models import Attempt, Campaign, Contact, Event, Notification
from engine.store.types import utcnow
from engine.store.wakeups import announce_new_notifications
from engine.templating.render import render_request
from engine.templating.request import RenderSettings
from engine.templating.variables import build_variables

TEST_RENDER_SETTINGS = RenderSettings(
    require_https=False, allowed_networks=parse_networks("127.0.0.0/8,::1/128")
)
DISCARD_URL = "http://127.0.0.1:9/hook"  # the discard port: nothing listens there


# --- Rows -----------------------------------------------------------------------------


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
    url: str = DISCARD_URL,
    *,
    name: str = "Lead sync",
    secrets: Mapping[str, Any] | None = None,
    signing_secret: str | None = None,
    channel_overrides: Mapping[str, Any] | None = None,
    **columns: Any,
) -> Campaign:
    """An active event campaign posting to ``url``; ``columns`` set other Campaign columns."""
    campaign = Campaign(
        workspace_id=workspace_id,
        name=name,
        status="active",
        trigger_type="event",
        trigger={"type": "event", "events": ["test.*"]},
        audience={},
        channel=channel(url, **(channel_overrides or {})),
        channel_secrets=dict(secrets) if secrets else None,
        signing_secret=signing_secret or signing.generate_secret(),
        **columns,
    )
    session.add(campaign)
    session.flush()
    return campaign


def make_contact(session: Session, workspace_id: str, external_id: str = "lead-1") -> Contact:
    contact = Contact(
        workspace_id=workspace_id,
        external_id=external_id,
        attributes={"email": f"{external_id}@example.com"},
    )
    session.add(contact)
    session.flush()
    return contact


def make_event(
    session: Session, workspace_id: str, contact: Contact | None, name: str = "lead.create"
) -> Event:
    event = Event(
        workspace_id=workspace_id,
        name=name,
        contact_id=contact.id if contact else None,
        properties={"score": 7},
    )
    session.add(event)
    session.flush()
    return event


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
    rendered = render_request(
        channel_with_secrets(campaign.channel, campaign.channel_secrets),
        variables,
        TEST_RENDER_SETTINGS,
    )
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
        announce_new_notifications(session)
    return notification


def make_notifications(
    db: Database, workspace_id: str, url: str, count: int, **channel_overrides: Any
) -> tuple[str, list[str]]:
    """One campaign and ``count`` due notifications to ``url``; (campaign id, ids)."""
    with db.transaction() as session:
        campaign = make_campaign(session, workspace_id, url, channel_overrides=channel_overrides)
        contact = make_contact(session, workspace_id, new_id("lead"))
        ids = [make_notification(session, campaign, contact).id for _ in range(count)]
        return campaign.id, ids


def notification_id_at(moment: datetime) -> str:
    """A notification id whose time part is ``moment``, with a random tail."""
    return "msg_" + ulid_floor(int(moment.timestamp() * 1000))[:10] + new_ulid()[10:]


def _recorded_request(campaign: Campaign) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": campaign.channel.get("url", DISCARD_URL),
        "headers": [
            {"name": "Content-Type", "value": "application/json"},
            {"name": "Authorization", "value": "Bearer ****"},
        ],
        "body": '{"id":"x","event":"lead.create","contact":{"email":"a@example.com"}}',
    }


def make_recorded_notification(
    session: Session,
    campaign: Campaign,
    *,
    status: str = "delivered",
    contact: str | Contact | None = "lead-1",
    event: str | Event | None = "lead.create",
    created_at: datetime | None = None,
    test: bool = False,
    attempts: list[dict[str, Any]] | None = None,
    **columns: Any,
) -> Notification:
    """A notification as the log records it, stored as given (not rendered, not due).

    ``attempts`` are dicts of Attempt columns; the last one sets the notification's status
    code and, unless delivered, its error. ``contact`` and ``event`` are rows or names.
    """
    created_at = created_at or utcnow()
    contact_row = contact if isinstance(contact, Contact) else None
    event_row = event if isinstance(event, Event) else None
    notification = Notification(
        id=notification_id_at(created_at),
        workspace_id=campaign.workspace_id,
        campaign_id=campaign.id,
        contact_id=contact_row.id if contact_row else None,
        contact_external_id=contact_row.external_id if contact_row else contact,
        event_id=event_row.id if event_row else None,
        event_name=event_row.name if event_row else event,
        test=test,
        status=status,
        endpoint_host="127.0.0.1",
        request=columns.pop("request") if "request" in columns else _recorded_request(campaign),
        request_secrets=columns.pop("request_secrets", {"Authorization": "Bearer old-token"}),
        created_at=created_at,
        updated_at=created_at,
        **columns,
    )
    session.add(notification)
    session.flush()
    for number, values in enumerate(attempts or (), start=1):
        started = values.pop("started_at", created_at + timedelta(seconds=number))
        session.add(
            Attempt(notification_id=notification.id, number=number, started_at=started, **values)
        )
    if attempts:
        notification.attempt_count = len(attempts)
        last = attempts[-1]
        notification.last_status_code = last.get("status_code")
        if status != "delivered":
            notification.error_code = notification.error_code or last.get("error_code")
            notification.error_message = notification.error_message or last.get("error_message")
    session.flush()
    return notification


# --- Through the REST API ---------------------------------------------------------------


def webhook(url: str = DISCARD_URL, **overrides: Any) -> dict[str, Any]:
    """A webhook for POST /campaigns: basic auth and a mapping body with one fallback."""
    webhook_channel: dict[str, Any] = {
        "url": url,
        "method": "POST",
        "auth": {"type": "basic", "username": "api", "password": "s3cret"},
        "body": {
            "mode": "mapping",
            "fields": [
                {"name": "who", "source": "contact.external_id"},
                {"name": "plan", "source": "contact.plan", "fallback": "none"},
            ],
        },
    }
    webhook_channel.update(overrides)
    return webhook_channel


def event_campaign(
    api: Any,
    events: list[str],
    *,
    conditions: dict | None = None,
    activate: bool = True,
    name: str = "Leads",
    **extra: Any,
) -> dict[str, Any]:
    """Create (and by default activate) an event campaign through the API; its JSON."""
    trigger: dict[str, Any] = {"type": "event", "events": events}
    if conditions:
        trigger["conditions"] = conditions
    body = {"name": name, "trigger": trigger, "webhook": extra.pop("webhook", webhook())}
    body.update(extra)
    response = api.post("/campaigns", json=body)
    assert response.status_code == 201, response.get_json()
    campaign = response.get_json()
    if activate:
        response = api.post(f"/campaigns/{campaign['id']}/activate")
        assert response.status_code == 200, response.get_json()
        campaign = response.get_json()
    return campaign


def send_event(api: Any, name: str, external_id: str = "c1", **fields: Any) -> dict[str, Any]:
    """POST one event through the API; the accepted event's JSON."""
    body = {"name": name, "contact": {"external_id": external_id}, **fields}
    if "attributes" in fields:
        body["contact"]["attributes"] = body.pop("attributes")
    response = api.post("/events", json=body)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["events"][0]
