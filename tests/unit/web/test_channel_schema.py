"""The webhook channel schema: shape, defaults, enums, retry shapes and located template errors."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from engine.netguard import parse_networks
from engine.templating.render import RenderSettings
from web.schemas.channel import WebhookChannelSchema

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
