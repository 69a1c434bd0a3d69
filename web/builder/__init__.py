"""The marketer-facing builder: server-rendered pages behind a login.

Pages read through the engine's store and render templates under ``templates/builder/``.
Every change checks the role on the server (``require_role``); forms carry CSRF tokens.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, g, redirect, render_template, url_for
from werkzeug.wrappers import Response

from engine.store import campaigns as campaign_store
from engine.store import templates as template_store
from web.auth import login_required
from web.database import get_session

bp = Blueprint("builder", __name__)


@bp.get("/")
def index() -> Response:
    return redirect(url_for("builder.campaigns"))


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    get_session().connection()  # proves the database answers
    return {"status": "ok"}


@bp.get("/campaigns")
@login_required
def campaigns() -> str:
    rows = campaign_store.list_campaigns(get_session(), g.workspace.id)
    return render_template("builder/campaigns.html", campaigns=rows)


@bp.get("/templates")
@login_required
def templates() -> str:
    rows = template_store.list_templates(get_session(), g.workspace.id)
    return render_template("builder/templates.html", templates=rows)


def init_app(app: Flask) -> None:
    from web.builder import settings  # noqa: F401  (registers routes on bp)

    app.register_blueprint(bp)
