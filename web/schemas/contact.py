"""Contacts as the API reads and writes them."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

MAX_ATTRIBUTES_BYTES = 64 * 1024


def check_json_object_size(value: dict[str, Any], limit: int, what: str) -> None:
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limit:
        raise ValidationError(f"{what} are {size} bytes; at most {limit} are allowed")


class ContactWriteSchema(Schema):
    """Body of ``PUT /contacts/{external_id}``: the attributes replace the stored ones."""

    attributes = fields.Dict(keys=fields.String(validate=validate.Length(1, 200)), required=True)

    @validates("attributes")
    def _size(self, value: dict[str, Any], **_: Any) -> None:
        check_json_object_size(value, MAX_ATTRIBUTES_BYTES, "attributes")


EXTERNAL_ID = validate.Length(1, 255)


def contact_to_json(contact: Any) -> dict[str, Any]:
    return {
        "id": contact.id,
        "external_id": contact.external_id,
        "attributes": contact.attributes,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    }
