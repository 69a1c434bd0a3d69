"""Events as ``POST /events`` reads them (SPEC §1, §7)."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from web.schemas.contact import MAX_ATTRIBUTES_BYTES, check_json_object_size

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
    occurred_at = fields.AwareDateTime(allow_none=True)

    @validates("name")
    def _name(self, value: str, **_: Any) -> None:
        if not EVENT_NAME.fullmatch(value):
            raise ValidationError(
                "must be dot-separated segments of letters, digits, _ - or : "
                "(e.g. lead.status.update)"
            )
