"""The API error envelope: ``{"error": {"code", "message", "details"}}`` for every error.

A schema's ``ValidationError`` answers 422 with ``details`` mapping each bad field's path
to its messages, flat: ``{"webhook.body.fields[1].name": ["Missing data for required field."]}``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from engine.store.availability import RateLimitedLog, describe, failure_class, is_unavailable_error
from web.schemas.errors import flatten_messages

#: Seconds a client is asked to wait (``Retry-After``) while the database is away.
UNAVAILABLE_RETRY_AFTER = 5
#: One log line per kind of database failure per this many seconds, however many requests.
UNAVAILABLE_LOG_INTERVAL = 60.0

API_PREFIX = "/api/"

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise from a view to answer with the error envelope."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = details


def not_found(kind: str, identifier: str) -> ApiError:
    return ApiError(404, f"no {kind} with id {identifier!r} in this workspace")


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    return response


def _is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def init_app(app: Flask) -> None:
    """App-level handlers, so unrouted paths and 405s under /api/ get the envelope too."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError) -> Response:
        details = flatten_messages(exc.normalized_messages())
        return error_response(422, "validation_error", "the request body is not valid", details)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if not _is_api_request():
            return exc
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = "the request body is too large"
        return error_response(status, _CODES.get(status, "error"), message)

    unavailable_log = RateLimitedLog(UNAVAILABLE_LOG_INTERVAL)
    app.extensions["hookcast.unavailable_log"] = unavailable_log

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        if is_unavailable_error(exc):
            unavailable_log(
                current_app.logger,
                logging.WARNING,
                failure_class(exc),
                f"database unavailable, answering 503: {describe(exc)}",
            )
            return unavailable_response()
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if not _is_api_request():
            return "Internal server error", 500
        return error_response(500, "internal_error", "an unexpected error occurred; it was logged")


def unavailable_response() -> Response:
    """503 while the database cannot be reached: the envelope under /api/, a short page
    elsewhere, ``Retry-After`` on both."""
    message = "the database cannot be reached right now; retry shortly"
    if _is_api_request():
        response = error_response(503, "unavailable", message)
    else:
        response = Response(
            "Hookcast cannot reach its database right now. Try again in a moment.",
            status=503,
            mimetype="text/plain",
        )
    response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    return response
