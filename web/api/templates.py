"""``/templates``: saved webhook channel recipes (CRUD). Campaigns copy them on create."""

from __future__ import annotations

from typing import Any

from engine.campaigns import service
from engine.store import templates as template_store
from engine.store.models import Template
from web import render_settings
from web.activity_log import record_template
from web.api import bp, load, page, page_size, workspace_id
from web.api.errors import not_found
from web.api.keyset import before_id
from web.database import get_session
from web.schemas.template import TemplateSchema, template_to_json


def _template(template_id: str) -> Template:
    template = template_store.get_template(get_session(), workspace_id(), template_id)
    if template is None:
        raise not_found("template", template_id)
    return template


@bp.post("/templates")
def create_template() -> tuple[dict[str, Any], int]:
    data = load(TemplateSchema(settings=render_settings()))
    template = service.create_template(get_session(), workspace_id(), data)
    record_template(get_session(), "template.created", template)
    get_session().commit()
    return template_to_json(template), 201


@bp.get("/templates")
def list_templates() -> dict[str, Any]:
    size = page_size()
    rows = template_store.list_templates_page(
        get_session(), workspace_id(), limit=size + 1, before_id=before_id()
    )
    return page(rows, size, template_to_json, lambda t: {"before": t.id})


@bp.get("/templates/<template_id>")
def get_template(template_id: str) -> dict[str, Any]:
    return template_to_json(_template(template_id))


@bp.patch("/templates/<template_id>")
def update_template(template_id: str) -> dict[str, Any]:
    template = _template(template_id)
    data = load(TemplateSchema.for_update(template, render_settings()))
    service.update_template(get_session(), template, data)
    record_template(get_session(), "template.saved", template)
    get_session().commit()
    return template_to_json(template)


@bp.delete("/templates/<template_id>")
def delete_template(template_id: str) -> tuple[str, int]:
    template = _template(template_id)
    template_store.delete_template(get_session(), template)
    record_template(get_session(), "template.deleted", template)
    get_session().commit()
    return "", 204
