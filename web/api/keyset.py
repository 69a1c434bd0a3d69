"""Keyset pagination: the ``before`` id carried in a list's ``cursor`` query value."""

from __future__ import annotations

from flask import request

from web.api import decode_cursor
from web.api.errors import ApiError


def before_id() -> str | None:
    """The id the requested page starts below (None for the first page); 400 when the
    ``cursor`` is not a ``next_cursor`` of ours."""
    position = decode_cursor(request.args.get("cursor")) or {}
    before = position.get("before")
    if before is not None and not isinstance(before, str):
        raise ApiError(400, "cursor is not valid; pass next_cursor from a previous page")
    return before
