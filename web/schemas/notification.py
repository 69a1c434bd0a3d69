"""Notifications as the API and the log pages read and show them (SPEC §7 shape)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from engine.store.channel_states import ChannelWait
from engine.store.log import LogFilter
from engine.store.models import NOTIFICATION_STATUSES
from web.log.explanations import explain_wait
from web.schemas.dates import StorableDateTime

SHORT = validate.Length(1, 255)


class NotificationFilterSchema(Schema):
    """The log's filters, from a query string or a JSON body; loads to a ``LogFilter``."""

    class Meta:
        unknown = EXCLUDE  # cursor, limit and the page's own parameters pass through

    campaign_id = fields.String(validate=SHORT)
    status = fields.String(validate=validate.OneOf(NOTIFICATION_STATUSES))
    contact = fields.String(validate=SHORT)
    event = fields.String(validate=SHORT)
    test = fields.Boolean()
    since = StorableDateTime(default_timezone=UTC)
    until = StorableDateTime(default_timezone=UTC)

    @validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise ValidationError("since must be before until", "until")

    @post_load
    def _to_filter(self, data: dict[str, Any], **_: Any) -> LogFilter:
        return LogFilter(**data)


def filter_from_args(args: Any) -> LogFilter:
    """A ``LogFilter`` from query arguments; empty values count as absent."""
    present = {key: value for key, value in args.items() if value not in ("", None)}
    return NotificationFilterSchema().load(present)


def error_json(code: str | None, message: str | None) -> dict[str, Any] | None:
    return None if code is None and message is None else {"code": code, "message": message}


def attempt_request(attempt: Any, current: dict[str, Any] | None) -> dict[str, Any] | None:
    """What an attempt sent: its own record, else the notification's request (None when
    the request could not be rendered, so nothing was sent)."""
    if attempt.error_code == "render_error":
        return None
    return attempt.request or current


def attempt_to_json(attempt: Any, current: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "started_at": attempt.started_at,
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "response_headers": attempt.response_headers,
        "response_body": attempt.response_body,
        "response_truncated": attempt.response_truncated,
        "error": error_json(attempt.error_code, attempt.error_message),
        "request": attempt_request(attempt, current),
    }


def waiting_to_json(wait: ChannelWait | None) -> dict[str, Any] | None:
    """Why a due notification waits for its channel: ``{"reason", "until", "message"}``."""
    if wait is None:
        return None
    return {
        "reason": wait.reason,
        "until": wait.until,
        "message": explain_wait(wait).summary,
    }


def notification_to_json(
    notification: Any, attempts: list[Any] | None = None, *, wait: ChannelWait | None = None
) -> dict[str, Any]:
    """The notification; with ``attempts`` (the detail) it carries them too, and
    ``waiting``: why it is due but held back by its channel (``wait``), or null."""
    data = {
        "id": notification.id,
        "campaign_id": notification.campaign_id,
        "contact_external_id": notification.contact_external_id,
        "event_id": notification.event_id,
        "event_name": notification.event_name,
        "test": notification.test,
        "status": notification.status,
        "reason": notification.reason,
        "attempt_count": notification.attempt_count,
        "last_status_code": notification.last_status_code,
        "next_attempt_at": notification.next_attempt_at
        if notification.status in ("pending", "retrying")
        else None,
        "created_at": notification.created_at,
        "delivered_at": notification.delivered_at,
        "request": notification.request,
        "error": error_json(notification.error_code, notification.error_message),
    }
    if attempts is not None:
        data["attempts"] = [attempt_to_json(a, notification.request) for a in attempts]
        data["waiting"] = waiting_to_json(wait)
    return data


def bulk_job_to_json(job: Any, outcomes: dict[str, int] | None = None) -> dict[str, Any]:
    """The job and its progress; with ``outcomes``, where the retried ones are now."""
    data = {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "filters": job.filters,
        "total": job.total,
        "done": job.done,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }
    if outcomes is not None:
        data["outcomes"] = outcomes
    return data
