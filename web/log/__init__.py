"""The notifications log pages: list, detail sheet, retry/cancel, bulk retry, health, alerts.

Server-rendered under ``templates/log/``; the only script is ``static/log.js`` (bulk retry
progress, the filters' fold on phones). Changes check the role on the server; forms carry
CSRF tokens.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, g

from engine.store import log as log_store
from web.auth import role_at_least
from web.database import get_session

bp = Blueprint("log", __name__)


def _alerts_context() -> dict[str, Any]:
    """``open_alert_count`` for the navigation: owners see alerts until acknowledged."""
    if g.get("workspace") is None or not role_at_least("owner"):
        return {"open_alert_count": 0}
    return {"open_alert_count": log_store.count_open_alerts(get_session(), g.workspace.id)}


def init_app(app: Flask) -> None:
    from web.log import health, pages  # noqa: F401  (registers routes on bp)
    from web.log.explanations import alert_words

    app.register_blueprint(bp)
    app.add_template_global(alert_words)
    app.context_processor(_alerts_context)
