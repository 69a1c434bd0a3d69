"""``GET /activity``: the workspace's activity log (full-scope keys), newest first."""

from __future__ import annotations

from typing import Any

from flask import request

from engine.store import activity as activity_store
from engine.store.models import Activity
from web.api import bp, page, page_size, workspace_id
from web.api.errors import ApiError
from web.api.keyset import before_id
from web.database import get_session


def activity_to_json(entry: Activity) -> dict[str, Any]:
    return {
        "id": entry.id,
        "created_at": entry.created_at,
        "kind": entry.kind,
        "actor": entry.actor,
        "user_id": entry.user_id,
        "object": ({"type": entry.object_type, "id": entry.object_id} if entry.object_id else None),
        "summary": entry.summary,
    }


@bp.get("/activity")
def list_activity() -> dict[str, Any]:
    """Filters: ``user_id``, ``kind`` (repeat or comma-separate for several)."""
    kinds = [k for value in request.args.getlist("kind") for k in value.split(",") if k]
    unknown = sorted(set(kinds) - set(activity_store.KINDS))
    if unknown:
        raise ApiError(
            400,
            f"unknown kind {unknown[0]!r}",
            details={"kind": unknown, "kinds": list(activity_store.KINDS)},
        )
    size = page_size()
    rows = activity_store.list_page(
        get_session(),
        workspace_id(),
        limit=size + 1,
        before=before_id(),
        user_id=request.args.get("user_id") or None,
        kinds=kinds,
    )
    return page(rows, size, activity_to_json, lambda e: {"before": e.id})
