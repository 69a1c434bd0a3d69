"""The REST API under ``/api/v1``: Bearer API-key auth, JSON in and out.

Views parse with marshmallow schemas, call the engine with the request's session and the
caller's workspace id, and serialize. Every error leaves through ``web.api.errors``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from flask import Blueprint, Flask, g, request
from marshmallow import Schema

from engine.store import accounts
from engine.store.types import utcnow
from web.api.errors import ApiError
from web.api.errors import init_app as init_errors
from web.database import get_database
from web.json_input import JsonLimitError, load_json

bp = Blueprint("api", __name__, url_prefix="/api/v1")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

_PUBLIC_ENDPOINTS: set[str] = set()

#: What an ``events``-scope key may call: sending events and writing contacts.
EVENTS_SCOPE_ENDPOINTS = frozenset(
    {
        ("POST", "api.post_events"),
        ("PUT", "api.put_contact"),
        ("DELETE", "api.delete_contact"),
    }
)


def public(view: Any) -> Any:
    """Serve ``view`` without an API key (only for documents with no workspace data)."""
    _PUBLIC_ENDPOINTS.add(f"{bp.name}.{view.__name__}")
    return view


@bp.before_request
def authenticate() -> None:
    """Resolve ``Authorization: Bearer <key>`` to the workspace it acts for."""
    if request.endpoint in _PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "send an API key as `Authorization: Bearer <key>`")
    # Outside the request's session: a short read, then a short write only when the
    # last-used stamp is stale, so a GET never upgrades its read transaction.
    database = get_database()
    record = accounts.cached_api_key(key.strip())
    if record is None:
        with database.transaction(write=False) as session:
            record = accounts.authenticate_api_key(session, key.strip())
    if record is None:
        raise ApiError(401, "the API key is not valid or has been revoked")
    now = utcnow()
    if accounts.api_key_needs_touch(record, now):
        with database.transaction() as session:
            accounts.touch_api_key(session, record.id, now)
    g.workspace_id = record.workspace_id
    g.api_key_id = record.id
    g.api_key_label = f"API key {record.name or record.prefix + '…'}"
    g.api_key_scope = record.scope
    if (
        record.scope == "events"
        and request.endpoint is not None
        and (request.method, request.endpoint) not in EVENTS_SCOPE_ENDPOINTS
    ):
        raise ApiError(
            403,
            "this API key has the `events` scope: it may only send events (POST /events) "
            "and write contacts (PUT/DELETE /contacts/{external_id}); use a `full` key",
            code="scope_forbidden",
        )


@bp.before_request
def refuse_nul_in_url() -> None:
    """PostgreSQL text cannot hold NUL: a ``%00`` in the URL is a 400, not a database error."""
    values = [*(request.view_args or {}).values(), *request.args.keys(), *request.args.values()]
    if any("\x00" in value for value in values if isinstance(value, str)):
        raise ApiError(400, "the URL may not contain NUL (%00) characters")


def workspace_id() -> str:
    return g.workspace_id


def json_body() -> Any:
    """The parsed JSON body, or a 400 that says what is wrong with it."""
    if not request.data:
        raise ApiError(400, "the request body is empty; send a JSON document")
    if not request.is_json:
        raise ApiError(415, "send the body as application/json")
    raw = request.get_data(cache=True)
    try:
        document = load_json(raw)
    except JsonLimitError as exc:
        raise ApiError(422, f"the request body is refused: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    # Only escapes (or a UTF-16/32 body) can smuggle NUL or lone surrogates into strings, and
    # no database text column holds those: look closer only then, big batches stay cheap.
    suspect = b"\x00" in raw or _SUSPECT_ESCAPE.search(raw)
    if suspect and not _storable_text(document):
        raise ApiError(422, "text in the body may not contain NUL (\\u0000) or unpaired surrogates")
    return document


_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _storable_text(value: Any) -> bool:
    """True when every string in ``value`` (keys too) is NUL-free, encodable UTF-8."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_storable_text(k) and _storable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable_text(item) for item in value)
    return True


def load(schema: Schema, data: Any = None, **kwargs: Any) -> Any:
    """Validate ``data`` (default: the JSON body) with ``schema``; errors become 422."""
    return schema.load(json_body() if data is None else data, **kwargs)


def page_size() -> int:
    raw = request.args.get("limit", DEFAULT_PAGE_SIZE)
    try:
        size = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, "limit must be a whole number", details={"limit": raw}) from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError(400, f"limit must be between 1 and {MAX_PAGE_SIZE}")
    return size


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position encoded in a ``cursor`` query value; 400 when it was not one of ours."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        raise ApiError(400, "cursor is not valid; pass next_cursor from a previous page") from None
    if not isinstance(position, dict):
        raise ApiError(400, "cursor is not valid; pass next_cursor from a previous page")
    return position


def page(items: list[Any], size: int, serialize: Any, position: Any) -> dict[str, Any]:
    """The list envelope for a page fetched with ``size + 1`` rows."""
    has_more = len(items) > size
    items = items[:size]
    next_cursor = encode_cursor(position(items[-1])) if has_more and items else None
    return {"data": [serialize(item) for item in items], "next_cursor": next_cursor}


def init_app(app: Flask) -> None:
    from web.api import (  # noqa: F401  (registers routes on bp)
        activity,
        campaigns,
        contacts,
        events,
        health,
        meta,
        notifications,
        openapi,
        render,
        templates,
    )

    init_errors(app)
    app.register_blueprint(bp)
    # The API authenticates with keys, not cookies: CSRF does not apply to it.
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(bp)
