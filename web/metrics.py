"""``GET /metrics`` in Prometheus text format, for ``serve``/``web`` and a worker's port.

Off unless ``METRICS_TOKEN`` is set (404); a scrape then sends it as
``Authorization: Bearer <token>``. ``hookcast worker --metrics-port P`` answers the same
path from a small WSGI server of its own (:func:`serve_worker_metrics`); without a token
configured it answers anyone who can reach its address (127.0.0.1 unless told otherwise).
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Blueprint, Flask, Response, abort, current_app, json, request

from engine import metrics
from engine.store import Database
from web.database import get_database

bp = Blueprint("metrics", __name__)

_UNAUTHORIZED = "send the METRICS_TOKEN as `Authorization: Bearer <token>`"


def token_matches(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def _error(status: int, code: str, message: str) -> tuple[bytes, list[tuple[str, str]]]:
    body = json.dumps({"error": {"code": code, "message": message, "details": None}}).encode()
    headers = [("Content-Type", "application/json")]
    if status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="metrics"'))
    return body, headers


@bp.get("/metrics")
def scrape() -> Response:
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        abort(404)
    if not token_matches(request.headers.get("Authorization"), token):
        body, headers = _error(401, "unauthorized", _UNAUTHORIZED)
        return Response(body, status=401, headers=headers)
    registry = current_app.extensions.get("hookcast.metrics")
    if registry is None:
        registry = current_app.extensions["hookcast.metrics"] = metrics.scrape_registry(
            get_database()
        )
    return Response(metrics.exposition(registry), content_type=metrics.CONTENT_TYPE)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


# -- a worker's own metrics port --------------------------------------------------------------


def metrics_wsgi_app(database: Database, token: str | None) -> Callable[..., Iterable[bytes]]:
    """``/metrics`` alone, as a WSGI app (the worker has no Flask app serving)."""
    registry = metrics.scrape_registry(database)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or environ["REQUEST_METHOD"] not in (
            "GET",
            "HEAD",
        ):
            body, headers = _error(404, "not_found", "only GET /metrics is served here")
            start_response("404 Not Found", headers)
            return [body]
        if token and not token_matches(environ.get("HTTP_AUTHORIZATION"), token):
            body, headers = _error(401, "unauthorized", _UNAUTHORIZED)
            start_response("401 Unauthorized", headers)
            return [body]
        start_response("200 OK", [("Content-Type", metrics.CONTENT_TYPE)])
        return [metrics.exposition(registry)]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # every scrape on stderr would drown the worker's own log


def serve_worker_metrics(database: Database, host: str, port: int, token: str | None) -> Any:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread; returns the server
    (``shutdown()`` stops it). Raises ``OSError`` when the address is taken."""
    server = make_server(
        host,
        port,
        metrics_wsgi_app(database, token),
        server_class=_Server,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="hookcast-metrics", daemon=True).start()
    return server
