"""Template pages: the library, the template editor (its JSON save and preview), delete.

"Save as template" lives on the campaign editor; "Use template" on the new-campaign page.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from engine.campaigns import service as campaign_service
from engine.store import templates as template_store
from engine.store.models import Template
from web import render_settings
from web.activity_log import record_template
from web.auth import login_required, require_role
from web.builder import bp
from web.builder.editing import (
    SAMPLE_CONTACT,
    SAMPLE_EVENT_PROPERTIES,
    channel_warnings,
    json_payload,
    preview_request,
    suggestions,
    validation_failed,
)
from web.database import get_session
from web.schemas.template import TemplateSchema, template_to_json


def load_template(template_id: str) -> Template:
    template = template_store.get_template(get_session(), g.workspace.id, template_id)
    if template is None:
        abort(404)
    return template


@bp.get("/templates")
@login_required
def templates() -> str:
    rows = template_store.list_templates(get_session(), g.workspace.id)
    return render_template("builder/templates.html", templates=rows)


@bp.get("/templates/<template_id>")
@login_required
def template_edit(template_id: str) -> str:
    template = load_template(template_id)
    stored = template.channel_secrets or {}
    return render_template(
        "builder/template_edit.html",
        template=template_to_json(template),
        secrets={"password": bool(stored.get("password")), "token": bool(stored.get("token"))},
        sample_contact=SAMPLE_CONTACT,
        sample_event_properties=SAMPLE_EVENT_PROPERTIES,
        variable_paths=suggestions(g.workspace.id)["variable_paths"],
    )


@bp.post("/templates/<template_id>/save")
@login_required
def template_save(template_id: str) -> dict[str, Any]:
    require_role("editor")
    db = get_session()
    template = load_template(template_id)
    schema = TemplateSchema.for_update(template, render_settings())
    try:
        changes = schema.load(json_payload())
    except ValidationError as exc:
        raise validation_failed(exc) from None
    campaign_service.update_template(db, template, changes)
    record_template(db, "template.saved", template)
    db.commit()
    return {
        **template_to_json(template),
        "warnings": channel_warnings(template.channel),
    }


@bp.post("/templates/<template_id>/preview")
@login_required
def template_preview(template_id: str) -> dict[str, Any]:
    template = load_template(template_id)
    payload = json_payload()
    return preview_request(
        payload.get("webhook"),
        template.channel_secrets,
        payload,
        campaign={"id": "cmp_preview", "name": template.name},
    )


@bp.post("/templates/<template_id>/delete")
@login_required
def template_delete(template_id: str) -> Response:
    require_role("editor")
    db = get_session()
    template = load_template(template_id)
    name = template.name
    template_store.delete_template(db, template)
    record_template(db, "template.deleted", template)
    db.commit()
    flash(f"The template “{name}” was deleted.")
    return redirect(url_for("builder.templates"))
