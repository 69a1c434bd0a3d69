"""Templates as the API reads them: a name, a description and a full webhook channel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from engine.campaigns.service import masked_channel, merge_channel_patch
from engine.store.models import Template
from engine.templating.request import RenderSettings
from web.schemas.channel import WebhookChannelSchema, with_delivery_defaults
from web.schemas.errors import flatten_messages


class TemplateSchema(Schema):
    """Create (``webhook`` required) or PATCH (``partial=True``) a template."""

    name = fields.String(required=True, validate=validate.Length(1, 200))
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    webhook = fields.Dict(required=True)

    def __init__(
        self,
        *args: Any,
        settings: RenderSettings | None = None,
        base_channel: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.render_settings = settings or RenderSettings()
        self.base_channel = base_channel

    @classmethod
    def for_update(cls, template: Template, settings: RenderSettings) -> TemplateSchema:
        """The PATCH schema of ``template``: changes merge over its stored (masked) channel,
        so omitted secrets keep the stored ones."""
        return cls(
            settings=settings,
            base_channel=masked_channel(template.channel, template.channel_secrets),
            partial=True,
        )

    @validates_schema
    def _webhook(self, data: dict[str, Any], **_: Any) -> None:
        if "webhook" not in data:
            return
        try:
            WebhookChannelSchema(settings=self.render_settings).load(
                merge_channel_patch(self.base_channel, data["webhook"])
            )
        except ValidationError as exc:
            raise ValidationError(flatten_messages(exc.normalized_messages(), "webhook")) from None

    @post_load
    def _full_webhook(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "webhook" in data:
            merged = merge_channel_patch(self.base_channel, data["webhook"])
            data["webhook"] = WebhookChannelSchema(settings=self.render_settings).load(merged)
            data["webhook"].pop("secret", None)  # a template's campaigns get their own
        return data


def template_to_json(template: Template) -> dict[str, Any]:
    return {
        "id": template.id,
        "name": template.name,
        "description": template.description,
        "webhook": with_delivery_defaults(
            masked_channel(template.channel, template.channel_secrets)
        ),
        "created_at": template.created_at,
        "updated_at": template.updated_at,
    }
