"""One send of one notification: snapshot → signed request → transport → decision.

The worker never renders: the request was rendered when the notification was created and
is rebuilt here from its stored snapshot and encrypted secret headers. Each attempt gets
fresh Standard Webhooks headers (same ``webhook-id``, this attempt's timestamp), signed
with the campaign's secret and, for 24 h after a rotation, the previous one too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.delivery import signing
from engine.delivery.retry import policy_from_config
from engine.delivery.transport import AttemptOutcome, OutgoingRequest, Transport
from engine.store import outbox
from engine.store.claims import AttemptRecord, CampaignDelivery, ClaimedNotification
from engine.store.models import Campaign, Notification
from engine.templating.request import RenderedRequest


def signing_secrets(campaign: CampaignDelivery, now: datetime) -> list[str]:
    """The current secret, then the previous one while it is still honoured."""
    secrets = [campaign.signing_secret]
    previous = campaign.previous_signing_secret
    expires = campaign.previous_secret_expires_at
    if previous and expires is not None and expires > now:
        secrets.append(previous)
    return secrets


def send_time_headers(
    notification_id: str, body: bytes, campaign: CampaignDelivery, now: datetime
) -> dict[str, str]:
    """The Standard Webhooks headers an attempt at ``now`` carries, signed over ``body``."""
    return signing.webhook_headers(
        msg_id=notification_id,
        timestamp=int(now.timestamp()),
        body=body,
        secrets=signing_secrets(campaign, now),
    )


def outgoing_request(
    notification_id: str,
    snapshot: Mapping[str, Any],
    secret_headers: Mapping[str, str],
    campaign: CampaignDelivery,
    now: datetime,
) -> OutgoingRequest:
    """The stored request with its secrets restored and this attempt's signature headers."""
    rendered = RenderedRequest.from_snapshot(snapshot, secret_headers)
    webhook = send_time_headers(notification_id, rendered.body, campaign, now)
    reserved = {name.lower() for name in webhook}
    headers = [(n, v) for n, v in rendered.headers if n.lower() not in reserved]
    headers.extend(webhook.items())
    return OutgoingRequest(rendered.method, rendered.url, tuple(headers), rendered.body)


def judge(claimed: ClaimedNotification, outcome: AttemptOutcome, now: datetime) -> AttemptRecord:
    """Turn an attempt's outcome into what the outbox records: delivered, retry at T, or stop.

    Test sends are never retried. A 410 asks for the webhook to be disabled at once; the
    notification is then held (if the policy had attempts left) until it is re-enabled.
    """
    retry_at = None
    if not outcome.delivered and not claimed.test:
        policy = policy_from_config(claimed.campaign.channel.get("retry"))
        decision = policy.decide(
            attempts_made=claimed.attempt_count + 1, now=now, retry_after=outcome.retry_after
        )
        retry_at = decision.retry_at
    return AttemptRecord(
        claimed=claimed,
        started_at=outcome.started_at,
        duration_ms=outcome.duration_ms,
        status_code=outcome.status_code,
        response_headers=outcome.response_headers,
        response_body=outcome.response_body,
        response_truncated=outcome.response_truncated,
        error_code=outcome.error_code,
        error_message=outcome.error_message,
        delivered=outcome.delivered,
        retry_at=retry_at,
        gone=outcome.status_code == 410 and not claimed.test,
        retry_after=outcome.retry_after,
    )


def send_claimed(
    transport: Transport, claimed: ClaimedNotification, now: datetime
) -> AttemptOutcome:
    """Make one attempt of a claimed notification."""
    request = outgoing_request(
        claimed.id, claimed.request, claimed.request_secrets, claimed.campaign, now
    )
    return transport.send(request, timeout=claimed.campaign.timeout_seconds)


def send_now(
    session: Session,
    notification: Notification,
    campaign: Campaign,
    transport: Transport,
    now: datetime,
) -> tuple[OutgoingRequest, AttemptOutcome]:
    """Send a just-created notification synchronously and record the attempt (test sends).

    The notification must be flushed with its rendered request. It ends ``delivered`` or
    ``failed`` (test sends are not retried and do not count towards endpoint health).
    Returns the request as sent and the outcome. The caller commits.
    """
    delivery = CampaignDelivery.from_row(campaign)
    lease = f"send-now:{notification.id}"
    claimed = ClaimedNotification(
        id=notification.id,
        lease=lease,
        lease_until=now,
        endpoint_host=notification.endpoint_host,
        attempt_count=notification.attempt_count,
        test=True,
        request=notification.request or {},
        request_secrets=notification.request_secrets or {},
        campaign=delivery,
    )
    notification.status = "sending"
    notification.leased_by = lease
    session.flush()
    request = outgoing_request(claimed.id, claimed.request, claimed.request_secrets, delivery, now)
    outcome = transport.send(request, timeout=delivery.timeout_seconds)
    outbox.record_attempts(session, [judge(claimed, outcome, now)], now)
    session.refresh(notification)
    return request, outcome


def health_summary(campaign: Campaign) -> dict[str, Any]:
    """The ``health`` object of the campaign API shape."""
    return {
        "consecutive_failures": campaign.consecutive_failures,
        "disabled": bool(campaign.webhook_disabled),
        "disabled_reason": campaign.disabled_reason,
        "disabled_at": campaign.disabled_at,
    }
