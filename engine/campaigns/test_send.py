"""A campaign's test send: render for one contact and event, send ONE request now.

The notification is logged with ``test: true`` like any other (never retried, no effect
on endpoint health). It is stored already leased to this call (status ``sending``) and
committed *before* the request goes out, so no dispatcher sends it as well and no
database transaction (on SQLite: the single write lock) stays open during the HTTP call;
the attempt is then recorded in a second short transaction through the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from engine.campaigns.materialize import CampaignMaterializer, MaterializedBatch
from engine.delivery import attempts as delivery
from engine.delivery.transport import AttemptOutcome, OutgoingRequest, Transport
from engine.store import Database, accounts, claims, contacts, outbox
from engine.store import campaigns as campaign_store
from engine.store import events as event_store
from engine.store.claims import CampaignDelivery, ClaimedNotification
from engine.store.types import utcnow
from engine.templating.request import RenderSettings


@dataclass(frozen=True)
class TestSendResult:
    notification_id: str
    request: dict[str, Any] | None  # as sent, secrets masked; None when it did not render
    outcome: AttemptOutcome | None  # None when it did not render
    render_error: str | None = None
    render_error_code: str = "render_error"  # ssrf_blocked when the guard refused the URL


def contact_for_test(
    session: Session, workspace_id: str, spec: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The test contact as ``send_test`` takes it; None when its external id is unknown.

    ``spec`` is ``{"attributes": {...}}`` (an inline contact, optionally named by
    ``external_id``) or ``{"external_id": ...}`` of a stored contact.
    """
    if "attributes" in spec:
        return {
            "id": None,
            "external_id": spec.get("external_id") or "test-contact",
            "attributes": spec["attributes"],
        }
    stored = contacts.get_contact(session, workspace_id, spec["external_id"])
    if stored is None:
        return None
    return {"id": stored.id, "external_id": stored.external_id, "attributes": stored.attributes}


def event_for_test(spec: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The test event as templates see it, defaults filled; None when there is none."""
    if spec is None:
        return None
    return {
        "id": spec.get("id") or "evt_test",
        "name": spec.get("name") or "test",
        "occurred_at": spec.get("occurred_at") or datetime.now(UTC),
        "properties": spec.get("properties") or {},
    }


def send_test(
    database: Database,
    workspace_id: str,
    campaign_id: str,
    *,
    contact: Mapping[str, Any],
    event: Mapping[str, Any] | None,
    settings: RenderSettings,
    transport: Transport,
) -> TestSendResult | None:
    """Send one test request of the campaign; None when the campaign is not in the workspace.

    ``contact`` is ``{"id", "external_id", "attributes"}`` (``id`` None for inline
    attributes); ``event`` is the event as templates see it, or None.
    """
    now = utcnow()
    with database.transaction() as session:
        campaign = campaign_store.get_campaign(session, workspace_id, campaign_id)
        if campaign is None:
            return None
        workspace = accounts.get_workspace(session, workspace_id)
        maker = CampaignMaterializer(
            campaign,
            {"id": workspace_id, "name": workspace.name if workspace else None},
            settings,
        )
        batch = MaterializedBatch()
        notification_id = maker.add(
            batch, contact=contact, event=event, event_row_id=None, now=now, test=True
        )
        row = batch.notifications[0]
        target = CampaignDelivery.from_row(campaign)
        if row["status"] == "failed":
            event_store.insert_notifications(session, batch.notifications, batch.attempts)
            return TestSendResult(
                notification_id, None, None, row["error_message"], row["error_code"]
            )
        lease = f"send-now:{notification_id}"
        lease_until = now + timedelta(seconds=claims.lease_seconds(target))
        row.update(status="sending", leased_by=lease, next_attempt_at=lease_until)
        event_store.insert_notifications(session, batch.notifications)
    claimed = ClaimedNotification(
        id=notification_id,
        lease=lease,
        lease_until=lease_until,
        endpoint_host=row["endpoint_host"],
        attempt_count=0,
        test=True,
        request=row["request"],
        request_secrets=row["request_secrets"] or {},
        campaign=target,
    )
    sent_at = utcnow()
    request = delivery.outgoing_request(
        notification_id, claimed.request, claimed.request_secrets, target, sent_at
    )
    outcome = transport.send(request, timeout=target.timeout_seconds)
    with database.transaction() as session:
        outbox.record_attempts(session, [delivery.judge(claimed, outcome, utcnow())], utcnow())
    return TestSendResult(notification_id, _masked(request, row["request"]), outcome)


def _masked(sent: OutgoingRequest, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The request as sent: the stored (masked) snapshot plus the signature headers."""
    masked = dict(snapshot)
    masked["headers"] = list(snapshot["headers"]) + [
        {"name": name, "value": value}
        for name, value in sent.headers
        if name.lower().startswith("webhook-")
    ]
    return masked
