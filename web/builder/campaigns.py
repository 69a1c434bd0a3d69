"""Campaign pages: the list, "new campaign", the editor, and the lifecycle buttons.

Pages are server-rendered; the editor's script posts JSON to ``web.builder.campaign_json``.
Every change calls ``require_role("editor")``; another workspace's campaign is a 404.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from engine import crypto
from engine.campaigns import service as campaign_service
from engine.rules import triggers
from engine.store import builder_lookups, contacts, log_bulk
from engine.store import campaigns as campaign_store
from engine.store import templates as template_store
from engine.store.log import LogFilter
from engine.store.models import Campaign
from web import render_settings
from web.activity_log import record_campaign
from web.auth import login_required, require_role
from web.builder import bp
from web.builder.editing import (
    SAMPLE_CONTACT,
    SAMPLE_EVENT_PROPERTIES,
    flatten_messages,
    suggestions,
    timezone_names,
)
from web.builder.field_words import field_label
from web.builder.schedule_picker import WEEKDAYS, picker_state, upcoming_runs
from web.database import get_session
from web.paging import keyset_page
from web.schemas.campaign import CampaignSchema, campaign_to_json

LIFECYCLE = {
    "draft": (("activate", "Activate"), ("archive", "Archive"), ("duplicate", "Duplicate")),
    "active": (("pause", "Pause"), ("archive", "Archive"), ("duplicate", "Duplicate")),
    "paused": (("activate", "Activate"), ("archive", "Archive"), ("duplicate", "Duplicate")),
    "archived": (("duplicate", "Duplicate"),),
}
REVEAL_KEY = "reveal_signing_secret"
PAGE_SIZE = 50


def load_campaign(campaign_id: str) -> Campaign:
    """The campaign if it belongs to the current workspace, else a 404."""
    campaign = campaign_store.get_campaign(get_session(), g.workspace.id, campaign_id)
    if campaign is None:
        abort(404)
    return campaign


def remember_secret_to_reveal(campaign_id: str, secret: str | None) -> None:
    """The signing secret is shown once, on the editor page right after creation. Until
    then the cookie holds it encrypted (a signed cookie alone is readable)."""
    if secret:
        session[REVEAL_KEY] = {"campaign_id": campaign_id, "secret": crypto.encrypt(secret)}


def _pop_secret_to_reveal(campaign_id: str) -> str | None:
    pending = session.get(REVEAL_KEY)
    if pending and pending.get("campaign_id") == campaign_id:
        session.pop(REVEAL_KEY)
        try:
            return crypto.decrypt(pending.get("secret") or "")
        except ValueError:
            return None
    return None


@bp.get("/campaigns")
@login_required
def campaigns() -> str:
    """Newest first, a page at a time (``?before=`` / ``?after=``, see web.paging)."""
    db = get_session()
    page = keyset_page(
        partial(campaign_store.list_campaigns_page, db, g.workspace.id),
        size=PAGE_SIZE,
        before=request.args.get("before") or None,
        after=request.args.get("after") or None,
    )
    rows = page.rows
    now = datetime.now(UTC)
    since = now - timedelta(hours=24)
    counts = builder_lookups.delivery_counts_since(db, g.workspace.id, since)
    items = []
    for campaign in rows:
        trigger = campaign.trigger or {}
        if trigger.get("type") == "schedule":
            trigger_text = triggers.describe_schedule(trigger)
        else:
            trigger_text = ", ".join(trigger.get("events") or []) or "no events chosen"
        upcoming = []
        if trigger.get("type") == "schedule" and campaign.status == "active":
            upcoming = upcoming_runs(trigger, now, 1)
        items.append(
            {
                "row": campaign,
                "trigger_text": trigger_text,
                "next_run": upcoming[0]["local"] if upcoming else None,
                "counts": counts.get(campaign.id, {"delivered": 0, "failed": 0}),
                "actions": LIFECYCLE.get(campaign.status, ()),
            }
        )
    return render_template("builder/campaigns.html", campaigns=items, page=page)


@bp.get("/campaigns/new")
@login_required
def campaign_new() -> str:
    chosen = request.args.get("template", "")
    return render_template(
        "builder/campaign_new.html",
        templates=template_store.list_templates(get_session(), g.workspace.id),
        chosen_template=chosen,
        errors={},
        form={"name": "", "trigger_type": "event"},
    )


def _new_campaign_form_again(
    name: str, trigger_type: str, template_id: str | None, errors: dict[str, str]
) -> tuple[str, int]:
    """The new-campaign form with what was typed and why it was refused (422)."""
    return render_template(
        "builder/campaign_new.html",
        templates=template_store.list_templates(get_session(), g.workspace.id),
        chosen_template=template_id or "",
        errors=errors,
        form={"name": name, "trigger_type": trigger_type},
    ), 422


@bp.post("/campaigns/new")
@login_required
def campaign_create() -> Any:
    require_role("editor")
    db = get_session()
    form = request.form
    name = form.get("name", "").strip()
    template_id = form.get("template_id", "") or None
    trigger_type = form.get("trigger_type", "event")
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Give the campaign a name."
    elif len(name) > 200:
        errors["name"] = "Keep the name under 200 characters."
    if trigger_type not in ("event", "schedule"):
        errors["trigger_type"] = "Choose an event or a schedule."
    if template_id and template_store.get_template(db, g.workspace.id, template_id) is None:
        errors["template_id"] = "That template no longer exists."
    if errors:
        return _new_campaign_form_again(name, trigger_type, template_id, errors)
    trigger = {"type": "event", "events": []}
    if trigger_type == "schedule":
        trigger = {"type": "schedule", "cron": "0 9 * * MON", "timezone": "UTC"}
    data = {"name": name, "trigger": trigger}
    if template_id:
        data["template_id"] = template_id
    try:
        loaded = CampaignSchema(settings=render_settings()).load(data)
    except ValidationError as exc:
        messages = flatten_messages(exc.normalized_messages())
        errors = {"name": " ".join(m for texts in messages.values() for m in texts)}
        return _new_campaign_form_again(name, trigger_type, template_id, errors)
    campaign, secret = campaign_service.create_campaign(db, g.workspace.id, loaded)
    record_campaign(db, "campaign.created", campaign)
    db.commit()
    remember_secret_to_reveal(campaign.id, secret)
    flash("Campaign created as a draft. Set it up, then activate it.")
    return redirect(url_for("builder.campaign_edit", campaign_id=campaign.id))


def waiting_to_retry(db: Any, campaign: Campaign) -> int:
    """How many of the campaign's notifications wait for a retry with their old request."""
    filters = LogFilter(campaign_id=campaign.id, status="retrying")
    return log_bulk.count_retryable(db, campaign.workspace_id, filters)


@bp.get("/campaigns/<campaign_id>")
@login_required
def campaign_edit(campaign_id: str) -> str:
    campaign = load_campaign(campaign_id)
    data = campaign_to_json(campaign)
    trigger = data.get("trigger") or {}
    schedule_text, schedule_at_local = "", ""
    if trigger.get("type") == "schedule":
        schedule_text = triggers.describe_schedule(trigger)
        schedule_at_local = str(trigger.get("at") or "")[:16]
    cap = data.get("frequency_cap") or {}
    per_seconds = int(cap.get("per_seconds") or 86400)
    cap_unit = next(u for u in (86400, 3600, 60, 1) if per_seconds % u == 0 or u == 1)
    cap_unit = 60 if cap_unit == 1 else cap_unit
    test_ids = (data.get("audience") or {}).get("test_contacts") or []
    db = get_session()
    test_contacts = [
        c for c in (contacts.get_contact(db, g.workspace.id, i) for i in test_ids) if c is not None
    ]
    secrets_stored = campaign.channel_secrets or {}
    return render_template(
        "builder/campaign_edit.html",
        campaign=data,
        lifecycle_actions=LIFECYCLE.get(campaign.status, ()),
        secrets={
            "password": bool(secrets_stored.get("password")),
            "token": bool(secrets_stored.get("token")),
        },
        reveal_secret=_pop_secret_to_reveal(campaign.id),
        schedule_text=schedule_text,
        schedule_at_local=schedule_at_local,
        cap_unit=cap_unit,
        cap_per_value=max(1, per_seconds // cap_unit),
        test_contacts=test_contacts,
        sample_contact=SAMPLE_CONTACT,
        sample_event_name=(trigger.get("events") or ["lead.created"])[0].replace("*", "example"),
        sample_event_properties=SAMPLE_EVENT_PROPERTIES,
        timezones=timezone_names(),
        editor_state={"id": campaign.id, "status": campaign.status},
        waiting_to_retry=waiting_to_retry(db, campaign),
        chosen_test_contact=request.args.get("test_contact", ""),
        picker=picker_state(trigger if trigger.get("type") == "schedule" else None),
        weekdays=WEEKDAYS,
        **suggestions(g.workspace.id),
    )


def _refusal_in_words(action: str, exc: campaign_service.CampaignError) -> str:
    """The refusal with each problem named by its tab and field, not its API path."""
    if not exc.problems:
        return f"Could not {action} the campaign: {exc}"
    items = [
        f"{field_label(p.get('path') or '') or 'Campaign'}: {p['message']}" for p in exc.problems
    ]
    things = "thing" if len(items) == 1 else "things"
    return f"Could not {action} the campaign — {len(items)} {things} to finish: " + "; ".join(items)


@bp.post("/campaigns/<campaign_id>/<any(activate, pause, archive, duplicate):action>")
@login_required
def campaign_lifecycle(campaign_id: str, action: str) -> Response:
    require_role("editor")
    db = get_session()
    campaign = load_campaign(campaign_id)
    back = request.form.get("next") == "list"
    try:
        if action == "duplicate":
            copy, secret = campaign_service.duplicate_campaign(db, campaign)
            record_campaign(db, "campaign.created", copy, f"as a copy of {campaign.name!r}")
            db.commit()
            remember_secret_to_reveal(copy.id, secret)
            flash(f"Duplicated as “{copy.name}” (a draft).")
            return redirect(url_for("builder.campaign_edit", campaign_id=copy.id))
        if action == "activate":
            campaign_service.activate_campaign(db, campaign, settings=render_settings())
        elif action == "pause":
            campaign_service.pause_campaign(db, campaign)
        else:
            campaign_service.archive_campaign(db, campaign)
    except campaign_service.CampaignError as exc:
        db.rollback()
        flash(_refusal_in_words(action, exc), "error")
    else:
        kinds = {"activate": "activated", "pause": "paused", "archive": "archived"}
        record_campaign(db, f"campaign.{kinds[action]}", campaign)
        db.commit()
        flash(
            {
                "activate": "The campaign is active.",
                "pause": "The campaign is paused.",
                "archive": "The campaign is archived.",
            }[action]
        )
    if back:
        return redirect(url_for("builder.campaigns"))
    return redirect(url_for("builder.campaign_edit", campaign_id=campaign.id))
