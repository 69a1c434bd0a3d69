"""Campaigns as the API reads them (SPEC §6, §7).

Trigger, conditions and audience are checked by ``engine.rules.triggers`` /
``engine.rules.conditions``;
their errors are keyed by the path of the bad node (``trigger.conditions.all[1].any[0].op``).
The ``webhook`` is checked by ``WebhookChannelSchema``, its errors keyed ``webhook.<where>``
(``webhook.body.fields[1].name``).
A draft may be saved incomplete (no events yet, no webhook); activating checks the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from engine.campaigns.service import masked_channel, merge_channel_patch
from engine.campaigns.test_send import TestSendResult
from engine.delivery.attempts import health_summary
from engine.rules.conditions import validate_conditions
from engine.rules.sql import audience_sql_supported
from engine.rules.triggers import validate_trigger
from engine.store.models import Campaign
from engine.templating.request import RenderSettings
from web.schemas.channel import WebhookChannelSchema, with_delivery_defaults
from web.schemas.errors import flatten_messages

MAX_TEST_CONTACTS = 50
MAX_CAP_SECONDS = 366 * 86400


class FrequencyCapSchema(Schema):
    max = fields.Integer(required=True, strict=True, validate=validate.Range(1, 1_000_000))
    per_seconds = fields.Integer(
        required=True, strict=True, validate=validate.Range(1, MAX_CAP_SECONDS)
    )


class AudienceSchema(Schema):
    conditions = fields.Raw(allow_none=True)
    test_contacts = fields.List(
        fields.String(validate=validate.Length(1, 255)),
        validate=validate.Length(max=MAX_TEST_CONTACTS),
    )


class CampaignSchema(Schema):
    """Create (all fields) or PATCH (``partial=True``) a campaign.

    ``base_channel`` is what a given ``webhook`` is merged over before it is checked: the
    stored channel (masked) on PATCH, the template's on create with ``template_id``.
    """

    name = fields.String(required=True, validate=validate.Length(1, 200))
    trigger = fields.Dict()
    audience = fields.Nested(AudienceSchema)
    frequency_cap = fields.Nested(FrequencyCapSchema, allow_none=True)
    webhook = fields.Dict(allow_none=True)
    template_id = fields.String(validate=validate.Length(1, 40))

    def __init__(
        self,
        *args: Any,
        settings: RenderSettings | None = None,
        base_channel: Mapping[str, Any] | None = None,
        stored_trigger: Mapping[str, Any] | None = None,
        draft: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.render_settings = settings or RenderSettings()
        self.base_channel = base_channel
        self.stored_trigger = stored_trigger
        self.draft = draft  # a draft's webhook may be incomplete (no URL yet)

    @classmethod
    def for_update(cls, campaign: Campaign, settings: RenderSettings) -> CampaignSchema:
        """The PATCH schema of ``campaign``: changes merge over its stored (masked) channel,
        so omitted secrets keep the stored ones, and conditions check against its trigger."""
        return cls(
            settings=settings,
            base_channel=masked_channel(
                campaign.channel, campaign.channel_secrets, campaign.signing_secret
            ),
            stored_trigger=campaign.trigger,
            draft=campaign.status == "draft",
            partial=True,
        )

    def _channel_schema(self) -> WebhookChannelSchema:
        return WebhookChannelSchema(settings=self.render_settings, incomplete=self.draft)

    @validates_schema
    def _rules(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        trigger = data.get("trigger", self.stored_trigger)
        if "trigger" in data:
            for problem in validate_trigger(data["trigger"]):
                if problem.path == "trigger.events" and data["trigger"].get("events") == []:
                    continue  # a draft may have no events yet; activation insists
                errors.setdefault(problem.path, []).append(problem.message)
        audience = data.get("audience") or {}
        if audience.get("conditions") is not None:
            is_schedule = isinstance(trigger, Mapping) and trigger.get("type") == "schedule"
            problems = (
                audience_sql_supported(audience["conditions"])
                if is_schedule
                else validate_conditions(audience["conditions"], path="audience.conditions")
            )
            for problem in problems:
                errors.setdefault(problem.path, []).append(problem.message)
        if data.get("webhook") is not None:
            merged = merge_channel_patch(self.base_channel, data["webhook"])
            try:
                self._channel_schema().load(merged)
            except ValidationError as exc:
                errors.update(flatten_messages(exc.normalized_messages(), "webhook"))
        if errors:
            raise ValidationError(errors)

    @post_load
    def _full_webhook(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """The webhook as stored: the merge over ``base_channel`` with defaults filled."""
        if data.get("webhook") is not None:
            merged = merge_channel_patch(self.base_channel, data["webhook"])
            loaded = self._channel_schema().load(merged)
            if "secret" in merged:
                loaded["secret"] = merged["secret"]
            data["webhook"] = loaded
        return data


class CampaignActionSchema(Schema):
    """Optional body of ``/duplicate`` and ``/save-as-template``."""

    name = fields.String(validate=validate.Length(1, 200))
    description = fields.String(validate=validate.Length(max=2000))


class TestSendSchema(Schema):
    """Body of ``POST /campaigns/{id}/test``."""

    contact = fields.Dict(required=True)
    event = fields.Dict(allow_none=True)

    @validates_schema
    def _contact(self, data: dict[str, Any], **_: Any) -> None:
        contact = data.get("contact") or {}
        if "attributes" in contact:
            if not isinstance(contact["attributes"], dict):
                raise ValidationError({"contact.attributes": ["must be an object"]})
        elif not isinstance(contact.get("external_id"), str) or not contact["external_id"]:
            raise ValidationError(
                {"contact": ['send {"external_id": "..."} or {"attributes": {...}}']}
            )
        event = data.get("event")
        if event is not None:
            if not isinstance(event.get("name", ""), str):
                raise ValidationError({"event.name": ["must be a string"]})
            if not isinstance(event.get("properties", {}), dict):
                raise ValidationError({"event.properties": ["must be an object"]})


def test_send_to_json(result: TestSendResult) -> dict[str, Any]:
    """The answer of a test send: ``{"notification_id", "request", "response"}``.

    When the request could not be rendered or sent, ``"error": {"code", "message"}``
    stands instead of (or, for a send error after a response, next to) ``response``.
    """
    answer: dict[str, Any] = {"notification_id": result.notification_id, "request": result.request}
    outcome = result.outcome
    if outcome is None:
        answer["error"] = {"code": result.render_error_code, "message": result.render_error}
        return answer
    if outcome.status_code is not None:
        answer["response"] = {
            "status_code": outcome.status_code,
            "headers": outcome.response_headers or {},
            "body": (outcome.response_body or b"").decode("utf-8", errors="replace"),
            "duration_ms": outcome.duration_ms,
        }
    if outcome.error_code is not None and outcome.error_code != "http_status":
        answer["error"] = {"code": outcome.error_code, "message": outcome.error_message}
    return answer


def campaign_to_json(campaign: Campaign, *, reveal_secret: bool = False) -> dict[str, Any]:
    """The SPEC §7 campaign shape, secrets masked (``reveal_secret`` shows the signing secret
    in full: only right after create and rotate-secret)."""
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "trigger": campaign.trigger,
        "audience": campaign.audience or {},
        "frequency_cap": campaign.frequency_cap,
        "webhook": with_delivery_defaults(
            masked_channel(
                campaign.channel,
                campaign.channel_secrets,
                campaign.signing_secret,
                reveal_signing_secret=reveal_secret,
            )
        ),
        "health": health_summary(campaign),
        "activated_at": campaign.activated_at,
        "created_at": campaign.created_at,
        "updated_at": campaign.updated_at,
    }


def run_to_json(run: Any) -> dict[str, Any]:
    """A schedule run as ``GET /campaigns/<id>/runs`` lists it."""
    return {
        "id": run.id,
        "campaign_id": run.campaign_id,
        "fire_time": run.fire_time,
        "status": run.status,
        "notification_count": run.notification_count,
        "skipped_count": run.skipped_count,
        "failed_count": run.failed_count,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
    }
