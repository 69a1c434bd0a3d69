"""``/notifications``: the log table, the detail sheet, retry/cancel and bulk retry pages."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import partial
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from engine.campaigns import manual_retry
from engine.store import campaigns as campaign_store
from engine.store import log as log_store
from engine.store import log_bulk
from engine.store.log import LogActionError, LogFilter
from engine.store.models import NOTIFICATION_STATUSES
from engine.store.types import utcnow
from web import activity_log, render_settings
from web.auth import login_required, require_role
from web.database import get_database, get_session
from web.log import bp
from web.log.explanations import explain, explain_reason, explain_wait
from web.paging import keyset_page
from web.schemas.notification import attempt_request, bulk_job_to_json, filter_from_args

PAGE_SIZE = 50
#: Bulk retries this recent are listed above the log.
RECENT_JOBS_WINDOW = timedelta(hours=24)
FILTER_FIELDS = ("campaign_id", "status", "contact", "event", "test", "since", "until")


def _filter_args() -> dict[str, str]:
    """The filter values as they appear in the URL (kept on every link and form)."""
    return {name: request.args[name] for name in FILTER_FIELDS if request.args.get(name)}


def _parse_filters(args: dict[str, str]) -> tuple[LogFilter, dict[str, Any]]:
    try:
        return filter_from_args(args), {}
    except ValidationError as exc:
        return LogFilter(), exc.normalized_messages()


def pretty_body(text: str | None) -> str | None:
    """JSON bodies indented for reading; anything else exactly as it was."""
    if not text:
        return text
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


@bp.get("/notifications")
@login_required
def notifications() -> str:
    session = get_session()
    args = _filter_args()
    filters, errors = _parse_filters(args)
    page = keyset_page(
        partial(log_store.list_notifications, session, g.workspace.id, filters),
        size=PAGE_SIZE,
        before=request.args.get("before") or None,
        after=request.args.get("after") or None,
    )
    rows = page.rows
    now = utcnow()
    waits = log_store.channel_waits(session, rows, now)
    jobs = log_bulk.recent_jobs(session, g.workspace.id, now - RECENT_JOBS_WINDOW)
    return render_template(
        "log/notifications.html",
        rows=rows,
        waiting={nid: explain_wait(wait, now) for nid, wait in waits.items()},
        names=log_store.campaign_names(session, g.workspace.id, (n.campaign_id for n in rows)),
        campaigns=campaign_store.list_campaigns(session, g.workspace.id),
        statuses=NOTIFICATION_STATUSES,
        args=args,
        errors=errors,
        page=page,
        explain=explain,
        recent_jobs=[
            (job, describe_outcomes(log_bulk.job_outcomes(session, job.id))[0]) for job in jobs
        ],
        job_names=log_store.campaign_names(
            session, g.workspace.id, (j.filters.get("campaign_id") or "" for j in jobs)
        ),
    )


@bp.get("/notifications/<notification_id>")
@login_required
def notification_detail(notification_id: str) -> str:
    session = get_session()
    detail = log_store.get_notification_detail(session, g.workspace.id, notification_id)
    if detail is None:
        abort(404)
    notification = detail.notification
    now = utcnow()
    wait = log_store.channel_waits(session, [notification], now).get(notification.id)
    log_bodies = bool(
        (detail.campaign.channel if detail.campaign else {}).get("log_response_body", True)
    )
    request_snapshot = notification.request or {}
    attempts = []
    for attempt in reversed(detail.attempts):
        sent = attempt_request(attempt, notification.request)
        attempts.append(
            {
                "row": attempt,
                "explanation": explain(attempt.error_code, attempt.status_code),
                "body": pretty_body(attempt.response_body),
                "headers": sorted((attempt.response_headers or {}).items()),
                "request": sent,
                "request_body": pretty_body((sent or {}).get("body")),
                # an attempt that sent something else than the request shown above
                "request_differs": sent is not None and sent != notification.request,
            }
        )
    return render_template(
        "log/detail.html",
        n=notification,
        campaign=detail.campaign,
        attempts=attempts,
        request_body=pretty_body(request_snapshot.get("body")),
        snapshot=request_snapshot,
        log_bodies=log_bodies,
        explanation=explain(notification.error_code, notification.last_status_code)
        if notification.status in ("failed", "retrying")
        else None,
        reason=explain_reason(notification.reason),
        waiting=explain_wait(wait, now) if wait else None,
    )


@bp.post("/notifications/<notification_id>/<any(retry, cancel):action>")
@login_required
def notification_action(notification_id: str, action: str) -> Response:
    require_role("editor")
    session = get_session()
    try:
        if action == "retry":
            row = manual_retry.retry_notification(
                session, g.workspace.id, notification_id, render_settings()
            )
        else:
            row = log_store.cancel_notification(session, g.workspace.id, notification_id, utcnow())
    except LogActionError as exc:
        session.rollback()
        flash(f"Not done: {exc.message}.", "error")
    else:
        if row is None:
            abort(404)
        if action == "retry":
            activity_log.record_retry(session, row)
        session.commit()
        if action == "cancel":
            flash("Retrying stopped: it will not be sent.")
        elif row.status == "failed":
            flash(f"Not sent: {row.error_message}", "error")
        elif row.status == "held":
            flash("Queued, but held: the campaign's webhook is disabled.")
        else:
            flash("Queued for sending now.")
    return redirect(url_for("log.notification_detail", notification_id=notification_id))


@bp.get("/notifications/bulk-retry")
@login_required
def bulk_retry_confirm() -> str:
    require_role("editor")
    args = _filter_args()
    filters, errors = _parse_filters(args)
    if errors:
        abort(400)
    session = get_session()
    by_status = log_bulk.count_retryable_by_status(session, g.workspace.id, filters)
    matches = log_bulk.preview_retryable(session, g.workspace.id, filters)
    names = log_store.campaign_names(
        session, g.workspace.id, [filters.campaign_id or "", *(n.campaign_id for n in matches)]
    )
    return render_template(
        "log/bulk_confirm.html",
        args=args,
        filters=filters,
        count=sum(by_status.values()),
        by_status=by_status,
        statuses=log_bulk.retry_statuses(filters),
        matches=matches,
        names=names,
        explain=explain,
    )


@bp.post("/notifications/bulk-retry")
@login_required
def bulk_retry_start() -> Response:
    require_role("editor")
    args = {name: request.form[name] for name in FILTER_FIELDS if request.form.get(name)}
    filters, errors = _parse_filters(args)
    if errors:
        abort(400)
    job, created = manual_retry.start_bulk_retry(
        get_session(), get_database(), render_settings(), g.workspace.id, filters
    )
    if created:
        with get_database().transaction() as session:
            activity_log.record_bulk_retry(session, job)
    else:
        flash("This retry was already started; here is its progress.")
    return redirect(url_for("log.bulk_job", job_id=job.id))


#: How each status reads on a bulk job's page, in the order it is listed.
OUTCOME_WORDS = (
    ("delivered", "delivered"),
    ("pending", "waiting to be sent"),
    ("sending", "being sent"),
    ("retrying", "failed again and will be retried"),
    ("failed", "failed"),
    ("held", "held (sending is off or the webhook is disabled)"),
    ("cancelled", "cancelled"),
)


def describe_outcomes(outcomes: dict[str, int]) -> tuple[str, bool]:
    """How the notifications a bulk retry moved ended, in words; and whether all have."""
    if not outcomes:
        return "None retried yet.", False
    parts = [f"{outcomes[s]} {words}" for s, words in OUTCOME_WORDS if outcomes.get(s)]
    settled = not (outcomes.get("pending") or outcomes.get("sending"))
    return "Since the retry: " + ", ".join(parts) + ".", settled


def _job_view(session: Any, job: Any) -> dict[str, Any]:
    outcomes = log_bulk.job_outcomes(session, job.id)
    summary, settled = describe_outcomes(outcomes)
    return {**bulk_job_to_json(job, outcomes), "summary": summary, "settled": settled}


@bp.get("/notifications/jobs/<job_id>")
@login_required
def bulk_job(job_id: str) -> str:
    session = get_session()
    job = log_bulk.get_bulk_job(session, g.workspace.id, job_id)
    if job is None:
        abort(404)
    view = _job_view(session, job)
    return render_template(
        "log/bulk_job.html",
        job=job,
        args=job.filters,
        summary=view["summary"],
        settled=view["settled"],
    )


@bp.get("/notifications/jobs/<job_id>.json")
@login_required
def bulk_job_json(job_id: str) -> dict[str, Any]:
    session = get_session()
    job = log_bulk.get_bulk_job(session, g.workspace.id, job_id)
    if job is None:
        abort(404)
    return _job_view(session, job)
