"""``POST /events``: one event, or ``{"events": [...]}`` (at most 1,000), in one transaction
(a request of a few events shares it with the others of the moment, see
``engine.campaigns.write_group``; a batch on SQLite is matched and rendered before it).

Answer: 202 ``{"events": [{"id", "duplicate", "notifications"}]}`` in request order, where
``id`` is the stored event's id (for a duplicate: the id stored the first time) and
``notifications`` is the list of ids of the notifications the event created (empty for a
duplicate or when no campaign matched; capped sends appear as ``skipped`` notifications).

Errors, with nothing stored: 422 naming the field (``events[3].contact.external_id``) of
the first bad events; 413 when one event is larger than 256 KiB (``details.index``).
"""

from __future__ import annotations

import json
from typing import Any

from marshmallow import ValidationError

from engine.campaigns.ingest import (
    MAX_BATCH,
    MAX_EVENT_BYTES,
    IncomingEvent,
    IngestConflict,
)
from engine.campaigns.write_group import ingest_request
from web import render_settings
from web.api import bp, json_body, workspace_id
from web.api.errors import ApiError
from web.database import get_database, get_session
from web.schemas.errors import flatten_messages
from web.schemas.event import load_event


def _parse(body: Any) -> tuple[list[IncomingEvent], bool]:
    if isinstance(body, dict) and "events" in body:
        raw = body["events"]
        if not isinstance(raw, list) or not raw:
            raise ApiError(
                422,
                "events must be a non-empty list",
                details={"events": ["must be a non-empty list"]},
            )
        if len(raw) > MAX_BATCH:
            raise ApiError(
                422,
                f"at most {MAX_BATCH} events per request, got {len(raw)}",
                details={"events": [f"at most {MAX_BATCH} events"]},
            )
        batch = True
    elif isinstance(body, dict):
        raw, batch = [body], False
    else:
        raise ApiError(422, 'send one event object or {"events": [...]}')
    events: list[IncomingEvent] = []
    errors: dict[str, list[str]] = {}
    for index, item in enumerate(raw):
        prefix = f"events[{index}]" if batch else ""
        size = len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_EVENT_BYTES:
            raise ApiError(
                413,
                f"{prefix or 'the event'} is {size} bytes; an event may be at most "
                f"{MAX_EVENT_BYTES // 1024} KiB",
                details={"index": index, "size": size, "limit": MAX_EVENT_BYTES},
            )
        try:
            data = load_event(item, size)
        except ValidationError as exc:
            errors.update(flatten_messages(exc.normalized_messages(), prefix, root="event"))
            if len(errors) >= 50:
                break
            continue
        events.append(
            IncomingEvent(
                name=data["name"],
                external_id=data["contact"]["external_id"],
                attributes=data["contact"].get("attributes"),
                properties=data.get("properties") or {},
                client_id=data.get("id"),
                occurred_at=data.get("occurred_at"),
            )
        )
    if errors:
        first = next(iter(errors))
        raise ApiError(
            422,
            f"{first}: {errors[first][0]}" + ("; nothing was stored" if batch else ""),
            details=errors,
        )
    return events, batch


@bp.post("/events")
def post_events() -> tuple[dict[str, Any], int]:
    events, _ = _parse(json_body())
    try:
        results = ingest_request(
            get_database(), get_session(), workspace_id(), events, settings=render_settings()
        )
    except IngestConflict as exc:
        raise ApiError(409, str(exc)) from None
    return {
        "events": [
            {"id": r.id, "duplicate": r.duplicate, "notifications": r.notifications}
            for r in results
        ]
    }, 202
