"""The Flask application: factory, configuration, and the blueprints that make the web half.

Configuration is layered: defaults here, then ``instance/config.py`` (written by
``hookcast init``), then ``HOOKCAST_*`` environment variables, then ``test_config``.
The factory starts no threads: the scheduler/executor is started by ``hookcast serve`` and
``hookcast worker`` only, so a forked web worker never runs a second scheduler.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from engine import crypto
from engine.settings import EngineSettings
from engine.store import notices
from engine.templating.request import RenderSettings
from web.logconfig import check_log_format

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent
#: The builder's pages: ``templates/`` at the top of the checkout, shipped inside the wheel
#: as ``web/templates`` (see setup.py).
TEMPLATES_DIR = (
    PACKAGE_DIR / "templates" if (PACKAGE_DIR / "templates").is_dir() else REPO_ROOT / "templates"
)
STATIC_DIR = PACKAGE_DIR / "static"

DEFAULTS: dict[str, Any] = {
    "REQUIRE_HTTPS": True,
    "ALLOWED_NETWORKS": "",
    "SENDER_THREADS": 64,
    "RETENTION_DAYS": 30,
    # GET /metrics answers (Prometheus text) only when this is set, to this Bearer token.
    "METRICS_TOKEN": "",
    # "text" (readable lines) or "json" (one JSON object per line, for log aggregators).
    "LOG_FORMAT": "text",
    "SESSION_IDLE_HOURS": 12,
    "SESSION_LIFETIME_DAYS": 14,
    "PROXY_HOPS": 0,
    "SMTP_URL": "",
    "MAIL_FROM": "",
    "BASE_URL": "",
    # One API request holds at most a batch of 1000 events; each event is capped at
    # 256 KiB on its own. Larger requests are refused with 413 before they are read.
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,
    "JSON_SORT_KEYS": False,
}


def default_instance_path() -> str:
    """``HOOKCAST_INSTANCE_PATH``, else ``./instance`` under the working directory."""
    return os.environ.get("HOOKCAST_INSTANCE_PATH") or str(Path.cwd() / "instance")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app. Raises ``ValueError`` with a readable message on bad configuration."""
    app = Flask(
        __name__,
        instance_path=default_instance_path(),
        instance_relative_config=True,
        template_folder=str(TEMPLATES_DIR),
        static_folder=str(STATIC_DIR),
    )
    app.config.from_mapping(DEFAULTS)
    app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'hookcast.sqlite3'}"
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("HOOKCAST", loads=_load_env_value)
    if test_config:
        app.config.from_mapping(test_config)
    _check_config(app)

    from web import account_links, api, auth, builder, database, log, metrics, security

    database.init_app(app)
    security.init_app(app)
    auth.init_app(app)
    account_links.init_app(app)
    api.init_app(app)
    builder.init_app(app)
    log.init_app(app)
    metrics.init_app(app)
    return app


def engine_settings(app: Flask) -> EngineSettings:
    return app.extensions["hookcast.settings"]


def render_settings() -> RenderSettings:
    """The current app's render guard (HTTPS only or not, allowed networks)."""
    return RenderSettings.from_settings(engine_settings(current_app))


def _load_env_value(value: str) -> Any:
    # Environment values stay strings; _check_config parses the typed ones, so that
    # "0" means False and a secret that happens to look like JSON is kept verbatim.
    return value


def _check_config(app: Flask) -> None:
    for name in ("SECRET_KEY", "ENCRYPTION_KEY"):
        if not app.config.get(name):
            raise ValueError(f"{name} is not set: run `hookcast init` (or set HOOKCAST_{name})")
    settings = EngineSettings.from_config(app.config)
    app.extensions["hookcast.settings"] = settings
    app.config["REQUIRE_HTTPS"] = settings.require_https
    app.config["SENDER_THREADS"] = settings.sender_threads
    app.config["RETENTION_DAYS"] = settings.retention_days
    app.config["LOG_FORMAT"] = check_log_format(app.config.get("LOG_FORMAT"))
    app.config["SESSION_IDLE_HOURS"] = settings.session_idle_hours
    app.config["SESSION_LIFETIME_DAYS"] = settings.session_lifetime_days
    # The cookie outlives no session: it expires with the session's absolute lifetime.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(days=settings.session_lifetime_days)
    crypto.configure_encryption(app.config["ENCRYPTION_KEY"])
    notices.configure(alert_emails=settings.mail_enabled, base_url=settings.base_url)
