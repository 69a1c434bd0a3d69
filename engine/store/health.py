"""Endpoint health: failure streaks, alerts, disabling a webhook, holding and releasing.

Settling (``outbox.record_attempts``) hands each batch's attempts to :func:`update_health`:
consecutive failed attempts per campaign (test sends excluded) raise alerts at 5, 10 and 15
and disable the webhook at ``disable_after_failures`` or on a 410. While a webhook is disabled
or its channel inactive, its open notifications are ``held``; enabling it again releases them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.orm import Session

from engine.ids import new_id
from engine.store import notices
from engine.store.claims import AttemptRecord, SettleSummary
from engine.store.models import OPERATIONAL_TRIGGER, Alert, Campaign, Notification
from engine.store.wakeups import announce_new_notifications

ALERT_THRESHOLDS = (5, 10, 15)
_RELEASABLE = ("pending", "retrying")

_C = Campaign.__table__
#: A success restarts the campaign's failure count; the row is written only when it was not 0.
#: Built once: every settle of a delivery runs it.
_RESET_FAILURES = (
    update(_C)
    .where(_C.c.id == bindparam("b_campaign"), _C.c.consecutive_failures != 0)
    .values(consecutive_failures=0)
)

# -- failure streaks and alerts ---------------------------------------------------------------


@dataclass
class _Streak:
    last: AttemptRecord
    reset: bool = False  # a success in this batch: the count restarts from it
    failures: int = 0  # failed attempts after the last success
    gone: bool = False


def update_health(
    session: Session, records: Iterable[AttemptRecord], now: datetime, summary: SettleSummary
) -> set[str]:
    """Apply this batch's outcomes to each campaign's failure streak; the disabled ones."""
    streaks: dict[str, _Streak] = {}
    for record in records:
        if record.claimed.test:
            continue
        streak = streaks.setdefault(record.claimed.campaign.id, _Streak(last=record))
        if record.delivered:
            streak.reset, streak.failures = True, 0
        else:
            streak.failures += 1
            streak.last = record
            streak.gone = streak.gone or record.gone
    disabled: set[str] = set()
    for cid, streak in streaks.items():
        failures, last = streak.failures, streak.last
        if not failures:  # successes only: reset the count, writing the row only if needed
            session.execute(_RESET_FAILURES, {"b_campaign": cid})
            continue
        new_count = failures if streak.reset else Campaign.consecutive_failures + failures
        row = session.execute(
            update(Campaign)
            .where(Campaign.id == cid)
            .values(consecutive_failures=new_count)
            .returning(
                Campaign.consecutive_failures,
                Campaign.webhook_disabled,
                Campaign.workspace_id,
                Campaign.name,
                Campaign.trigger_type,
            )
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if row is None:
            continue
        if row.webhook_disabled:
            disabled.add(cid)
            continue
        if row.trigger_type == OPERATIONAL_TRIGGER:
            continue  # the alerts webhook never alerts, disables or reports about itself
        campaign = last.claimed.campaign
        count = row.consecutive_failures
        before = count - failures
        reason = None
        if streak.gone:
            reason = "the endpoint answered 410 Gone"
        elif failures and count >= campaign.disable_after_failures:
            reason = f"{count} consecutive failed attempts"
        for threshold in ALERT_THRESHOLDS:
            if (
                failures
                and before < threshold <= count
                and not (reason and threshold >= campaign.disable_after_failures)
            ):
                message = (
                    f"The webhook of campaign \u201c{row.name}\u201d failed {threshold} times "
                    f"in a row (last: {last.error_message or last.error_code})."
                )
                _add_alert(
                    session,
                    _facts(row, last, f"failures_{threshold}", threshold),
                    message,
                    now,
                    summary,
                )
        if reason:
            disable_webhook(session, cid, reason, now)
            message = (
                f"The webhook of campaign \u201c{row.name}\u201d was disabled: {reason}. "
                "Notifications are held until it is enabled again."
            )
            facts = _facts(row, last, "disabled", count, reason)
            _add_alert(session, facts, message, now, summary)
            summary.disabled_campaigns.append(cid)
            disabled.add(cid)
    return disabled


def _facts(
    row: Any, last: AttemptRecord, kind: str, failures: int, reason: str | None = None
) -> notices.EndpointAlert:
    return notices.EndpointAlert(
        workspace_id=row.workspace_id,
        campaign_id=last.claimed.campaign.id,
        campaign_name=row.name,
        kind=kind,
        consecutive_failures=failures,
        last_error_code=last.error_code,
        last_error_message=last.error_message,
        notification_id=last.claimed.id,
        reason=reason,
    )


def _add_alert(
    session: Session,
    facts: notices.EndpointAlert,
    message: str,
    now: datetime,
    summary: SettleSummary,
) -> None:
    """The in-app alert, and in the same transaction its emails and operational event."""
    alert = Alert(
        id=new_id("alr"),
        workspace_id=facts.workspace_id,
        campaign_id=facts.campaign_id,
        kind=facts.kind,
        message=message,
        consecutive_failures=facts.consecutive_failures,
        created_at=now,
    )
    session.add(alert)
    summary.alerts.append(alert.id)
    notices.endpoint_alert(session, facts, now)


# -- disable, hold, release -------------------------------------------------------------------


def hold(session: Session, where: Any, reason: str, now: datetime) -> int:
    """Hold the notifications matching ``where``; how many were held."""
    result = session.execute(
        update(Notification)
        .where(where)
        .values(status="held", reason=reason, next_attempt_at=None, leased_by=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def disable_webhook(session: Session, campaign_id: str, reason: str, now: datetime) -> int:
    """Disable a campaign's webhook and hold its open notifications; how many were held."""
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(webhook_disabled=True, disabled_reason=reason[:500], disabled_at=now)
        .execution_options(synchronize_session=False)
    )
    return hold(
        session,
        (Notification.campaign_id == campaign_id) & Notification.status.in_(_RELEASABLE),
        "webhook_disabled",
        now,
    )


def hold_notifications(session: Session, campaign_id: str, reason: str, now: datetime) -> int:
    """Hold a campaign's pending/retrying notifications (e.g. its channel was deactivated)."""
    return hold(
        session,
        (Notification.campaign_id == campaign_id) & Notification.status.in_(_RELEASABLE),
        reason,
        now,
    )


def status_after_release() -> Any:
    """A released notification's status: ``pending`` if never attempted, else ``retrying``."""
    return case((Notification.attempt_count == 0, "pending"), else_="retrying")


def release_held_notifications(
    session: Session,
    campaign_id: str,
    now: datetime,
    reasons: Collection[str] = ("webhook_disabled", "webhook_inactive"),
) -> int:
    """Make a campaign's held notifications due now and announce them. The caller commits."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.campaign_id == campaign_id,
            Notification.status == "held",
            Notification.reason.in_(list(reasons)),
        )
        .values(status=status_after_release(), reason=None, next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    released = result.rowcount or 0
    if released:
        announce_new_notifications(session)
    return released


def enable_webhook(
    session: Session, workspace_id: str, campaign_id: str, now: datetime, actor: str = ""
) -> tuple[Campaign, int] | None:
    """Re-enable a campaign's webhook: reset its health and release held notifications.

    Returns the campaign and how many notifications were released, or None when the
    workspace has no such campaign. Notifications held because the channel itself is
    inactive stay held until it is activated. The caller commits.
    """
    campaign = session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.workspace_id == workspace_id)
    )
    if campaign is None:
        return None
    if campaign.webhook_disabled and campaign.trigger_type != OPERATIONAL_TRIGGER:
        notices.endpoint_enabled(session, campaign, actor, now)
    campaign.webhook_disabled = False
    campaign.consecutive_failures = 0
    campaign.disabled_reason = None
    campaign.disabled_at = None
    session.flush()
    reasons = ["webhook_disabled"]
    if (campaign.channel or {}).get("active", True) is not False:
        reasons.append("webhook_inactive")
    return campaign, release_held_notifications(session, campaign.id, now, reasons)


def list_alerts(
    session: Session,
    workspace_id: str,
    *,
    limit: int,
    before_id: str | None = None,
    campaign_id: str | None = None,
    open_only: bool = False,
) -> list[Alert]:
    """A workspace's alerts, newest first (keyset pagination on the id)."""
    query = select(Alert).where(Alert.workspace_id == workspace_id)
    if before_id:
        query = query.where(Alert.id < before_id)
    if campaign_id:
        query = query.where(Alert.campaign_id == campaign_id)
    if open_only:
        query = query.where(Alert.acknowledged_at.is_(None))
    return list(session.scalars(query.order_by(Alert.id.desc()).limit(limit)))
