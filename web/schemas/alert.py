"""Endpoint health alerts as the API answers them (``GET /alerts``)."""

from __future__ import annotations

from typing import Any

from engine.store.models import Alert


def alert_to_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "campaign_id": alert.campaign_id,
        "kind": alert.kind,
        "message": alert.message,
        "consecutive_failures": alert.consecutive_failures,
        "created_at": alert.created_at,
        "acknowledged_at": alert.acknowledged_at,
    }
