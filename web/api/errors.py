"""The API error envelope: ``{"error": {"code", "message", "details"}}`` for every error.

A schema's ``ValidationError`` answers 422 with ``details`` mapping each bad field's path
to its messages, flat: ``{"webhook.body.fields[1].name": ["Missing data for required field."]}``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from engine.store.db import expected_database_error
from web.schemas.errors import flatten_messages

API_PREFIX = "/api/"
UNAVAILABLE_RETRY_AFTER_SECONDS = 5

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

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        reason = expected_database_error(exc)
        if reason is not None:  # the database is down or restarting: one line, and a 503
            current_app.logger.warning(
                "%s %s: the database did not answer (%s)", request.method, request.path, reason
            )
            retry = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)}
            if not _is_api_request():
                return "The database is not answering; try again shortly.", 503, retry
            response = error_response(
                503, "unavailable", "the database is not answering; try again shortly"
            )
            response.headers.update(retry)
            return response
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if not _is_api_request():
            return "Internal server error", 500
        return error_response(500, "internal_error", "an unexpected error occurred; it was logged")
