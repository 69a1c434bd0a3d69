"""Browser-facing protections: CSRF on every form, JSON with ISO dates, safe headers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFProtect

from web.json_input import load_json

csrf = CSRFProtect()

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class IsoJSONProvider(DefaultJSONProvider):
    """Dates as ISO 8601 (UTC, ``Z``) rather than Flask's HTTP-date default; what is read
    keeps the limits of ``web.json_input`` (depth, finite numbers, no NaN or Infinity)."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if kwargs:
            return super().loads(s, **kwargs)
        return load_json(s)

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            if o.tzinfo is not None:
                o = o.astimezone(UTC).replace(tzinfo=None)
            return o.isoformat(timespec="milliseconds") + "Z"
        if isinstance(o, date):
            return o.isoformat()
        return DefaultJSONProvider.default(o)


def init_app(app: Flask) -> None:
    app.json = IsoJSONProvider(app)
    csrf.init_app(app)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response
