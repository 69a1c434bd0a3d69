"""The webhook channel of a campaign or template, as the API reads and writes it (SPEC §4).

Loading checks the shape, fills defaults, and then runs
``engine.templating.channel.validate_channel``:
its errors become a ``ValidationError`` keyed by location (``url``, ``headers[0].value``,
``body.fields[2].source``); its warnings are not errors (ask ``variables_without_fallback``).
Secrets (``auth.password``, ``auth.token``, ``secret``) load as plain strings: masking and
keep-on-omit belong to the campaign resource.

``max_concurrency`` and ``rate_limit`` are stored in the channel like ``timeout_seconds``;
the delivery engine reads them from there (``engine.delivery.pacing``).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from engine.delivery.pacing import (
    DEFAULT_MAX_CONCURRENCY,
    MAX_CONCURRENCY,
    MAX_RATE_LIMIT_REQUESTS,
    PERIOD_SECONDS,
)
from engine.templating.channel import validate_channel
from engine.templating.checks import AUTH_TYPES, BODY_MODES, CONTENT_TYPES, FIELD_TYPES, METHODS
from engine.templating.request import RenderSettings

RETRY_POLICIES = ("standard", "exponential", "none")
MAX_RETRY_DELAY_SECONDS = 7 * 24 * 3600
MAX_RETRY_ATTEMPTS = 100
MAX_TEMPLATE_CHARS = 64 * 1024

_TEMPLATE = validate.Length(max=MAX_TEMPLATE_CHARS)


class HeaderSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    value = fields.String(load_default="", validate=_TEMPLATE)


class AuthSchema(Schema):
    type = fields.String(load_default="none", validate=validate.OneOf(AUTH_TYPES))
    username = fields.String(validate=_TEMPLATE)
    password = fields.String(validate=_TEMPLATE)
    token = fields.String(validate=_TEMPLATE)


class MappingFieldSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 500))
    source = fields.String(validate=validate.Length(1, 500))
    value = fields.Raw(allow_none=True)
    fallback = fields.Raw(allow_none=True)
    type = fields.String(validate=validate.OneOf(FIELD_TYPES))


class BodySchema(Schema):
    mode = fields.String(load_default="default", validate=validate.OneOf(BODY_MODES))
    template = fields.String(validate=_TEMPLATE)
    fields = fields.List(fields.Nested(MappingFieldSchema), validate=validate.Length(max=500))

    @validates_schema
    def _mode_parts(self, data: dict[str, Any], **_: Any) -> None:
        if data["mode"] == "mapping" and "fields" not in data:
            raise ValidationError("mapping mode needs fields", "fields")
        if data["mode"] == "raw" and "template" not in data:
            raise ValidationError("raw mode needs a template", "template")


class RateLimitSchema(Schema):
    """``{"requests": N, "per": "second" | "minute" | "hour"}``; other keys are refused."""

    error_messages = {  # the message when rate_limit is not an object
        "type": 'must be null or {"requests": N, "per": "second", "minute" or "hour"}'
    }

    requests = fields.Integer(
        required=True, strict=True, validate=validate.Range(1, MAX_RATE_LIMIT_REQUESTS)
    )
    per = fields.String(required=True, validate=validate.OneOf(tuple(PERIOD_SECONDS)))


class RetryField(fields.Field):
    """A named retry policy (standard, exponential, none) or an explicit delay schedule."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError("retry must be an object")
        if "policy" in value:
            if set(value) != {"policy"}:
                raise ValidationError("a retry policy takes no other keys")
            if value["policy"] not in RETRY_POLICIES:
                raise ValidationError(f"policy must be one of {', '.join(RETRY_POLICIES)}")
            return {"policy": value["policy"]}
        if set(value) != {"schedule", "max_attempts"}:
            raise ValidationError(
                'retry needs {"policy": ...} or {"schedule": [seconds, ...], "max_attempts": N}'
            )
        schedule, attempts = value["schedule"], value["max_attempts"]
        if not isinstance(schedule, list) or not 1 <= len(schedule) <= MAX_RETRY_ATTEMPTS:
            raise ValidationError("schedule must be a non-empty list of delays in seconds")
        for delay in schedule:
            if not _is_int(delay) or not 1 <= delay <= MAX_RETRY_DELAY_SECONDS:
                raise ValidationError(
                    f"each delay must be a whole number of seconds, 1 to {MAX_RETRY_DELAY_SECONDS}"
                )
        if not _is_int(attempts) or not 1 <= attempts <= MAX_RETRY_ATTEMPTS:
            raise ValidationError(f"max_attempts must be between 1 and {MAX_RETRY_ATTEMPTS}")
        return {"schedule": list(schedule), "max_attempts": attempts}


def _top_field(location: str | None) -> str:
    """``body.fields[2].source`` → ``body``; None (the whole channel) → ``url``."""
    return (location or "url").split(".", 1)[0].split("[", 1)[0]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class WebhookChannelSchema(Schema):
    """A webhook channel; ``settings`` decides the HTTPS rule and allowed networks.

    ``incomplete=True`` (a draft campaign's channel) lets the URL be empty or missing:
    activation checks it. Whatever is filled in is still checked.
    """

    url = fields.String(load_default="", validate=validate.Length(max=8 * 1024))
    method = fields.String(load_default="POST", validate=validate.OneOf(METHODS))
    content_type = fields.String(load_default="json", validate=validate.OneOf(CONTENT_TYPES))
    headers = fields.List(
        fields.Nested(HeaderSchema), load_default=list, validate=validate.Length(max=50)
    )
    auth = fields.Nested(AuthSchema, load_default=lambda: {"type": "none"})
    body = fields.Nested(BodySchema, load_default=lambda: {"mode": "default"})
    secret = fields.String(validate=validate.Length(1, 500))
    log_response_body = fields.Boolean(load_default=True)
    active = fields.Boolean(load_default=True)
    timeout_seconds = fields.Integer(load_default=15, strict=True, validate=validate.Range(1, 60))
    retry = RetryField(load_default=lambda: {"policy": "standard"})
    disable_after_failures = fields.Integer(
        load_default=20, strict=True, validate=validate.Range(min=1)
    )
    max_concurrency = fields.Integer(
        load_default=DEFAULT_MAX_CONCURRENCY,
        strict=True,
        validate=validate.Range(1, MAX_CONCURRENCY),
        metadata={
            "description": "The most requests in flight to this channel at once, across "
            "every worker process."
        },
    )
    rate_limit = fields.Nested(
        RateLimitSchema,
        load_default=None,
        allow_none=True,
        metadata={
            "description": "null (no limit) or at most `requests` per `per`, across every "
            "worker process. Notifications over the limit wait their turn: they never fail "
            "for it and never spend an attempt on it."
        },
    )

    def __init__(
        self,
        *args: Any,
        settings: RenderSettings | None = None,
        incomplete: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.render_settings = settings or RenderSettings()
        self.incomplete = incomplete

    # Runs even when a field failed, so a marketer sees every problem in one round. A field
    # that failed (or is missing) is absent from ``data`` and already has its own error.
    @validates_schema(skip_on_field_errors=False)
    def _templates(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        no_url = "url" in data and not data["url"].strip()
        if no_url and not self.incomplete:
            errors["url"] = ["Enter the address the webhook is sent to."]
        for problem in validate_channel(data, self.render_settings):
            if problem.severity != "error" or _top_field(problem.location) not in data:
                continue
            if no_url and _top_field(problem.location) == "url":
                continue  # said above, or allowed in a draft
            where = f"line {problem.line}, column {problem.column}: " if problem.column else ""
            if problem.line and not problem.column:
                where = f"line {problem.line}: "
            errors.setdefault(problem.location or "_schema", []).append(where + problem.message)
        if errors:
            raise ValidationError(errors)


def with_delivery_defaults(channel: dict[str, Any]) -> dict[str, Any]:
    """A stored channel as responses show it: one saved before ``max_concurrency`` and
    ``rate_limit`` existed (or a draft's, not saved yet) shows their defaults, which is
    what delivery applies to it."""
    return {"max_concurrency": DEFAULT_MAX_CONCURRENCY, "rate_limit": None, **channel}
