"""``POST /render``: a webhook channel + sample data → the request it would send, and warnings.

Nothing is sent or stored. ``contact`` is ``{"external_id"}`` (a stored contact) or
``{"attributes", "external_id"?}``; without it the builder's sample contact is used.
``event`` (``{"name", "properties", "id"?, "occurred_at"?}``) is optional: without it the
render behaves like a schedule run (no ``event``). Secrets in the answer are masked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.store import accounts, contacts
from engine.templating.channel import validate_channel
from engine.templating.errors import RenderError
from engine.templating.render import render_request
from engine.templating.variables import build_variables, sample_variables
from web import render_settings
from web.api import bp, json_body, load, workspace_id
from web.api.errors import ApiError, not_found
from web.database import get_session
from web.schemas.channel import WebhookChannelSchema


def _object(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise ApiError(422, f"{key} must be an object", details={key: ["must be an object"]})
    return value


def _contact(spec: dict[str, Any] | None) -> dict[str, Any]:
    if spec is None:
        sample = sample_variables()["contact"]
        attributes = {k: v for k, v in sample.items() if k not in ("id", "external_id")}
        return {"id": sample["id"], "external_id": sample["external_id"], "attributes": attributes}
    if "attributes" in spec:
        if not isinstance(spec["attributes"], dict):
            raise ApiError(422, "contact.attributes must be an object")
        return {
            "id": None,
            "external_id": spec.get("external_id"),
            "attributes": spec["attributes"],
        }
    external_id = spec.get("external_id")
    if not isinstance(external_id, str):
        raise ApiError(422, 'contact must be {"external_id": ...} or {"attributes": {...}}')
    stored = contacts.get_contact(get_session(), workspace_id(), external_id)
    if stored is None:
        raise not_found("contact", external_id)
    return {"id": stored.id, "external_id": stored.external_id, "attributes": stored.attributes}


def _event(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    properties = spec.get("properties") or {}
    if not isinstance(properties, dict):
        raise ApiError(422, "event.properties must be an object")
    return {
        "id": spec.get("id"),
        "name": spec.get("name"),
        "occurred_at": spec.get("occurred_at") or datetime.now(UTC),
        "properties": properties,
    }


@bp.post("/render")
def render_preview() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict) or not isinstance(body.get("webhook"), dict):
        raise ApiError(422, 'send {"webhook": {...}, "contact": ..., "event": ...}')
    settings = render_settings()
    channel = load(WebhookChannelSchema(settings=settings), body["webhook"])
    campaign = _object(body, "campaign") or {}
    workspace = accounts.get_workspace(get_session(), workspace_id())
    variables = build_variables(
        contact=_contact(_object(body, "contact")),
        event=_event(_object(body, "event")),
        campaign={"id": campaign.get("id"), "name": campaign.get("name")},
        workspace={"id": workspace_id(), "name": workspace.name if workspace else None},
        notification_id="ntf_preview",
        now=datetime.now(UTC),
    )
    warnings = [p.as_dict() for p in validate_channel(channel, settings) if p.severity == "warning"]
    try:
        request = render_request(channel, variables, settings)
    except RenderError as exc:
        raise ApiError(422, str(exc), code=exc.code, details=exc.as_dict()) from None
    return {"request": request.masked(), "warnings": warnings}
