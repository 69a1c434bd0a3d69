"""JSON Schemas of the API's answers, for the OpenAPI document.

Answers are built by ``*_to_json`` functions (``web.schemas.campaign.campaign_to_json``,
``web.schemas.notification.notification_to_json``, ...), not marshmallow schemas, so their
shapes are written out here, field for field. The schemathesis test validates every answer
it provokes against these, so a drifting view fails a test instead of misleading a client.
"""

from __future__ import annotations

from typing import Any

from engine.store.log_stats import COUNTED_STATUSES, WINDOWS
from engine.store.models import CAMPAIGN_STATUSES, NOTIFICATION_STATUSES
from web.log.explanations import WAITS


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: Any) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def _object(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object whose listed properties are all present unless named in ``optional``."""
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


def _list_of(item: str) -> dict[str, Any]:
    return _object(
        {"data": {"type": "array", "items": ref(item)}, "next_cursor": _nullable(STRING)}
    )


STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
DATETIME: dict[str, Any] = {"type": "string", "format": "date-time"}
ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}

ERROR = _object(
    {
        "error": _object(
            {
                "code": {**STRING, "description": "Stable machine-readable code."},
                "message": {**STRING, "description": "A sentence for humans."},
                "details": {
                    "nullable": True,
                    "description": "What exactly is wrong, e.g. field path → messages.",
                },
            }
        )
    }
)

_ERROR_INFO = _nullable(_object({"code": _nullable(STRING), "message": _nullable(STRING)}))

_WEBHOOK_SHOWN = {
    **ANY_OBJECT,
    "description": "The webhook channel (SPEC §4, fields as in WebhookChannel) with secrets "
    "masked: `auth.password` and `auth.token` as `****`, `secret` masked except right after "
    "create, duplicate and rotate-secret. A draft may have no `url` yet. `max_concurrency` and "
    "`rate_limit` are always shown: a channel saved before they existed shows their "
    "defaults (10, null).",
}

CAMPAIGN = _object(
    {
        "id": STRING,
        "name": STRING,
        "status": {"type": "string", "enum": list(CAMPAIGN_STATUSES)},
        "trigger": ANY_OBJECT,
        "audience": ANY_OBJECT,
        "frequency_cap": _nullable(ANY_OBJECT),
        "webhook": _WEBHOOK_SHOWN,
        "health": _object(
            {
                "consecutive_failures": INTEGER,
                "disabled": BOOLEAN,
                "disabled_reason": _nullable(STRING),
                "disabled_at": _nullable(DATETIME),
            },
        ),
        "activated_at": _nullable(DATETIME),
        "created_at": DATETIME,
        "updated_at": DATETIME,
        "previous_secret_expires_at": {
            **_nullable(DATETIME),
            "description": "Only in the rotate-secret answer: until when the old secret "
            "still signs alongside the new one.",
        },
        "released_notifications": {
            **INTEGER,
            "description": "Only in the enable-webhook answer: held notifications released.",
        },
    },
    optional=("previous_secret_expires_at", "released_notifications"),
)

TEMPLATE = _object(
    {
        "id": STRING,
        "name": STRING,
        "description": STRING,
        "webhook": _WEBHOOK_SHOWN,
        "created_at": DATETIME,
        "updated_at": DATETIME,
    }
)

CONTACT = _object(
    {
        "id": STRING,
        "external_id": STRING,
        "attributes": ANY_OBJECT,
        "created_at": DATETIME,
        "updated_at": DATETIME,
    }
)

ATTEMPT = _object(
    {
        "number": INTEGER,
        "started_at": DATETIME,
        "duration_ms": _nullable(INTEGER),
        "status_code": _nullable(INTEGER),
        "response_headers": _nullable(ANY_OBJECT),
        "response_body": _nullable(STRING),
        "response_truncated": BOOLEAN,
        "error": _ERROR_INFO,
        "request": _nullable(
            {
                **ANY_OBJECT,
                "description": "The request this attempt sent {method, url, headers, body}, "
                "secrets masked (a retry after a fix renders a new one; earlier attempts keep "
                "theirs); null when the recipe did not render.",
            }
        ),
    }
)

_REQUEST_SNAPSHOT = _nullable(
    {
        **ANY_OBJECT,
        "description": "The rendered request {method, url, headers, body}, secrets masked; "
        "null when it could not be rendered.",
    }
)

NOTIFICATION = _object(
    {
        "id": STRING,
        "campaign_id": STRING,
        "contact_external_id": _nullable(STRING),
        "event_id": _nullable(STRING),
        "event_name": _nullable(STRING),
        "test": BOOLEAN,
        "status": {"type": "string", "enum": list(NOTIFICATION_STATUSES)},
        "reason": _nullable(STRING),
        "attempt_count": INTEGER,
        "last_status_code": _nullable(INTEGER),
        "next_attempt_at": _nullable(DATETIME),
        "created_at": DATETIME,
        "delivered_at": _nullable(DATETIME),
        "request": _REQUEST_SNAPSHOT,
        "error": _ERROR_INFO,
        "attempts": {
            "type": "array",
            "items": ref("Attempt"),
            "description": "Only in GET /notifications/{id}.",
        },
        "waiting": {
            **_nullable(
                _object(
                    {
                        "reason": {"type": "string", "enum": list(WAITS)},
                        "until": DATETIME,
                        "message": {**STRING, "description": "The same in plain words."},
                    }
                )
            ),
            "description": "Only in GET /notifications/{id}. Why a notification that is due "
            "(`pending` or `retrying`, `next_attempt_at` reached) is not being sent yet: "
            "`rate_limit` (the channel's next free send slot under its `rate_limit`), "
            "`retry_after` (the endpoint answered 429; the whole channel waits for its "
            "Retry-After) or `breaker` (the endpoint keeps timing out or refusing "
            "connections: one probe request at a time), and until when. Waiting never fails "
            "a notification nor spends an attempt. null when it is not held back.",
        },
    },
    optional=("attempts", "waiting"),
)

BULK_JOB = _object(
    {
        "id": STRING,
        "kind": STRING,
        "status": STRING,
        "filters": _nullable(ANY_OBJECT),
        "total": INTEGER,
        "done": INTEGER,
        "created_at": DATETIME,
        "finished_at": _nullable(DATETIME),
        "outcomes": {
            "type": "object",
            "additionalProperties": INTEGER,
            "description": "Where the notifications the job retried are now, by status "
            '(`{"delivered": 5, "retrying": 1}`); on `GET /notifications/jobs/{job_id}`.',
        },
    },
    optional=("outcomes",),
)

BULK_RETRY_ACCEPTED = _object(
    {
        "job_id": STRING,
        "count": {**INTEGER, "description": "Notifications the job will retry."},
        "created": {**BOOLEAN, "description": "False when the same filter's job was reused."},
        "job": ref("BulkJob"),
    }
)

ALERT = _object(
    {
        "id": STRING,
        "campaign_id": STRING,
        "kind": STRING,
        "message": STRING,
        "consecutive_failures": INTEGER,
        "created_at": DATETIME,
        "acknowledged_at": _nullable(DATETIME),
    }
)

RUN = _object(
    {
        "id": STRING,
        "campaign_id": STRING,
        "fire_time": DATETIME,
        "status": STRING,
        "notification_count": INTEGER,
        "skipped_count": INTEGER,
        "failed_count": INTEGER,
        "started_at": _nullable(DATETIME),
        "finished_at": _nullable(DATETIME),
        "error": _nullable(STRING),
    }
)

_LATENCY = _object({name: _nullable(INTEGER) for name in ("p50", "p90", "p99")})
_COUNTS = {name: INTEGER for name in COUNTED_STATUSES}

STATS = _object(
    {
        "window": {"type": "string", "enum": list(WINDOWS)},
        "bucket_seconds": INTEGER,
        "start": DATETIME,
        "end": DATETIME,
        "totals": _object(_COUNTS),
        "latency_ms": _LATENCY,
        "buckets": {
            "type": "array",
            "items": _object({"start": DATETIME, **_COUNTS, "latency_ms": _LATENCY}),
        },
    }
)

WORKSPACE = _object({"id": STRING, "name": STRING, "created_at": DATETIME})

EVENTS_ACCEPTED = _object(
    {
        "events": {
            "type": "array",
            "items": _object(
                {
                    "id": {**STRING, "description": "The stored event (the first, if duplicate)."},
                    "duplicate": BOOLEAN,
                    "notifications": {"type": "array", "items": STRING},
                }
            ),
        }
    }
)

EVENT_BATCH = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {"type": "array", "minItems": 1, "maxItems": 1000, "items": ref("Event")}
    },
}

RENDERED_REQUEST = _object(
    {
        "method": STRING,
        "url": STRING,
        "headers": {"type": "array", "items": _object({"name": STRING, "value": STRING})},
        "body": STRING,
    }
)

PROBLEM = _object(
    {
        "location": STRING,
        "message": STRING,
        "severity": {"type": "string", "enum": ["error", "warning"]},
        "line": _nullable(INTEGER),
        "column": _nullable(INTEGER),
        "variable": _nullable(STRING),
    }
)

RENDER_REQUEST = {
    "type": "object",
    "required": ["webhook"],
    "properties": {
        "webhook": ref("WebhookChannel"),
        "contact": {
            **_nullable(ANY_OBJECT),
            "description": 'A stored contact {"external_id"} or {"attributes", '
            '"external_id"?}; default: a sample contact.',
        },
        "event": {
            **_nullable(ANY_OBJECT),
            "description": '{"name", "properties", "id"?, "occurred_at"?}; without it the '
            "render behaves like a schedule run.",
        },
        "campaign": {**_nullable(ANY_OBJECT), "description": '{"id"?, "name"?}'},
    },
}

RENDER_RESULT = _object(
    {"request": ref("RenderedRequest"), "warnings": {"type": "array", "items": ref("Problem")}}
)

TEST_SEND_RESULT = _object(
    {
        "notification_id": STRING,
        "request": _REQUEST_SNAPSHOT,
        "response": _object(
            {
                "status_code": INTEGER,
                "headers": ANY_OBJECT,
                "body": STRING,
                "duration_ms": _nullable(INTEGER),
            }
        ),
        "error": _object({"code": STRING, "message": _nullable(STRING)}),
    },
    optional=("response", "error"),
)

ACTIVITY = _object(
    {
        "id": STRING,
        "created_at": {"type": "string", "format": "date-time"},
        "kind": STRING,
        "actor": STRING,
        "user_id": _nullable(STRING),
        "object": _nullable(_object({"type": STRING, "id": STRING})),
        "summary": STRING,
    }
)

RESPONSES: dict[str, dict[str, Any]] = {
    "Campaign": CAMPAIGN,
    "CampaignList": _list_of("Campaign"),
    "Template": TEMPLATE,
    "TemplateList": _list_of("Template"),
    "Contact": CONTACT,
    "ContactList": _list_of("Contact"),
    "Attempt": ATTEMPT,
    "Notification": NOTIFICATION,
    "NotificationList": _list_of("Notification"),
    "BulkJob": BULK_JOB,
    "BulkRetryAccepted": BULK_RETRY_ACCEPTED,
    "Alert": ALERT,
    "AlertList": _list_of("Alert"),
    "ScheduleRun": RUN,
    "ScheduleRunList": _list_of("ScheduleRun"),
    "CampaignStats": STATS,
    "Workspace": WORKSPACE,
    "EventBatch": EVENT_BATCH,
    "EventsAccepted": EVENTS_ACCEPTED,
    "RenderRequest": RENDER_REQUEST,
    "RenderedRequest": RENDERED_REQUEST,
    "Problem": PROBLEM,
    "RenderResult": RENDER_RESULT,
    "TestSendResult": TEST_SEND_RESULT,
    "Activity": ACTIVITY,
    "ActivityList": _list_of("Activity"),
}
