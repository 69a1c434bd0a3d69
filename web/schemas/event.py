"""Events as ``POST /events`` reads them (SPEC §1, §7)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from engine.rules.patterns import MAX_EVENT_NAME_SEGMENTS
from web.schemas.contact import MAX_ATTRIBUTES_BYTES, check_json_object_size
from web.schemas.dates import StorableDateTime, storable_datetime_problem

EVENT_NAME = re.compile(r"[A-Za-z0-9_\-:]+(\.[A-Za-z0-9_\-:]+)*")


class EventContactSchema(Schema):
    external_id = fields.String(required=True, validate=validate.Length(1, 255))
    attributes = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 200)), load_default=None, allow_none=True
    )

    @validates("attributes")
    def _size(self, value: dict[str, Any] | None, **_: Any) -> None:
        if value:
            check_json_object_size(value, MAX_ATTRIBUTES_BYTES, "attributes")


class EventSchema(Schema):
    """One event: ``name``, ``contact``, optional ``id`` (idempotency key), ``properties``,
    ``occurred_at`` (ISO 8601 with a zone; default: when it was received)."""

    name = fields.String(required=True, validate=validate.Length(1, 255))
    id = fields.String(validate=validate.Length(1, 255), allow_none=True)
    contact = fields.Nested(EventContactSchema, required=True)
    properties = fields.Dict(keys=fields.String(), load_default=dict)
    occurred_at = StorableDateTime(allow_none=True)

    @validates("name")
    def _name(self, value: str, **_: Any) -> None:
        if not EVENT_NAME.fullmatch(value):
            raise ValidationError(
                "must be dot-separated segments of letters, digits, _ - or : "
                "(e.g. lead.status.update)"
            )
        if value.count(".") >= MAX_EVENT_NAME_SEGMENTS:
            raise ValidationError(f"must have at most {MAX_EVENT_NAME_SEGMENTS} segments")


_EVENT_KEYS = frozenset({"name", "id", "contact", "properties", "occurred_at"})
_CONTACT_KEYS = frozenset({"external_id", "attributes"})
_SCHEMA = EventSchema()


def _string(value: Any, longest: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= longest


def _plain_event(item: dict[str, Any], size: int) -> dict[str, Any] | None:
    """The loaded event when it is plainly valid, else None (then the schema decides).

    Batches of 1,000 events are mostly well-formed; checking those by hand is several
    times cheaper than a full schema load. Anything unusual takes the schema's path, so
    errors always come from ``EventSchema``.
    """
    if not _EVENT_KEYS.issuperset(item):
        return None
    name, contact = item.get("name"), item.get("contact")
    if not _string(name, 255) or not EVENT_NAME.fullmatch(name):
        return None
    if name.count(".") >= MAX_EVENT_NAME_SEGMENTS:
        return None
    client_id = item.get("id")
    if client_id is not None and not _string(client_id, 255):
        return None
    if not isinstance(contact, dict) or not _CONTACT_KEYS.issuperset(contact):
        return None
    if not _string(contact.get("external_id"), 255):
        return None
    attributes = contact.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, dict) or size > MAX_ATTRIBUTES_BYTES:
            return None
        if not all(_string(key, 200) for key in attributes):
            return None
    properties = item.get("properties", {})
    if not isinstance(properties, dict) or not all(isinstance(k, str) for k in properties):
        return None
    occurred_at = item.get("occurred_at")
    if occurred_at is not None:
        try:
            occurred_at = datetime.fromisoformat(occurred_at)
        except (TypeError, ValueError):
            return None
        if occurred_at.tzinfo is None or storable_datetime_problem(occurred_at):
            return None
    return {
        "name": name,
        "id": client_id,
        "contact": {"external_id": contact["external_id"], "attributes": attributes},
        "properties": properties,
        "occurred_at": occurred_at,
    }


def load_event(item: Any, size: int) -> dict[str, Any]:
    """One event as ``EventSchema`` loads it; raises its ``ValidationError``.

    ``size`` is the event's JSON size in bytes (the caller measured it for the limit).
    """
    if not isinstance(item, dict):
        raise ValidationError({"_schema": ["must be an object"]})
    return _plain_event(item, size) or _SCHEMA.load(item)
