"""The campaign editor's JSON endpoints (session login + CSRF header, not API keys).

Each one is the twin of an API call: save = ``PATCH /campaigns/<id>``, preview =
``POST /render``, test-send = ``POST /campaigns/<id>/test``, rotate-secret and
save-as-template likewise. They load with the API's schemas and call the same engine
functions; errors come back located (``webhook.body.fields[2].source``) for the page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import g, request
from marshmallow import ValidationError

from engine.campaigns import service as campaign_service
from engine.delivery import attempts as delivery
from engine.rules import triggers
from engine.rules.sql import audience_sql_supported
from engine.store import builder_lookups, contacts
from engine.store.claims import CampaignDelivery
from engine.store.models import Campaign
from engine.store.types import utcnow
from web import render_settings
from web.activity_log import record_campaign, record_template
from web.api import campaigns as api_campaigns
from web.api import load
from web.auth import login_required, require_role, role_at_least
from web.builder import bp
from web.builder.campaigns import load_campaign, waiting_to_retry
from web.builder.editing import (
    EditorError,
    channel_warnings,
    flatten_messages,
    json_payload,
    known_attribute_paths,
    preview_request,
    validation_failed,
)
from web.builder.field_words import field_labels
from web.database import get_session
from web.schemas.campaign import (
    CampaignActionSchema,
    CampaignSchema,
    TestSendSchema,
    campaign_to_json,
)

CONTACT_SEARCH_LIMIT = 10
PREVIEW_MESSAGE_ID = "msg_preview"  # the notification id ``preview_request`` renders with
SIGNATURE_FOR_EDITORS = "v1,… (computed at send time; editors see it in the preview)"


def refused(exc: campaign_service.CampaignError) -> EditorError:
    """A lifecycle rule's refusal, its problems located like validation errors."""
    details: dict[str, list[str]] = {}
    for problem in exc.problems:
        details.setdefault(problem.get("path") or "_schema", []).append(problem["message"])
    return EditorError(exc.status, f"Not saved: {exc.message}.", details)


@bp.errorhandler(EditorError)
def _editor_error(exc: EditorError) -> Any:
    return exc.response()


@bp.post("/campaigns/<campaign_id>/save")
@login_required
def campaign_save(campaign_id: str) -> dict[str, Any]:
    require_role("editor")
    db = get_session()
    campaign = load_campaign(campaign_id)
    payload = json_payload()
    schema = CampaignSchema.for_update(campaign, render_settings())
    try:
        changes = schema.load(payload)
        changes.pop("template_id", None)
        campaign_service.update_campaign(db, campaign, changes, settings=render_settings())
    except ValidationError as exc:
        db.rollback()
        raise validation_failed(exc) from None
    except campaign_service.CampaignError as exc:
        db.rollback()
        raise refused(exc) from None
    record_campaign(db, "campaign.saved", campaign)
    db.commit()
    saved = campaign_to_json(campaign)
    return {
        **saved,
        "warnings": channel_warnings(campaign.channel, known=known_attribute_paths()),
        "waiting_to_retry": waiting_to_retry(db, campaign),
    }


@bp.post("/campaigns/<campaign_id>/check")
@login_required
def campaign_check(campaign_id: str) -> dict[str, Any]:
    """The editor's problems without saving: ``{"details", "labels"}``, empty when fine.

    With ``?activate=1`` also what activation would refuse (the completeness check) as
    if the edits were saved. Nothing is stored: the session is rolled back.
    """
    require_role("editor")
    db = get_session()
    campaign = load_campaign(campaign_id)
    details: dict[str, list[str]] = {}
    try:
        changes = CampaignSchema.for_update(campaign, render_settings()).load(json_payload())
        changes.pop("template_id", None)
        campaign_service.update_campaign(db, campaign, changes, settings=render_settings())
    except ValidationError as exc:
        details = validation_failed(exc).details
    except campaign_service.CampaignError as exc:
        details = refused(exc).details
    if not details and request.args.get("activate"):
        problems = campaign_service.completeness_problems(campaign, render_settings(), utcnow())
        for problem in problems:
            details.setdefault(problem.get("path") or "_schema", []).append(problem["message"])
    db.rollback()
    return {"details": details, "labels": field_labels(details)}


@bp.post("/campaigns/<campaign_id>/preview")
@login_required
def campaign_preview(campaign_id: str) -> dict[str, Any]:
    """Viewers may preview too: nothing is sent or stored."""
    campaign = load_campaign(campaign_id)
    payload = json_payload()
    preview = preview_request(
        payload.get("webhook"),
        campaign.channel_secrets,
        payload,
        campaign={"id": campaign.id, "name": campaign.name},
    )
    preview["send_time_headers"] = send_time_headers(campaign, preview["request"]["body"])
    return preview


def send_time_headers(campaign: Campaign, body: str) -> list[dict[str, str]]:
    """The Standard Webhooks headers the sender adds to the previewed request, as of now.

    Signed over the previewed body exactly as an attempt is: the current secret, and the
    previous one during the 24 h after a rotation. The secrets themselves are never shown.
    A viewer gets no signature: signing bodies they type would let them forge webhooks
    (editors can already have any body signed by sending a test).
    """
    headers = delivery.send_time_headers(
        PREVIEW_MESSAGE_ID,
        body.encode("utf-8"),
        CampaignDelivery.from_row(campaign),
        datetime.now(UTC),
    )
    if not role_at_least("editor"):
        headers["webhook-signature"] = SIGNATURE_FOR_EDITORS
    return [{"name": name, "value": value} for name, value in headers.items()]


@bp.post("/campaigns/<campaign_id>/test-send")
@login_required
def campaign_test_send(campaign_id: str) -> dict[str, Any]:
    """Send the saved webhook once, now, to a test contact: ``POST /campaigns/<id>/test``.

    Same body, answer and error envelope as the API call, for the logged-in user's
    workspace.
    """
    require_role("editor")
    campaign = load_campaign(campaign_id)
    return api_campaigns.run_test_send(g.workspace.id, campaign, load(TestSendSchema()))


@bp.post("/campaigns/<campaign_id>/schedule-preview")
@login_required
def campaign_schedule_preview(campaign_id: str) -> dict[str, Any]:
    """The schedule in words and its next fire time, as the marketer types it."""
    load_campaign(campaign_id)
    trigger = json_payload().get("trigger")
    problems = triggers.validate_trigger(trigger)
    if problems:
        details: dict[str, list[str]] = {}
        for problem in problems:
            details.setdefault(problem.path, []).append(problem.message)
        raise EditorError(422, "The schedule is not valid yet.", details)
    upcoming = triggers.next_fire_time(trigger, after=datetime.now(UTC))
    zone = ZoneInfo(trigger.get("timezone") or "UTC")
    return {
        "description": triggers.describe_schedule(trigger),
        "next_fire_time": upcoming,
        "next_fire_local": upcoming.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")
        if upcoming
        else None,
    }


@bp.post("/campaigns/<campaign_id>/audience-estimate")
@login_required
def campaign_audience_estimate(campaign_id: str) -> dict[str, Any]:
    """How many contacts a schedule's audience would address if it fired now."""
    load_campaign(campaign_id)
    conditions = json_payload().get("conditions")
    problems = audience_sql_supported(conditions)
    if problems:
        details: dict[str, list[str]] = {}
        for problem in problems:
            details.setdefault(problem.path, []).append(problem.message)
        raise EditorError(422, "Finish the audience conditions to see its size.", details)
    count = builder_lookups.count_matching_contacts(
        get_session(), g.workspace.id, conditions, now=datetime.now(UTC)
    )
    noun = "contact matches" if count == 1 else "contacts match"
    return {"count": count, "text": f"{count} {noun} these conditions right now."}


@bp.get("/campaigns/<campaign_id>/contacts")
@login_required
def campaign_contact_search(campaign_id: str) -> dict[str, Any]:
    """Contacts whose external id starts with ``q``, for the Test tab."""
    load_campaign(campaign_id)
    prefix = request.args.get("q", "").strip()[:255]
    found = contacts.list_contacts(
        get_session(), g.workspace.id, limit=CONTACT_SEARCH_LIMIT, external_id_prefix=prefix or None
    )
    return {
        "data": [
            {
                "external_id": c.external_id,
                "label": c.external_id
                + (
                    f" · {c.attributes['email']}"
                    if isinstance(c.attributes.get("email"), str)
                    else ""
                ),
            }
            for c in found
        ]
    }


@bp.post("/campaigns/<campaign_id>/rotate-secret")
@login_required
def campaign_rotate_secret(campaign_id: str) -> dict[str, Any]:
    require_role("editor")
    db = get_session()
    campaign = load_campaign(campaign_id)
    secret = campaign_service.rotate_secret(db, campaign)
    db.commit()
    return {"secret": secret}


@bp.post("/campaigns/<campaign_id>/save-as-template")
@login_required
def campaign_save_as_template(campaign_id: str) -> dict[str, Any]:
    require_role("editor")
    db = get_session()
    campaign = load_campaign(campaign_id)
    try:
        data = CampaignActionSchema().load(json_payload())
    except ValidationError as exc:
        raise EditorError(
            422, "The template needs a name.", flatten_messages(exc.normalized_messages())
        ) from None
    template = campaign_service.save_as_template(
        db, campaign, name=data.get("name"), description=data.get("description", "")
    )
    record_template(db, "template.created", template, f"from campaign {campaign.name!r}")
    db.commit()
    return {"id": template.id, "name": template.name}
