"""``/contacts``: the people campaigns address, keyed by the caller's ``external_id``."""

from __future__ import annotations

from typing import Any

from flask import request
from marshmallow import ValidationError

from engine.store import contacts
from web.api import bp, load, page, page_size, workspace_id
from web.api.errors import ApiError, not_found
from web.api.keyset import before_id
from web.database import get_session
from web.schemas.contact import EXTERNAL_ID, ContactWriteSchema, contact_to_json


def _check_external_id(external_id: str) -> None:
    try:
        EXTERNAL_ID(external_id)
    except ValidationError:
        raise ApiError(
            422, "external_id must be 1 to 255 characters", details={"external_id": external_id}
        ) from None


@bp.get("/contacts")
def list_contacts() -> dict[str, Any]:
    size = page_size()
    rows = contacts.list_contacts(
        get_session(),
        workspace_id(),
        limit=size + 1,
        before_id=before_id(),
        external_id_prefix=request.args.get("external_id_prefix") or None,
    )
    return page(rows, size, contact_to_json, lambda c: {"before": c.id})


@bp.get("/contacts/<path:external_id>")
def get_contact(external_id: str) -> dict[str, Any]:
    contact = contacts.get_contact(get_session(), workspace_id(), external_id)
    if contact is None:
        raise not_found("contact", external_id)
    return contact_to_json(contact)


@bp.put("/contacts/<path:external_id>")
def put_contact(external_id: str) -> tuple[dict[str, Any], int]:
    _check_external_id(external_id)
    data = load(ContactWriteSchema())
    session = get_session()
    contact, created = contacts.upsert_contact(
        session, workspace_id(), external_id, data["attributes"], replace=True
    )
    session.commit()
    return contact_to_json(contact), 201 if created else 200


@bp.delete("/contacts/<path:external_id>")
def delete_contact(external_id: str) -> tuple[str, int]:
    session = get_session()
    if not contacts.delete_contact(session, workspace_id(), external_id):
        raise not_found("contact", external_id)
    session.commit()
    return "", 204
