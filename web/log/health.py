"""Campaign health (failures, alerts, re-enable, charts) and the workspace's alerts page."""

from __future__ import annotations

from datetime import datetime

from flask import abort, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from engine.rules.triggers import describe_schedule
from engine.store import campaigns as campaign_store
from engine.store import health as health_store
from engine.store import log as log_store
from engine.store import log_stats
from engine.store.models import Campaign
from engine.store.types import utcnow
from web import charts
from web.auth import login_required, require_role
from web.builder.schedule_picker import upcoming_runs
from web.database import get_session
from web.log import bp

RUNS_SHOWN = 20
COLOURS = {"delivered": "#1f8a4c", "failed": "#c0352b", "retrying": "#b26b00"}
LATENCY_COLOURS = {"p50": "#3457d5", "p90": "#7a5af8", "p99": "#c0352b"}


def _label(start: datetime, bucket_seconds: int) -> str:
    return start.strftime("%H:00" if bucket_seconds < 86400 else "%a %d")


def chart_pair(stats: log_stats.CampaignStats, title: str) -> dict[str, Markup]:
    """The delivery bars and latency lines of one window, as inline SVG."""
    labels = [_label(b.start, stats.bucket_seconds) for b in stats.buckets]
    bars = charts.stacked_bars(
        f"Notifications, {title} (UTC)",
        labels,
        [
            charts.Series(name, [getattr(b, name) for b in stats.buckets], colour)
            for name, colour in COLOURS.items()
        ],
    )
    latency = charts.lines(
        f"Response time, {title}",
        labels,
        [
            charts.Series(name, [getattr(b, name) for b in stats.buckets], colour)
            for name, colour in LATENCY_COLOURS.items()
        ],
    )
    # charts escapes every label itself and returns a finished <svg> element.
    return {"bars": Markup(bars), "latency": Markup(latency)}  # noqa: S704


def _campaign(campaign_id: str) -> Campaign:
    campaign = get_session().get(Campaign, campaign_id)
    if campaign is None or campaign.workspace_id != g.workspace.id:
        abort(404)
    return campaign


@bp.get("/campaigns/<campaign_id>/health")
@login_required
def campaign_health(campaign_id: str) -> str:
    session = get_session()
    campaign = _campaign(campaign_id)
    now = utcnow()
    day = log_stats.campaign_stats(session, g.workspace.id, campaign.id, now=now, window="24h")
    week = log_stats.campaign_stats(session, g.workspace.id, campaign.id, now=now, window="7d")
    held = log_store.list_notifications(
        session,
        g.workspace.id,
        log_store.LogFilter(campaign_id=campaign.id, status="held"),
        limit=1,
    )
    return render_template(
        "log/health.html",
        campaign=campaign,
        threshold=(campaign.channel or {}).get("disable_after_failures", 20),
        alerts=log_store.list_campaign_alerts(session, g.workspace.id, campaign.id),
        has_held=bool(held),
        day=day,
        week=week,
        day_charts=chart_pair(day, "last 24 hours"),
        week_charts=chart_pair(week, "last 7 days"),
        schedule_words=describe_schedule(campaign.trigger or {})
        if campaign.trigger_type == "schedule"
        else "",
        runs=campaign_store.list_runs(session, campaign.id, limit=RUNS_SHOWN)
        if campaign.trigger_type == "schedule"
        else [],
        upcoming=upcoming_runs(campaign.trigger or {}, now)
        if campaign.trigger_type == "schedule" and campaign.status == "active"
        else [],
    )


@bp.post("/campaigns/<campaign_id>/health/enable")
@login_required
def enable_webhook(campaign_id: str) -> Response:
    require_role("editor")
    session = get_session()
    result = health_store.enable_webhook(
        session, g.workspace.id, campaign_id, utcnow(), g.user.email
    )
    if result is None:
        abort(404)
    session.commit()
    _, released = result
    noun = "notification" if released == 1 else "notifications"
    flash(f"Webhook enabled. {released} held {noun} released for sending.")
    return redirect(url_for("log.campaign_health", campaign_id=campaign_id))


@bp.get("/alerts")
@login_required
def alerts() -> str:
    rows = log_store.list_open_alerts(get_session(), g.workspace.id)
    names = log_store.campaign_names(get_session(), g.workspace.id, (a.campaign_id for a in rows))
    return render_template("log/alerts.html", alerts=rows, names=names)


@bp.post("/alerts/acknowledge")
@login_required
def acknowledge_alerts() -> Response:
    require_role("owner")
    session = get_session()
    alert_id = request.form.get("alert_id") or None
    count = log_store.acknowledge_alerts(
        session, g.workspace.id, g.user.id, utcnow(), None if alert_id is None else [alert_id]
    )
    session.commit()
    flash(f"{count} alert{'' if count == 1 else 's'} acknowledged.")
    return redirect(url_for("log.alerts"))
