"""The operations of ``/api/v1`` for the OpenAPI document: one entry per route.

Request bodies name the marshmallow schemas the views load with (the plugin turns them into
components); answers name the shapes of ``web.api.openapi_shapes``. A test checks that this
table and Flask's url_map list the same routes.
"""

from __future__ import annotations

from typing import Any

from engine.store.activity import KINDS as ACTIVITY_KINDS
from web.api import MAX_PAGE_SIZE
from web.api.openapi_shapes import json_content, ref
from web.schemas.notification import NotificationFilterSchema

# Views that read a JSON body answer 400 (not JSON), 415 (not application/json), 422.
_BODY_ERRORS = (400, 415, 422)

CURSOR = {
    "name": "cursor",
    "in": "query",
    "required": False,
    "description": "`next_cursor` from the previous page; omit for the first page.",
    "schema": {"type": "string"},
}
LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": "Page size.",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 50},
}
PAGE = (CURSOR, LIMIT)


def _path(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": what,
        "schema": {"type": "string"},
    }


def _query(name: str, schema: dict[str, Any], what: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": what, "schema": schema}


CAMPAIGN_ID = _path("campaign_id", "A campaign id.")
TEMPLATE_ID = _path("template_id", "A template id.")
NOTIFICATION_ID = _path("notification_id", "A notification id.")
EXTERNAL_ID = _path("external_id", "Your id of the contact (1 to 255 characters).")


def operation(
    summary: str,
    answers: dict[int, str | None],
    *,
    tag: str,
    body: Any = None,
    body_required: bool = True,
    parameters: tuple[dict[str, Any], ...] = (),
    errors: tuple[int, ...] = (),
    description: str = "",
    events_scope: bool = False,
) -> dict[str, Any]:
    """One operation: ``answers`` maps success statuses to a component name (None: no body).

    ``events_scope``: an ``events`` API key may call it too; every other operation answers
    such a key 403."""
    responses: dict[str, Any] = {}
    for status, name in answers.items():
        if name is None:
            responses[str(status)] = {"description": "No content"}
        else:
            responses[str(status)] = {"description": "OK", "content": json_content(ref(name))}
    body_errors = _BODY_ERRORS if body is not None else ()
    # A path value that names nothing (or that no route matches) is a 404.
    missing = (404,) if any(p.get("in") == "path" for p in parameters) else ()
    scope = () if events_scope else (403,)
    for status in sorted({401, 503, *scope, *errors, *body_errors, *missing}):
        responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    result: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if description:
        result["description"] = description
    if parameters:
        result["parameters"] = list(parameters)
    if body is not None:
        schema = ref(body) if isinstance(body, str) else body
        result["requestBody"] = {"required": body_required, "content": json_content(schema)}
    return result


def _lifecycle(summary: str, *, errors: tuple[int, ...] = (404, 409, 422)) -> dict[str, Any]:
    return {
        "post": operation(
            summary, {200: "Campaign"}, tag="campaigns", parameters=(CAMPAIGN_ID,), errors=errors
        )
    }


PATHS: dict[str, dict[str, Any]] = {
    "/openapi.json": {
        "get": {
            "summary": "This document (served without an API key)",
            "tags": ["meta"],
            "responses": {
                "200": {
                    "description": "The OpenAPI document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
    "/workspace": {"get": operation("The API key's workspace", {200: "Workspace"}, tag="meta")},
    "/events": {
        "post": operation(
            "Ingest one event or a batch of up to 1,000",
            {202: "EventsAccepted"},
            tag="events",
            body={"oneOf": [ref("Event"), ref("EventBatch")]},
            errors=(409, 413),
            description="Upserts each event's contact, matches campaigns and creates their "
            "notifications, all in one transaction. Nothing is stored when any event is "
            "invalid (422) or larger than 256 KiB (413).",
            events_scope=True,
        )
    },
    "/contacts": {
        "get": operation(
            "List contacts, newest first",
            {200: "ContactList"},
            tag="contacts",
            parameters=(
                *PAGE,
                _query("external_id_prefix", {"type": "string"}, "Only ids starting with it."),
            ),
            errors=(400,),
        )
    },
    "/contacts/{external_id}": {
        "get": operation(
            "A contact", {200: "Contact"}, tag="contacts", parameters=(EXTERNAL_ID,), errors=(404,)
        ),
        "put": operation(
            "Create or replace a contact's attributes",
            {200: "Contact", 201: "Contact"},
            tag="contacts",
            body="ContactWrite",
            parameters=(EXTERNAL_ID,),
            events_scope=True,
        ),
        "delete": operation(
            "Delete a contact",
            {204: None},
            tag="contacts",
            parameters=(EXTERNAL_ID,),
            errors=(404,),
            events_scope=True,
        ),
    },
    "/campaigns": {
        "post": operation(
            "Create a campaign (a draft)",
            {201: "Campaign"},
            tag="campaigns",
            body="CampaignCreate",
            errors=(404,),
            description="With `template_id`, the template's webhook is copied (later "
            "template edits do not reach the campaign). The answer shows the new signing "
            "secret in full, once.",
        ),
        "get": operation(
            "List campaigns, newest first",
            {200: "CampaignList"},
            tag="campaigns",
            parameters=(
                *PAGE,
                _query(
                    "status",
                    {"type": "string", "enum": ["draft", "active", "paused", "archived"]},
                    "Only this status.",
                ),
            ),
            errors=(400,),
        ),
    },
    "/campaigns/{campaign_id}": {
        "get": operation(
            "A campaign",
            {200: "Campaign"},
            tag="campaigns",
            parameters=(CAMPAIGN_ID,),
            errors=(404,),
        ),
        "patch": operation(
            "Change some fields of a campaign",
            {200: "Campaign"},
            tag="campaigns",
            body="CampaignPatch",
            parameters=(CAMPAIGN_ID,),
            errors=(404, 409),
        ),
        "delete": operation(
            "Delete a campaign",
            {204: None},
            tag="campaigns",
            parameters=(CAMPAIGN_ID,),
            errors=(404, 409),
        ),
    },
    "/campaigns/{campaign_id}/activate": _lifecycle("Activate (checks the campaign is complete)"),
    "/campaigns/{campaign_id}/pause": _lifecycle("Pause", errors=(404, 409)),
    "/campaigns/{campaign_id}/archive": _lifecycle("Archive", errors=(404, 409)),
    "/campaigns/{campaign_id}/rotate-secret": _lifecycle(
        "Rotate the signing secret (the old one signs too for 24 h)", errors=(404,)
    ),
    "/campaigns/{campaign_id}/enable-webhook": _lifecycle(
        "Re-enable a disabled webhook and release its held notifications", errors=(404,)
    ),
    "/campaigns/{campaign_id}/duplicate": {
        "post": operation(
            "Copy a campaign as a new draft",
            {201: "Campaign"},
            tag="campaigns",
            body="CampaignAction",
            body_required=False,
            parameters=(CAMPAIGN_ID,),
            errors=(404,),
        ),
    },
    "/campaigns/{campaign_id}/save-as-template": {
        "post": operation(
            "Save the campaign's webhook as a template",
            {201: "Template"},
            tag="campaigns",
            body="CampaignAction",
            body_required=False,
            parameters=(CAMPAIGN_ID,),
            errors=(404,),
        ),
    },
    "/campaigns/{campaign_id}/test": {
        "post": operation(
            "Send one real test request now",
            {200: "TestSendResult"},
            tag="campaigns",
            body="TestSend",
            parameters=(CAMPAIGN_ID,),
            errors=(404,),
            description="Logged as a notification with `test: true`, never retried, no "
            "effect on endpoint health. A render or send failure is reported in `error`.",
        )
    },
    "/campaigns/{campaign_id}/runs": {
        "get": operation(
            "Schedule runs of a campaign, newest first",
            {200: "ScheduleRunList"},
            tag="campaigns",
            parameters=(CAMPAIGN_ID, *PAGE),
            errors=(400, 404),
        ),
    },
    "/campaigns/{campaign_id}/stats": {
        "get": operation(
            "Delivered / failed / retrying per bucket, latency percentiles",
            {200: "CampaignStats"},
            tag="notifications",
            parameters=(
                CAMPAIGN_ID,
                _query(
                    "window",
                    {"type": "string", "enum": ["24h", "7d"], "default": "24h"},
                    "24 hourly or 7 daily buckets.",
                ),
            ),
            errors=(400, 404),
        )
    },
    "/templates": {
        "post": operation(
            "Create a template", {201: "Template"}, tag="templates", body="TemplateCreate"
        ),
        "get": operation(
            "List templates, newest first",
            {200: "TemplateList"},
            tag="templates",
            parameters=PAGE,
            errors=(400,),
        ),
    },
    "/templates/{template_id}": {
        "get": operation(
            "A template",
            {200: "Template"},
            tag="templates",
            parameters=(TEMPLATE_ID,),
            errors=(404,),
        ),
        "patch": operation(
            "Change some fields of a template",
            {200: "Template"},
            tag="templates",
            body="TemplatePatch",
            parameters=(TEMPLATE_ID,),
            errors=(404,),
        ),
        "delete": operation(
            "Delete a template",
            {204: None},
            tag="templates",
            parameters=(TEMPLATE_ID,),
            errors=(404,),
        ),
    },
    "/render": {
        "post": operation(
            "Render a webhook for sample data without sending",
            {200: "RenderResult"},
            tag="templates",
            body="RenderRequest",
            errors=(404,),
            description="422 with `details` (location, variable) when it does not render.",
        )
    },
    "/notifications": {
        "get": operation(
            "The notification log, newest first",
            {200: "NotificationList"},
            tag="notifications",
            parameters=({"in": "query", "schema": NotificationFilterSchema}, *PAGE),
            errors=(400, 422),
        )
    },
    "/notifications/retry": {
        "post": operation(
            "Retry every notification matching a filter (background job): `failed` and "
            "`retrying` ones, or only the `status` given (`failed`, `retrying` or `cancelled`)",
            {202: "BulkRetryAccepted"},
            tag="notifications",
            body={
                "oneOf": [
                    ref("NotificationFilter"),
                    {
                        "type": "object",
                        "required": ["filter"],
                        "properties": {"filter": ref("NotificationFilter")},
                    },
                ]
            },
            body_required=False,
        )
    },
    "/notifications/jobs/{job_id}": {
        "get": operation(
            "Progress of a bulk retry job",
            {200: "BulkJob"},
            tag="notifications",
            parameters=(_path("job_id", "A bulk job id."),),
            errors=(404,),
        ),
    },
    "/notifications/{notification_id}": {
        "get": operation(
            "A notification with its request and attempts",
            {200: "Notification"},
            tag="notifications",
            parameters=(NOTIFICATION_ID,),
            errors=(404,),
        ),
    },
    "/notifications/{notification_id}/retry": {
        "post": operation(
            "Retry one failed, cancelled or retrying notification now (rendered again from "
            "the campaign's current recipe, same `webhook-id`)",
            {200: "Notification"},
            tag="notifications",
            parameters=(NOTIFICATION_ID,),
            errors=(404, 409),
        ),
    },
    "/notifications/{notification_id}/cancel": {
        "post": operation(
            "Cancel a notification that has not been delivered",
            {200: "Notification"},
            tag="notifications",
            parameters=(NOTIFICATION_ID,),
            errors=(404, 409),
        ),
    },
    "/alerts": {
        "get": operation(
            "Endpoint health alerts, newest first",
            {200: "AlertList"},
            tag="alerts",
            parameters=(
                *PAGE,
                _query(
                    "open",
                    {"type": "string", "enum": ["1", "0", "true", "false"]},
                    "`1` for unacknowledged alerts only.",
                ),
                _query("campaign_id", {"type": "string"}, "Only this campaign's alerts."),
            ),
            errors=(400,),
        )
    },
    "/activity": {
        "get": operation(
            "The workspace's activity log, newest first (kept 90 days)",
            {200: "ActivityList"},
            tag="activity",
            parameters=(
                *PAGE,
                _query("user_id", {"type": "string"}, "Only what this user did."),
                _query(
                    "kind",
                    {"type": "string"},
                    "Only these kinds (repeat or comma-separate): "
                    + ", ".join(f"`{kind}`" for kind in ACTIVITY_KINDS)
                    + ".",
                ),
            ),
            errors=(400,),
        )
    },
}
