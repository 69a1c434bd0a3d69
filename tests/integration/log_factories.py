"""Rows for log tests: campaigns, contacts, events, notifications and attempts, inserted directly.

Notifications get ids whose ULID time matches ``created_at`` (as real ones do), so time
filters and pagination behave exactly as in production.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from engine.ids import new_ulid, ulid_floor
from engine.store.models import Attempt, Campaign, Contact, Event, Notification
from engine.store.types import utcnow


def notification_id_at(moment: datetime) -> str:
    """A notification id whose time part is ``moment``, with a random tail."""
    return "msg_" + ulid_floor(int(moment.timestamp() * 1000))[:10] + new_ulid()[10:]


def make_campaign(
    session: Session,
    workspace_id: str,
    *,
    name: str = "Lead sync",
    url: str = "http://127.0.0.1:9/hook",
    auth: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    log_response_body: bool = True,
    **columns: Any,
) -> Campaign:
    channel = {
        "url": url,
        "method": "POST",
        "content_type": "json",
        "headers": [],
        "auth": auth or {"type": "none"},
        "body": {"mode": "default"},
        "log_response_body": log_response_body,
        "active": True,
        "timeout_seconds": 5,
        "retry": {"schedule": [1], "max_attempts": 2},
        "disable_after_failures": 20,
    }
    campaign = Campaign(
        workspace_id=workspace_id,
        name=name,
        status="active",
        trigger={"type": "event", "events": ["lead.create"]},
        channel=channel,
        channel_secrets=secrets,
        signing_secret="whsec_" + "A" * 43 + "=",
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
    *,
    status: str = "delivered",
    contact: str | Contact | None = "lead-1",
    event: str | Event | None = "lead.create",
    created_at: datetime | None = None,
    test: bool = False,
    attempts: list[dict[str, Any]] | None = None,
    **columns: Any,
) -> Notification:
    """A notification (and its attempts, given as dicts of Attempt columns)."""
    created_at = created_at or utcnow()
    contact_row = contact if isinstance(contact, Contact) else None
    event_row = event if isinstance(event, Event) else None
    external_id = contact_row.external_id if contact_row else contact
    event_name = event_row.name if event_row else event
    notification = Notification(
        id=notification_id_at(created_at),
        workspace_id=campaign.workspace_id,
        campaign_id=campaign.id,
        contact_id=contact_row.id if contact_row else None,
        contact_external_id=external_id,
        event_id=event_row.id if event_row else None,
        event_name=event_name,
        test=test,
        status=status,
        endpoint_host="127.0.0.1",
        request=columns.pop(
            "request",
            {
                "method": "POST",
                "url": campaign.channel.get("url", "http://127.0.0.1:9/hook"),
                "headers": [
                    {"name": "Content-Type", "value": "application/json"},
                    {"name": "Authorization", "value": "Bearer ****"},
                ],
                "body": '{"id":"x","event":"lead.create","contact":{"email":"a@example.com"}}',
            },
        ),
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


def random_suffix() -> str:
    return os.urandom(3).hex()
