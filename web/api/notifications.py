"""``/notifications``: the log over the API — list, detail, retry, cancel, bulk retry, stats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from sqlalchemy.orm import Session

from engine.campaigns import manual_retry
from engine.store import campaigns as campaign_store
from engine.store import log as log_store
from engine.store import log_bulk, log_stats
from engine.store.log import LogActionError
from engine.store.models import Notification
from engine.store.types import utcnow
from web import activity_log, render_settings
from web.api import bp, json_body, page, page_size, workspace_id
from web.api.errors import ApiError, not_found
from web.api.keyset import before_id
from web.database import get_database, get_session
from web.schemas.notification import (
    NotificationFilterSchema,
    bulk_job_to_json,
    filter_from_args,
    notification_to_json,
)


@bp.get("/notifications")
def list_notifications() -> dict[str, Any]:
    filters = filter_from_args(request.args)
    size = page_size()
    rows = log_store.list_notifications(
        get_session(), workspace_id(), filters, limit=size + 1, before_id=before_id()
    )
    return page(rows, size, notification_to_json, lambda n: {"before": n.id})


@bp.get("/notifications/<notification_id>")
def get_notification(notification_id: str) -> dict[str, Any]:
    session = get_session()
    detail = log_store.get_notification_detail(session, workspace_id(), notification_id)
    if detail is None:
        raise not_found("notification", notification_id)
    waits = log_store.channel_waits(session, [detail.notification], utcnow())
    return notification_to_json(
        detail.notification, detail.attempts, wait=waits.get(detail.notification.id)
    )


def _act_on(
    notification_id: str, action: Callable[[Session], Notification | None]
) -> dict[str, Any]:
    """Run a log action on one notification: 409 when its status forbids it, 404 when absent."""
    session = get_session()
    try:
        notification = action(session)
    except LogActionError as exc:
        raise ApiError(409, exc.message, details={"status": exc.status}) from None
    if notification is None:
        raise not_found("notification", notification_id)
    session.commit()
    return notification_to_json(notification)


@bp.post("/notifications/<notification_id>/retry")
def retry_notification(notification_id: str) -> dict[str, Any]:
    def retry(session: Session) -> Notification | None:
        notification = manual_retry.retry_notification(
            session, workspace_id(), notification_id, render_settings()
        )
        if notification is not None:
            activity_log.record_retry(session, notification)
        return notification

    return _act_on(notification_id, retry)


@bp.post("/notifications/<notification_id>/cancel")
def cancel_notification(notification_id: str) -> dict[str, Any]:
    return _act_on(
        notification_id,
        lambda session: log_store.cancel_notification(
            session, workspace_id(), notification_id, utcnow()
        ),
    )


@bp.post("/notifications/retry")
def bulk_retry() -> tuple[dict[str, Any], int]:
    """Body: the filters (or ``{"filter": {...}}``). Answers 202 with the job and its count."""
    body = json_body() if request.data else {}
    if not isinstance(body, dict):
        raise ApiError(400, "send the filters as a JSON object")
    raw = body.get("filter", body)
    if not isinstance(raw, dict):
        raise ApiError(400, "filter must be a JSON object")
    filters = NotificationFilterSchema().load(raw)
    job, created = manual_retry.start_bulk_retry(
        get_session(), get_database(), render_settings(), workspace_id(), filters
    )
    if created:
        with get_database().transaction() as session:
            activity_log.record_bulk_retry(session, job)
    return {
        "job_id": job.id,
        "count": job.total,
        "created": created,
        "job": bulk_job_to_json(job),
    }, 202


@bp.get("/notifications/jobs/<job_id>")
def get_bulk_job(job_id: str) -> dict[str, Any]:
    session = get_session()
    job = log_bulk.get_bulk_job(session, workspace_id(), job_id)
    if job is None:
        raise not_found("job", job_id)
    return bulk_job_to_json(job, log_bulk.job_outcomes(session, job.id))


@bp.get("/campaigns/<campaign_id>/stats")
def campaign_stats(campaign_id: str) -> dict[str, Any]:
    """Delivered/failed/retrying per bucket and latency percentiles (``window=24h|7d``)."""
    window = request.args.get("window", "24h")
    if window not in log_stats.WINDOWS:
        raise ApiError(400, "window must be 24h or 7d", details={"window": window})
    session = get_session()
    if campaign_store.get_campaign(session, workspace_id(), campaign_id) is None:
        raise not_found("campaign", campaign_id)
    stats = log_stats.campaign_stats(
        session, workspace_id(), campaign_id, now=utcnow(), window=window
    )
    return stats.as_dict()
