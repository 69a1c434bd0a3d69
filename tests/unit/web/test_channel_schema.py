"""The webhook channel schema: shape, defaults, enums, retry shapes, delivery control and
located template errors."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from engine.netguard import parse_networks
from engine.templating.request import RenderSettings
from web.schemas.channel import WebhookChannelSchema
from web.schemas.errors import flatten_messages

URL = "https://hooks.example.com/in"


def load(data: dict[str, Any], settings: RenderSettings | None = None) -> dict[str, Any]:
    return WebhookChannelSchema(settings=settings).load(data)


def load_errors(data: dict[str, Any], settings: RenderSettings | None = None) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        load(data, settings)
    return caught.value.messages


def test_defaults() -> None:
    assert load({"url": URL}) == {
        "url": URL,
        "method": "POST",
        "content_type": "json",
        "headers": [],
        "auth": {"type": "none"},
        "body": {"mode": "default"},
        "log_response_body": True,
        "active": True,
        "timeout_seconds": 15,
        "retry": {"policy": "standard"},
        "disable_after_failures": 20,
        "max_concurrency": 10,
        "rate_limit": None,
    }


def test_full_spec_example_loads_with_secrets_as_plain_strings() -> None:
    data = {
        "url": "https://api.example.com/leads/{{ contact.external_id | urlencode }}",
        "method": "PUT",
        "content_type": "form",
        "headers": [{"name": "X-Source", "value": "{{ campaign.name }}"}],
        "auth": {"type": "basic", "username": "api", "password": "s3cret"},
        "body": {
            "mode": "mapping",
            "fields": [
                {"name": "email", "source": "contact.email", "fallback": "unknown@example.com"},
                {"name": "source", "value": "webhook"},
                {"name": "lead.score", "source": "event.properties.score", "type": "number"},
            ],
        },
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "log_response_body": False,
        "active": False,
        "timeout_seconds": 60,
        "retry": {"schedule": [5, 60, 600], "max_attempts": 8},
        "disable_after_failures": 1,
        "max_concurrency": 3,
        "rate_limit": {"requests": 5, "per": "minute"},
    }
    assert load(data) == data


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "url"),
        ({"url": URL, "method": "FETCH"}, "method"),
        ({"url": URL, "method": "post"}, "method"),
        ({"url": URL, "content_type": "xml"}, "content_type"),
        ({"url": URL, "auth": {"type": "digest"}}, "auth"),
        ({"url": URL, "body": {"mode": "html"}}, "body"),
        ({"url": URL, "body": {"mode": "raw"}}, "body"),
        ({"url": URL, "body": {"mode": "mapping"}}, "body"),
        (
            {"url": URL, "body": {"mode": "mapping", "fields": [{"name": "a", "type": "date"}]}},
            "body",
        ),
        ({"url": URL, "headers": [{"value": "v"}]}, "headers"),
        ({"url": URL, "timeout_seconds": 0}, "timeout_seconds"),
        ({"url": URL, "timeout_seconds": 61}, "timeout_seconds"),
        ({"url": URL, "timeout_seconds": "15"}, "timeout_seconds"),
        ({"url": URL, "disable_after_failures": 0}, "disable_after_failures"),
        ({"url": URL, "active": "maybe"}, "active"),
        ({"url": URL, "unknown": 1}, "unknown"),
    ],
)
def test_shape_and_enum_errors(data: dict[str, Any], key: str) -> None:
    assert key in load_errors(data)


@pytest.mark.parametrize(
    ("retry", "ok"),
    [
        ({"policy": "standard"}, True),
        ({"policy": "exponential"}, True),
        ({"policy": "none"}, True),
        ({"policy": "linear"}, False),
        ({"policy": "standard", "max_attempts": 3}, False),
        ({"schedule": [1], "max_attempts": 1}, True),
        ({"schedule": [12, 148, 1808], "max_attempts": 10}, True),
        ({"schedule": [0], "max_attempts": 3}, False),
        ({"schedule": [1.5], "max_attempts": 3}, False),
        ({"schedule": [True], "max_attempts": 3}, False),
        ({"schedule": [], "max_attempts": 3}, False),
        ({"schedule": [5]}, False),
        ({"schedule": [5], "max_attempts": 0}, False),
        ({"schedule": "5", "max_attempts": 2}, False),
        ({}, False),
        ("standard", False),
    ],
)
def test_retry_shapes(retry: Any, ok: bool) -> None:
    data = {"url": URL, "retry": retry}
    if ok:
        assert load(data)["retry"] == retry
    else:
        assert "retry" in load_errors(data)


@pytest.mark.parametrize(
    ("data", "location", "fragment"),
    [
        ({"url": "http://api.example.com"}, "url", "https"),
        ({"url": "https://10.0.0.1/x"}, "url", "private"),
        ({"url": URL + "/{{ contact.id"}, "url", "line 1, column"),
        ({"url": URL, "headers": [{"name": "Host", "value": "x"}]}, "headers[0].name", "Host"),
        (
            {"url": URL, "headers": [{"name": "X", "value": "a\n{{ x | nope }}"}]},
            "headers[0].value",
            "line 2, column 6",
        ),
        (
            {"url": URL, "body": {"mode": "mapping", "fields": [{"name": "a", "source": "bad"}]}},
            "body.fields[0].source",
            "unknown variable",
        ),
    ],
)
def test_channel_validation_errors_are_located(data: dict, location: str, fragment: str) -> None:
    messages = load_errors(data)
    assert fragment in " ".join(messages[location])


def test_settings_decide_https_and_networks() -> None:
    settings = RenderSettings(require_https=False, allowed_networks=parse_networks("127.0.0.0/8"))
    assert (
        load({"url": "http://127.0.0.1:8080/hook"}, settings)["url"] == "http://127.0.0.1:8080/hook"
    )


def test_warnings_do_not_block_loading() -> None:
    assert load({"url": URL + "/{{ contact.first_name }}"})["url"].endswith("first_name }}")


def test_every_problem_is_reported_in_one_round() -> None:
    """A field error does not hide the template and URL checks (one round of fixes)."""
    channel = {
        "url": "https://api.example.com/{{ contact.id ",
        "timeout_seconds": 99,
        "headers": [{"name": "X-Ok", "value": "{{ oops"}],
    }
    with pytest.raises(ValidationError) as raised:
        WebhookChannelSchema().load(channel)
    assert set(raised.value.messages) == {"timeout_seconds", "url", "headers[0].value"}


@pytest.mark.parametrize("value", [1, 10, 100])
def test_max_concurrency_in_range(value: int) -> None:
    assert load({"url": URL, "max_concurrency": value})["max_concurrency"] == value


@pytest.mark.parametrize("value", [0, 101, -1, "3", 2.5, True, None])
def test_max_concurrency_out_of_range_or_not_an_integer(value: Any) -> None:
    assert "max_concurrency" in load_errors({"url": URL, "max_concurrency": value})


@pytest.mark.parametrize(
    "limit",
    [
        None,
        {"requests": 1, "per": "second"},
        {"requests": 5, "per": "minute"},
        {"requests": 100_000, "per": "hour"},
    ],
)
def test_rate_limit_null_or_requests_per_period(limit: Any) -> None:
    assert load({"url": URL, "rate_limit": limit})["rate_limit"] == limit


@pytest.mark.parametrize(
    ("limit", "locations"),
    [
        ({"requests": 5, "per": "day"}, {"webhook.rate_limit.per"}),
        ({"requests": 5, "per": "Minute"}, {"webhook.rate_limit.per"}),
        ({"requests": 0, "per": "second"}, {"webhook.rate_limit.requests"}),
        ({"requests": 100_001, "per": "hour"}, {"webhook.rate_limit.requests"}),
        ({"requests": "5", "per": "hour"}, {"webhook.rate_limit.requests"}),
        ({"requests": True, "per": "hour"}, {"webhook.rate_limit.requests"}),
        ({"per": "minute"}, {"webhook.rate_limit.requests"}),
        ({"requests": 5}, {"webhook.rate_limit.per"}),
        ({"requests": 5, "per": "minute", "burst": 2}, {"webhook.rate_limit.burst"}),
        ({}, {"webhook.rate_limit.requests", "webhook.rate_limit.per"}),
        ("5/minute", {"webhook.rate_limit"}),
        (5, {"webhook.rate_limit"}),
    ],
)
def test_bad_rate_limits_are_refused_where_they_are_wrong(limit: Any, locations: set) -> None:
    """Located as the API and the builder show them (``webhook.rate_limit.per``)."""
    messages = flatten_messages(load_errors({"url": URL, "rate_limit": limit}), "webhook")
    assert set(messages) == locations
