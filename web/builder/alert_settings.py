"""Where alerts leave Hookcast: each user's alert-email choice (Settings → Account) and the
workspace's alerts webhook (Settings → Alerts webhook, owners)."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from engine.delivery import signing
from engine.store import alerts_webhook
from engine.store import log as log_store
from engine.store.types import utcnow
from engine.templating.checks import url_problem
from web import activity_log, engine_settings, render_settings
from web.auth import login_required, require_role
from web.builder import bp
from web.database import get_session


@bp.post("/settings/account/alert-emails")
@login_required
def set_alert_emails() -> Response:
    db = get_session()
    user = db.merge(g.user)
    user.alert_emails = request.form.get("alert_emails") == "on"
    db.commit()
    flash("Alert emails are on." if user.alert_emails else "Alert emails are off.")
    return redirect(url_for("builder.account"))


def _webhook_page(
    errors: dict[str, str] | None = None, new_secret: str | None = None, status: int = 200
) -> tuple[str, int]:
    db = get_session()
    hook = alerts_webhook.get(db, g.workspace.id)
    recent = []
    if hook is not None:
        recent = log_store.list_notifications(
            db, g.workspace.id, log_store.LogFilter(campaign_id=hook.id), limit=10
        )
    return (
        render_template(
            "builder/alerts_webhook.html",
            hook=hook,
            recent=recent,
            errors=errors or {},
            form=request.form,
            new_secret=new_secret,
            secret_hint=signing.mask_secret(hook.signing_secret) if hook else None,
            event_types=alerts_webhook.EVENT_TYPES,
            mail_enabled=engine_settings(current_app).mail_enabled,
        ),
        status,
    )


@bp.get("/settings/alerts-webhook")
@login_required
def alerts_webhook_settings() -> tuple[str, int]:
    require_role("owner")
    return _webhook_page()


@bp.post("/settings/alerts-webhook")
@login_required
def save_alerts_webhook() -> Any:
    require_role("owner")
    db = get_session()
    url = request.form.get("url", "").strip()
    problem = url_problem(url, render_settings())
    if problem:
        return _webhook_page({"url": f"This URL cannot be used: {problem}."}, status=422)
    secret = signing.generate_secret()
    _, created = alerts_webhook.save(
        db,
        g.workspace.id,
        url=url,
        active=request.form.get("active") == "on",
        new_secret=secret,
        now=utcnow(),
    )
    activity_log.record(
        db, "alerts_webhook.saved", f"set the alerts webhook to {url}", object_type="workspace"
    )
    db.commit()
    if created:
        return _webhook_page(new_secret=secret)
    flash("The alerts webhook was saved.")
    return redirect(url_for("builder.alerts_webhook_settings"))


@bp.post("/settings/alerts-webhook/rotate-secret")
@login_required
def rotate_alerts_webhook_secret() -> Any:
    require_role("owner")
    db = get_session()
    hook = alerts_webhook.get(db, g.workspace.id)
    if hook is None:
        abort(404)
    secret = signing.generate_secret()
    alerts_webhook.rotate_secret(db, hook, secret, utcnow())
    activity_log.record(db, "alerts_webhook.secret_rotated", "rotated the alerts webhook's secret")
    db.commit()
    return _webhook_page(new_secret=secret)


@bp.post("/settings/alerts-webhook/remove")
@login_required
def remove_alerts_webhook() -> Response:
    require_role("owner")
    db = get_session()
    hook = alerts_webhook.get(db, g.workspace.id)
    if hook is None:
        abort(404)
    alerts_webhook.remove(db, hook)
    activity_log.record(db, "alerts_webhook.removed", "removed the alerts webhook")
    db.commit()
    flash("The alerts webhook was removed.")
    return redirect(url_for("builder.alerts_webhook_settings"))
