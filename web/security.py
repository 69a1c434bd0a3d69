"""Browser-facing protections: CSRF on every form, JSON with ISO dates, safe headers,
``Secure`` cookies and HSTS on HTTPS requests (direct, or through ``PROXY_HOPS`` trusted
proxies)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask import Flask, Response, has_request_context, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

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


HSTS = "max-age=31536000"


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` whenever the request came in over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        forced = bool(app.config.get("SESSION_COOKIE_SECURE"))
        return forced or (has_request_context() and request.is_secure)


def parse_proxy_hops(value: Any) -> int:
    try:
        hops = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"PROXY_HOPS must be a whole number, got {value!r}") from None
    if not 0 <= hops <= 10:
        raise ValueError(f"PROXY_HOPS must be between 0 and 10, got {hops}")
    return hops


def init_app(app: Flask) -> None:
    app.json = IsoJSONProvider(app)
    csrf.init_app(app)
    app.session_interface = HttpsAwareSessionInterface()
    hops = app.config["PROXY_HOPS"] = parse_proxy_hops(app.config.get("PROXY_HOPS", 0))
    if hops:
        # Trust exactly ``hops`` proxies' X-Forwarded-For/-Proto/-Host/-Port/-Prefix.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response
