"""Shared parts of the builder's JSON endpoints: located errors, previews, editor context.

The editors post the same JSON the REST API takes; these helpers turn marshmallow and
engine errors into ``{"error": {"code", "message", "details": {location: [messages]}}}``
where every location is a flat path such as ``webhook.body.fields[2].source``, which is
what the page's script uses to put each message beside its field.
"""

from __future__ import annotations

import difflib
import json
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from flask import Response, g, jsonify, request
from jinja2 import Undefined
from marshmallow import ValidationError

from engine.campaigns.service import channel_with_secrets, split_channel
from engine.store import builder_lookups, contacts
from engine.templating.channel import variables_without_fallback
from engine.templating.errors import RenderError
from engine.templating.render import render_request
from engine.templating.variables import build_variables, sample_variables
from web import render_settings
from web.builder.field_words import field_label, field_labels
from web.database import get_session
from web.json_input import JsonLimitError, load_json
from web.schemas.channel import WebhookChannelSchema
from web.schemas.errors import flatten_messages

SAMPLE_CONTACT = {
    "external_id": "lead-1042",
    "attributes": {"email": "ada@example.com", "first_name": "Ada", "plan": "pro", "score": 87},
}
SAMPLE_EVENT_PROPERTIES = {"status": "qualified", "score": 42}
BASE_VARIABLES = (
    "contact.id",
    "contact.external_id",
    "event.name",
    "event.id",
    "event.occurred_at",
    "campaign.id",
    "campaign.name",
    "workspace.id",
    "workspace.name",
    "notification.id",
    "now",
)


class EditorError(Exception):
    """A request the editor cannot act on; answered as the error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        details: Mapping[str, list[str]] | None = None,
        code: str = "",
        warnings: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, dict(details or {})
        self.warnings = warnings
        self.code = code or ("validation_error" if status == 422 else "error")

    def response(self) -> Response:
        error = {
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "labels": field_labels(self.details),
        }
        if self.warnings is not None:
            error["warnings"] = self.warnings
        answer = jsonify({"error": error})
        answer.status_code = self.status
        return answer


def validation_failed(
    exc: ValidationError, prefix: str = "", doing: str = "Not saved"
) -> EditorError:
    details = flatten_messages(exc.normalized_messages(), prefix)
    count = sum(len(v) for v in details.values())
    noun = "problem" if count == 1 else "problems"
    return EditorError(422, f"{doing}: {count} {noun} to fix.", details)


def json_payload() -> dict[str, Any]:
    try:
        data = load_json(request.get_data(cache=True)) if request.is_json else None
    except JsonLimitError as exc:
        raise EditorError(422, f"Not saved: {exc}.") from None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise EditorError(400, "The page sent something that is not a JSON object. Reload it.")
    return data


def did_you_mean_attribute(variable: str | None, known: list[str]) -> str:
    """`` — did you mean contact.first_name?`` for a contact attribute no contact has, when
    attributes the workspace's contacts do have are close (a typo, or a word of the
    name: ``name`` for ``first_name`` and ``last_name``); else ``""``."""
    if not variable or not variable.startswith("contact.") or variable in known:
        return ""
    if variable in ("contact.id", "contact.external_id"):
        return ""
    attribute = variable.removeprefix("contact.")
    keys = [path.removeprefix("contact.") for path in known if path.startswith("contact.")]
    close = difflib.get_close_matches(attribute, keys, n=2, cutoff=0.75)
    close = close or [key for key in keys if attribute in key.split("_")][:2]
    close = close or difflib.get_close_matches(attribute, keys, n=1, cutoff=0.6)
    if not close:
        return ""
    return " \u2014 did you mean " + " or ".join(f"contact.{key}" for key in close) + "?"


def known_attribute_paths(extra: Mapping[str, Any] | None = None) -> list[str]:
    """``contact.<key>`` of the workspace's contacts (and of ``extra``, the test contact)."""
    paths = set(builder_lookups.contact_attribute_paths(get_session(), g.workspace.id))
    paths.update(f"contact.{key}" for key in (extra or {}))
    return sorted(paths)


def channel_warnings(
    channel: Mapping[str, Any], prefix: str = "webhook", known: list[str] | None = None
) -> list[dict[str, Any]]:
    """Variables used without a fallback, located like errors (shown before saving); with
    ``known`` attribute paths, an unknown attribute gets a "did you mean"."""
    warnings = []
    for problem in variables_without_fallback(channel):
        data = problem.as_dict()
        if known is not None:
            data["message"] += did_you_mean_attribute(problem.variable, known)
        data["location"] = f"{prefix}.{problem.location}" if problem.location else prefix
        data["label"] = field_label(data["location"])
        warnings.append(data)
    return warnings


def _test_contact(spec: Any) -> dict[str, Any]:
    if spec is None:
        return {"id": None, **SAMPLE_CONTACT}
    if not isinstance(spec, dict):
        raise EditorError(
            422, "The test contact must be a JSON object.", {"contact": ["must be an object"]}
        )
    if "attributes" in spec:
        if not isinstance(spec["attributes"], dict):
            raise EditorError(
                422,
                "contact.attributes must be an object.",
                {"contact": ["attributes must be an object"]},
            )
        return {
            "id": None,
            "external_id": spec.get("external_id"),
            "attributes": spec["attributes"],
        }
    external_id = spec.get("external_id")
    if not isinstance(external_id, str) or not external_id:
        raise EditorError(
            422,
            'Give the contact as {"external_id": …} or {"attributes": {…}}.',
            {"contact": ["needs external_id or attributes"]},
        )
    stored = contacts.get_contact(get_session(), g.workspace.id, external_id)
    if stored is None:
        raise EditorError(
            404,
            f"There is no contact {external_id!r} in this workspace.",
            {"contact": ["not found"]},
        )
    return {"id": stored.id, "external_id": stored.external_id, "attributes": stored.attributes}


def _test_event(spec: Any) -> dict[str, Any] | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("properties") or {}, dict):
        raise EditorError(
            422,
            "The event properties must be a JSON object.",
            {"event": ["properties must be an object"]},
        )
    return {
        "id": spec.get("id") or "evt_preview",
        "name": spec.get("name") or "preview.event",
        "occurred_at": datetime.now(UTC),
        "properties": spec.get("properties") or {},
    }


def preview_request(
    webhook: Any,
    stored_secrets: Mapping[str, Any] | None,
    payload: Mapping[str, Any],
    *,
    campaign: Mapping[str, Any],
) -> dict[str, Any]:
    """The render twin of ``POST /api/v1/render`` for the editor: masked request + warnings.

    Blank write-only secrets are filled from the stored ones (``stored_secrets``), as saving
    would keep them, so the preview shows what will really be sent.
    """
    if not isinstance(webhook, dict):
        raise EditorError(422, "The webhook settings are missing.")
    settings = render_settings()
    webhook = channel_with_secrets(*split_channel(webhook, stored_secrets))
    contact = _test_contact(payload.get("contact"))
    known = known_attribute_paths(contact.get("attributes"))
    try:
        channel = WebhookChannelSchema(settings=settings).load(webhook)
    except ValidationError as exc:
        failed = validation_failed(exc, "webhook", "No preview")
        failed.warnings = _warnings_of_raw(webhook, known)
        raise failed from None
    variables = build_variables(
        contact=contact,
        event=_test_event(payload.get("event")),
        campaign=campaign,
        workspace={"id": g.workspace.id, "name": g.workspace.name},
        notification_id="msg_preview",
        now=datetime.now(UTC),
    )
    warnings = channel_warnings(channel, known=known)
    try:
        rendered = render_request(channel, variables, settings)
    except RenderError as exc:
        location = f"webhook.{exc.location}" if exc.location else "webhook"
        message = exc.message + did_you_mean_attribute(exc.variable, known)
        raise EditorError(
            422,
            "No preview: with this test data the request cannot be built.",
            {location: [message]},
            code=exc.code,
            warnings=warnings,
        ) from None
    return {"request": rendered.masked(), "warnings": warnings}


def _warnings_of_raw(webhook: Mapping[str, Any], known: list[str]) -> list[dict[str, Any]]:
    """Warnings of a channel that does not load yet (best effort: none if it cannot be read)."""
    try:
        return channel_warnings(webhook, known=known)
    except Exception:
        return []


def none_group(node: Any) -> bool:
    """A ``not`` the condition builder edits as a "none of these" group:
    ``{"not": {"any": [...]}}``, or ``{"not": <condition>}`` (none of that one)."""
    inner = node.get("not") if isinstance(node, dict) else None
    return isinstance(inner, dict) and (isinstance(inner.get("any"), list) or "field" in inner)


def condition_value_text(value: Any) -> str:
    """A condition value as the builder's value box shows it (lists comma-separated).

    Text that would read back as a number, boolean or null is quoted, so it stays text.
    """
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, list):
        return ", ".join(condition_value_text(item) for item in value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return json.dumps(value) if not isinstance(parsed, dict | list) else value
    return json.dumps(value)


@lru_cache(maxsize=1)
def timezone_names() -> tuple[str, ...]:
    return tuple(sorted(n for n in zoneinfo.available_timezones() if "/" in n or n == "UTC"))


def suggestions(workspace_id: str) -> dict[str, list[str]]:
    """Known event names and the field paths the condition builder and mappings offer."""
    session = get_session()
    attributes = builder_lookups.contact_attribute_paths(session, workspace_id)
    properties = builder_lookups.event_property_paths(session, workspace_id)
    sample = sample_variables()
    sample_paths = [f"contact.{k}" for k in sample["contact"] if k not in ("id", "external_id")]
    variables = sorted(set(BASE_VARIABLES) | set(attributes) | set(properties))
    fields = sorted({"contact.external_id", "event.name"} | set(attributes) | set(properties))
    return {
        "known_events": builder_lookups.known_event_names(session, workspace_id),
        "field_suggestions": fields or ["contact.external_id", "event.name", *sample_paths],
        "variable_paths": variables,
    }


def editor_error_handler(exc: EditorError) -> Response:
    return exc.response()
