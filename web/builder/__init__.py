"""The marketer-facing builder: server-rendered pages behind a login.

Pages read through the engine's store and render templates under ``templates/builder/``.
Every change checks the role on the server (``require_role``); forms carry CSRF tokens.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, url_for
from werkzeug.wrappers import Response

from web.database import get_session

bp = Blueprint("builder", __name__)


@bp.get("/")
def index() -> Response:
    return redirect(url_for("builder.campaigns"))


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers and tools that ask for /favicon.ico get the SVG icon every page links."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    get_session().connection()  # proves the database answers
    return {"status": "ok"}


def init_app(app: Flask) -> None:
    # Importing the modules registers their routes on bp.
    from web.builder import (  # noqa: F401
        campaign_json,
        campaigns,
        contacts_pages,
        settings,
        templates_pages,
    )
    from web.builder.editing import condition_value_text, none_group

    app.register_blueprint(bp)
    app.add_template_filter(condition_value_text)
    app.add_template_test(none_group)
