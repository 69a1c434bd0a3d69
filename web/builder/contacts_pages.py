"""``/contacts``: search and page through contacts, one contact's attributes, events and
notifications, create and edit attributes (editors), and "use as test contact"."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from engine.campaigns import service as campaign_service
from engine.store import campaigns as campaign_store
from engine.store import contacts
from engine.store import log as log_store
from engine.store.log import LogFilter
from web import render_settings
from web.auth import login_required, require_role
from web.builder import bp
from web.database import get_session
from web.paging import keyset_page
from web.schemas.contact import EXTERNAL_ID, ContactWriteSchema
from web.schemas.errors import flatten_messages

PAGE_SIZE = 50
RECENT = 20
#: Campaigns a contact can be made a test contact of.
EDITABLE_STATUSES = ("draft", "active", "paused")


@bp.get("/contacts")
@login_required
def contacts_list() -> str:
    query = request.args.get("q", "").strip()[:255]
    page = keyset_page(
        partial(contacts.search_contacts, get_session(), g.workspace.id, query),
        size=PAGE_SIZE,
        before=request.args.get("before") or None,
        after=request.args.get("after") or None,
    )
    return render_template("builder/contacts.html", page=page, q=query)


def _parse_attributes(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The attributes typed as a JSON object, or why they cannot be used."""
    try:
        value = json.loads(text or "{}")
    except ValueError as exc:
        return None, f"This is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})."
    if not isinstance(value, dict):
        return None, 'Attributes are a JSON object, like {"first_name": "Ada", "plan": "pro"}.'
    try:
        loaded = ContactWriteSchema().load({"attributes": value})
    except ValidationError as exc:
        messages = flatten_messages(exc.normalized_messages())
        return None, " ".join(m for texts in messages.values() for m in texts)
    return loaded["attributes"], None


@bp.get("/contacts/new")
@login_required
def contact_new() -> str:
    require_role("editor")
    return render_template("builder/contact_new.html", form={}, errors={})


@bp.post("/contacts/new")
@login_required
def contact_create() -> Any:
    require_role("editor")
    db = get_session()
    external_id = request.form.get("external_id", "").strip()
    text = request.form.get("attributes", "")
    errors: dict[str, str] = {}
    try:
        EXTERNAL_ID(external_id)
    except ValidationError:
        errors["external_id"] = "Give the contact an id (1 to 255 characters)."
    attributes, problem = _parse_attributes(text)
    if problem:
        errors["attributes"] = problem
    if not errors and contacts.get_contact(db, g.workspace.id, external_id) is not None:
        errors["external_id"] = "A contact with this id exists already."
    if errors:
        form = {"external_id": external_id, "attributes": text}
        return render_template("builder/contact_new.html", form=form, errors=errors), 422
    contacts.upsert_contact(db, g.workspace.id, external_id, attributes, replace=True)
    db.commit()
    flash("Contact created.")
    return redirect(url_for("builder.contact_detail", external_id=external_id))


def _load_contact(external_id: str) -> Any:
    contact = contacts.get_contact(get_session(), g.workspace.id, external_id)
    if contact is None:
        abort(404)
    return contact


def _detail(contact: Any, *, attributes_text: str | None = None, error: str | None = None):
    db = get_session()
    notifications = log_store.list_notifications(
        db, g.workspace.id, LogFilter(contact=contact.external_id), limit=RECENT
    )
    campaigns = campaign_store.list_campaigns(db, g.workspace.id)
    return render_template(
        "builder/contact_detail.html",
        contact=contact,
        attributes_text=attributes_text
        if attributes_text is not None
        else json.dumps(contact.attributes, indent=2, ensure_ascii=False, sort_keys=True),
        attributes_error=error,
        events=contacts.recent_events(db, contact, RECENT),
        notifications=notifications,
        names={c.id: c.name for c in campaigns},
        test_campaigns=[c for c in campaigns if c.status in EDITABLE_STATUSES],
    )


@bp.get("/contacts/<path:external_id>")
@login_required
def contact_detail(external_id: str) -> str:
    return _detail(_load_contact(external_id))


@bp.post("/contacts/<path:external_id>/attributes")
@login_required
def contact_save(external_id: str) -> Any:
    require_role("editor")
    contact = _load_contact(external_id)
    text = request.form.get("attributes", "")
    attributes, problem = _parse_attributes(text)
    if problem:
        return _detail(contact, attributes_text=text, error=problem), 422
    contacts.upsert_contact(get_session(), g.workspace.id, external_id, attributes, replace=True)
    get_session().commit()
    flash("Attributes saved.")
    return redirect(url_for("builder.contact_detail", external_id=external_id))


@bp.post("/contacts/<path:external_id>/use-as-test")
@login_required
def contact_use_as_test(external_id: str) -> Response:
    """Add the contact to a campaign's test contacts and open that campaign's Test tab."""
    require_role("editor")
    contact = _load_contact(external_id)
    db = get_session()
    campaign = campaign_store.get_campaign(db, g.workspace.id, request.form.get("campaign_id", ""))
    if campaign is None or campaign.status not in EDITABLE_STATUSES:
        flash("Choose a campaign that is not archived.", "error")
        return redirect(url_for("builder.contact_detail", external_id=external_id))
    audience = dict(campaign.audience or {})
    chosen = list(audience.get("test_contacts") or [])
    if contact.external_id not in chosen:
        audience["test_contacts"] = [*chosen, contact.external_id]
        try:
            campaign_service.update_campaign(
                db, campaign, {"audience": audience}, settings=render_settings()
            )
        except campaign_service.CampaignError as exc:
            db.rollback()
            flash(f"Could not add the test contact: {exc}", "error")
            return redirect(url_for("builder.contact_detail", external_id=external_id))
        db.commit()
    flash(f"“{contact.external_id}” is a test contact of “{campaign.name}”.")
    return redirect(
        url_for("builder.campaign_edit", campaign_id=campaign.id, test_contact=external_id)
        + "#test"
    )
