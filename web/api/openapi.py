"""``GET /openapi.json``: the OpenAPI 3 document of ``/api/v1``.

Request bodies come from the marshmallow schemas the views load with (``apispec`` and its
marshmallow plugin), so a changed schema changes the document. Response bodies are built by
``*_to_json`` functions, not schemas: their shapes are written out in
``web.api.openapi_shapes`` (the operations in ``web.api.openapi_paths``) and kept honest
by the schemathesis test, which checks every answer against them.

The document is served WITHOUT an API key: it describes the API, holds no workspace data and
no secret, and tools (code generators, API clients, the fuzz test) can read it directly.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app

from web.api import bp, public
from web.api import openapi_shapes as shapes
from web.api.openapi_paths import PATHS
from web.api.openapi_shapes import json_content, ref
from web.schemas.campaign import (
    AudienceSchema,
    CampaignActionSchema,
    CampaignSchema,
    FrequencyCapSchema,
    TestSendSchema,
)
from web.schemas.channel import RETRY_POLICIES, WebhookChannelSchema
from web.schemas.contact import ContactWriteSchema
from web.schemas.event import EventSchema
from web.schemas.notification import NotificationFilterSchema
from web.schemas.template import TemplateSchema

TITLE = "Hookcast API"
VERSION = "1"
OPENAPI_VERSION = "3.0.3"
_EXTENSION = "hookcast.openapi"

_ERRORS = {
    400: "Malformed request: bad JSON, query value or cursor",
    401: "Missing, invalid or revoked API key",
    403: "The API key's scope does not allow this: an `events` key may only send events "
    "(`POST /events`) and write contacts (`PUT`/`DELETE /contacts/{external_id}`)",
    404: "No such object in this workspace",
    409: "The object is not in a state that allows this",
    413: "An event is larger than 256 KiB",
    415: "The body is not sent as application/json",
    422: "The body is well-formed but not valid; `details` names each bad field by its path, "
    'list positions in brackets: `{"webhook.body.fields[1].name": [messages]}`. Also JSON '
    "nested deeper than 64 levels and numbers that do not fit a finite double",
    503: "The database cannot be reached right now (code `unavailable`); retry after "
    "`Retry-After` seconds",
}


def _register_request_schemas(spec: APISpec) -> None:
    """Components generated from the marshmallow schemas the views load with."""
    spec.components.schema("WebhookChannel", schema=WebhookChannelSchema)
    spec.components.schema("WebhookChannelPatch", schema=WebhookChannelSchema(partial=True))
    spec.components.schema("FrequencyCap", schema=FrequencyCapSchema)
    spec.components.schema("Audience", schema=AudienceSchema)
    spec.components.schema("CampaignCreate", schema=CampaignSchema)
    spec.components.schema("CampaignPatch", schema=CampaignSchema(partial=True))
    spec.components.schema("CampaignAction", schema=CampaignActionSchema)
    spec.components.schema("TestSend", schema=TestSendSchema)
    spec.components.schema("TemplateCreate", schema=TemplateSchema)
    spec.components.schema("TemplatePatch", schema=TemplateSchema(partial=True))
    spec.components.schema("ContactWrite", schema=ContactWriteSchema)
    spec.components.schema("Event", schema=EventSchema)
    spec.components.schema("NotificationFilter", schema=NotificationFilterSchema)


def _refine(schemas: dict[str, Any]) -> None:
    """Say what the generic fields of the request schemas (``fields.Dict``, custom) hold."""
    retry = {
        "description": "A named retry policy or an explicit schedule of delays in seconds.",
        "oneOf": [
            {
                "type": "object",
                "required": ["policy"],
                "additionalProperties": False,
                "properties": {"policy": {"type": "string", "enum": list(RETRY_POLICIES)}},
            },
            {
                "type": "object",
                "required": ["schedule", "max_attempts"],
                "additionalProperties": False,
                "properties": {
                    "schedule": {"type": "array", "items": {"type": "integer"}},
                    "max_attempts": {"type": "integer"},
                },
            },
        ],
    }
    schemas["WebhookChannel"]["properties"]["retry"] = retry
    schemas["WebhookChannelPatch"]["properties"]["retry"] = retry
    for name in ("WebhookChannel", "WebhookChannelPatch"):
        # apispec spells a nullable nested schema as anyOf [the schema, any object]; say
        # exactly what is taken: null or the rate limit object.
        generated = schemas[name]["properties"]["rate_limit"]
        schemas[name]["properties"]["rate_limit"] = {
            **schemas["RateLimit"],
            "nullable": True,
            "description": generated["description"],
            **({"default": None} if "default" in generated else {}),
        }
    patch_webhook = {
        "allOf": [ref("WebhookChannelPatch")],
        "description": "Merged over the stored webhook (or the template's, with "
        "`template_id`); omitted secrets keep their stored values.",
        "nullable": True,
    }
    for name in ("CampaignCreate", "CampaignPatch", "TemplatePatch"):
        schemas[name]["properties"]["webhook"] = patch_webhook
    schemas["TemplateCreate"]["properties"]["webhook"] = ref("WebhookChannel")
    trigger = schemas["CampaignCreate"]["properties"]["trigger"]
    trigger["description"] = (
        'An event trigger {"type": "event", "events": [...], "conditions": ...} or a '
        'schedule trigger {"type": "schedule", ...} (SPEC §6).'
    )
    schemas["CampaignPatch"]["properties"]["trigger"] = trigger


def build_document() -> dict[str, Any]:
    """The whole OpenAPI document, as a plain dict."""
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Events in, templated and signed webhooks out. Authenticate with "
            "`Authorization: Bearer <API key>`; every error answers "
            '`{"error": {"code", "message", "details"}}`.'
        },
        servers=[{"url": "/api/v1"}],
        security=[{"bearer": []}],
    )
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "A workspace API key."}
    )
    spec.components.schema("Error", shapes.ERROR)
    for status, description in _ERRORS.items():
        response = {"description": description, "content": json_content(ref("Error"))}
        if status == 503:
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        spec.components.response(f"Error{status}", response)
    for name, schema in shapes.RESPONSES.items():
        spec.components.schema(name, schema)
    _register_request_schemas(spec)
    for path, operations in PATHS.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    _refine(document["components"]["schemas"])
    document["paths"]["/openapi.json"]["get"]["security"] = []
    return document


@bp.get("/openapi.json")
@public
def openapi_document() -> dict[str, Any]:
    """The document, built once per app."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    document = app.extensions.get(_EXTENSION)
    if document is None:
        document = app.extensions[_EXTENSION] = build_document()
    return document
