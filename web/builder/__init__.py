"""The marketer-facing builder: server-rendered pages behind a login.

Pages read through the engine's store and render templates under ``templates/builder/``.
Every change checks the role on the server (``require_role``); forms carry CSRF tokens.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, url_for
from werkzeug.wrappers import Response

from engine.store.availability import check_database
from web.api.errors import UNAVAILABLE_RETRY_AFTER
from web.database import get_database

bp = Blueprint("builder", __name__)


@bp.get("/")
def index() -> Response:
    return redirect(url_for("builder.campaigns"))


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers and tools that ask for /favicon.ico get the SVG icon every page links."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int, dict[str, str]]:
    """200 ``{"status": "ok"}`` only when the database answers a trivial query (and, on
    SQLite, the file is still the one this process opened); else 503 with the reason."""
    problem = check_database(get_database())
    if problem is None:
        return {"status": "ok"}, 200, {"Cache-Control": "no-store"}
    headers = {"Cache-Control": "no-store", "Retry-After": str(UNAVAILABLE_RETRY_AFTER)}
    return {"status": "unavailable", "database": problem}, 503, headers


def init_app(app: Flask) -> None:
    # Importing the modules registers their routes on bp.
    from web.builder import (  # noqa: F401
        account,
        activity_pages,
        alert_settings,
        campaign_json,
        campaigns,
        contacts_pages,
        invitations,
        settings,
        templates_pages,
    )
    from web.builder.editing import condition_value_text, none_group

    app.register_blueprint(bp)
    app.add_template_filter(condition_value_text)
    app.add_template_test(none_group)
