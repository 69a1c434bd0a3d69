"""Endpoint health over the API: ``GET /alerts`` and ``POST /campaigns/{id}/enable-webhook``."""

from __future__ import annotations

from typing import Any

from flask import request

from engine.store import health as health_store
from engine.store.types import utcnow
from web.activity_log import current_actor
from web.api import bp, page, page_size, workspace_id
from web.api.errors import not_found
from web.api.keyset import before_id
from web.database import get_session
from web.schemas.alert import alert_to_json
from web.schemas.campaign import campaign_to_json


@bp.get("/alerts")
def list_alerts() -> Any:
    """Health alerts, newest first; ``?open=1`` for unacknowledged ones, ``?campaign_id=``."""
    size = page_size()
    open_only = request.args.get("open", "").lower() in ("1", "true", "yes")
    alerts = health_store.list_alerts(
        get_session(),
        workspace_id(),
        limit=size + 1,
        before_id=before_id(),
        campaign_id=request.args.get("campaign_id") or None,
        open_only=open_only,
    )
    return page(alerts, size, alert_to_json, lambda last: {"before": last.id})


@bp.post("/campaigns/<campaign_id>/enable-webhook")
def enable_webhook(campaign_id: str) -> Any:
    """Re-enable a disabled webhook: reset its failure count and release held notifications."""
    session = get_session()
    result = health_store.enable_webhook(
        session, workspace_id(), campaign_id, utcnow(), current_actor().label
    )
    if result is None:
        raise not_found("campaign", campaign_id)
    campaign, released = result
    session.commit()
    body = campaign_to_json(campaign)
    body["released_notifications"] = released
    return body
