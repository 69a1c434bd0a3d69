"""Validating a whole channel without data: located errors, line/column, fallback warnings."""

from __future__ import annotations

from typing import Any

import pytest

from engine.netguard import parse_networks
from engine.templating.channel import validate_channel, variables_without_fallback
from engine.templating.request import RenderSettings

SETTINGS = RenderSettings()


def channel(**overrides: Any) -> dict[str, Any]:
    return {"url": "https://hooks.example.com/in", **overrides}


def errors(data: dict[str, Any], settings: RenderSettings = SETTINGS) -> list[tuple]:
    return [
        (p.location, p.line, p.column)
        for p in validate_channel(data, settings)
        if p.severity == "error"
    ]


def warnings(data: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [
        (p.location, p.variable)
        for p in validate_channel(data, SETTINGS)
        if p.severity == "warning"
    ]


def test_the_spec_example_is_valid_with_one_warning() -> None:
    spec = {
        "url": "https://api.example.com/leads/{{ contact.external_id | urlencode }}",
        "method": "POST",
        "content_type": "json",
        "headers": [{"name": "X-Source", "value": "{{ campaign.name }}"}],
        "auth": {"type": "basic", "username": "api", "password": "s3cret"},
        "body": {
            "mode": "mapping",
            "fields": [
                {"name": "email", "source": "contact.email", "fallback": "unknown@example.com"},
                {"name": "campaign_name", "source": "campaign.name"},
                {"name": "source", "value": "webhook"},
                {"name": "lead.score", "source": "event.properties.score", "type": "number"},
            ],
        },
    }
    assert errors(spec) == []
    assert warnings(spec) == [("body.fields[3].source", "event.properties.score")]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (channel(url="https://x.com/{{ contact.id "), [("url", 1, 15)]),
        (channel(url="https://x.com/{{ contact.id | nofilter }}"), [("url", 1, 29)]),
        (channel(url="https://x.com/{{ contact.id is nothing }}"), [("url", 1, 29)]),
        (channel(url="https://x.com/{{ foo }}"), [("url", 1, 18)]),
        (channel(url="https://x.com/{% include 'a' %}"), [("url", 1, 15)]),
        (
            channel(headers=[{"name": "X", "value": "a\n{% if x %}\n{{ ) }}"}]),
            [("headers[0].value", 3, 1)],
        ),
        (channel(headers=[{"name": "X", "value": "a\n{% frob %}"}]), [("headers[0].value", 2, 1)]),
        (
            channel(headers=[{"name": "X", "value": "{% if contact.vip %}x"}]),
            [("headers[0].value", 1, 1)],
        ),
        (channel(body={"mode": "raw", "template": "{{ a }\n}"}), [("body.template", 1, 1)]),
        (
            channel(auth={"type": "basic", "username": "{{", "password": "p"}),
            [("auth.username", 1, 1)],
        ),
        (channel(auth={"type": "bearer", "token": "{{ campaign.nope }}"}), [("auth.token", 1, 4)]),
        (channel(url="https://x.com/{{ event.score }}"), [("url", 1, 18)]),
        (channel(url="https://x.com/{{ now.year }}"), [("url", 1, 18)]),
    ],
)
def test_template_errors_have_location_line_and_column(data: dict, expected: list) -> None:
    found = errors(data)
    assert [(loc, line) for loc, line, _ in found] == [(loc, line) for loc, line, _ in expected]
    assert [col for *_, col in found] == [col for *_, col in expected]


@pytest.mark.parametrize(
    ("url", "settings", "problem"),
    [
        ("https://api.example.com/x", SETTINGS, None),
        ("http://api.example.com/x", SETTINGS, "error"),
        ("http://api.example.com/{{ contact.id }}", SETTINGS, "error"),
        ("http://api.example.com/x", RenderSettings(require_https=False), None),
        ("ftp://api.example.com/{{ contact.id }}", SETTINGS, "error"),
        ("api.example.com/{{ contact.id }}", SETTINGS, "error"),
        ("https://10.1.2.3/{{ contact.id }}", SETTINGS, "error"),
        ("https://[fe80::1]/x", SETTINGS, "error"),
        (
            "https://127.0.0.1:9000/x",
            RenderSettings(allowed_networks=parse_networks("127.0.0.0/8")),
            None,
        ),
        ("https://{{ contact.id }}.example.com/x", SETTINGS, None),
        ("https://10.0.0.{{ contact.id }}/x", SETTINGS, None),
        ("{{ contact.id }}", SETTINGS, "warning"),
        ("https://user:pw@api.example.com/{{ contact.id }}", SETTINGS, "error"),
        ("", SETTINGS, "error"),
    ],
)
def test_url_checks(url: str, settings: RenderSettings, problem: str | None) -> None:
    found = {
        p.severity for p in validate_channel(channel(url=url), settings) if p.location == "url"
    }
    assert found == ({problem} if problem else set())


@pytest.mark.parametrize(
    ("headers", "auth", "locations"),
    [
        ([{"name": "X-Ok", "value": "v"}], None, []),
        ([{"name": "Host", "value": "v"}], None, ["headers[0].name"]),
        ([{"name": "Content-Length", "value": "1"}], None, ["headers[0].name"]),
        ([{"name": "User-Agent", "value": "v"}], None, ["headers[0].name"]),
        ([{"name": "webhook-id", "value": "v"}], None, ["headers[0].name"]),
        ([{"name": "X Y", "value": "v"}], None, ["headers[0].name"]),
        ([{"name": "X-A", "value": "v"}, {"name": "x-a", "value": "w"}], None, ["headers[1].name"]),
        ([{"name": "Authorization", "value": "Token t"}], None, []),
        (
            [{"name": "Authorization", "value": "x"}],
            {"type": "bearer", "token": "t"},
            ["headers[0].name"],
        ),
        ([{"name": "X", "value": 5}], None, ["headers[0].value"]),
        ("nope", None, ["headers"]),
    ],
)
def test_header_checks(headers: Any, auth: dict | None, locations: list[str]) -> None:
    data = channel(headers=headers, **({"auth": auth} if auth else {}))
    assert [loc for loc, *_ in errors(data)] == locations


@pytest.mark.parametrize(
    ("fields", "locations"),
    [
        ([{"name": "a", "value": "x"}], []),
        ([{"name": "", "value": "x"}], ["body.fields[0].name"]),
        ([{"name": "a..b", "value": "x"}], ["body.fields[0].name"]),
        ([{"name": "a", "value": "x"}, {"name": "a", "value": "y"}], ["body.fields[1].name"]),
        ([{"name": "a", "value": "x"}, {"name": "a.b", "value": "y"}], ["body.fields[1].name"]),
        ([{"name": "a.b.c", "value": "x"}, {"name": "a.b", "value": "y"}], ["body.fields[1].name"]),
        ([{"name": "a.b", "value": "x"}, {"name": "a.c", "value": "y"}], []),
        ([{"name": "a"}], ["body.fields[0]"]),
        ([{"name": "a", "source": "contact.x", "value": "y", "fallback": 1}], ["body.fields[0]"]),
        ([{"name": "a", "source": "contact. x", "fallback": 1}], ["body.fields[0].source"]),
        ([{"name": "a", "source": "contacts.x", "fallback": 1}], ["body.fields[0].source"]),
        ([{"name": "a", "source": "event.score", "fallback": 1}], ["body.fields[0].source"]),
        ([{"name": "a", "source": "campaign.name.x"}], ["body.fields[0].source"]),
        ([{"name": "a", "value": "x", "type": "date"}], ["body.fields[0].type"]),
        ([{"name": "a", "value": "abc", "type": "number"}], ["body.fields[0].value"]),
        ([{"name": "a", "value": "{{ contact.n }}", "type": "number", "fallback": 0}], []),
        (
            [{"name": "a", "source": "contact.n", "type": "number", "fallback": "zero"}],
            ["body.fields[0].fallback"],
        ),
        ([{"name": "a", "value": "{not json", "type": "json"}], ["body.fields[0].value"]),
        ([{"name": "a", "value": "{{ contact.n | bad }}"}], ["body.fields[0].value"]),
        ("nope", ["body.fields"]),
    ],
)
def test_mapping_field_checks(fields: Any, locations: list[str]) -> None:
    data = channel(body={"mode": "mapping", "fields": fields})
    assert [loc for loc, *_ in errors(data)] == locations


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (channel(method="FETCH"), ["method"]),
        (channel(content_type="xml"), ["content_type"]),
        (channel(auth={"type": "digest"}), ["auth.type"]),
        (channel(auth={"type": "basic", "password": "p"}), ["auth.username"]),
        (channel(auth={"type": "bearer"}), ["auth.token"]),
        (channel(body={"mode": "xml"}), ["body.mode"]),
        (channel(body={"mode": "raw"}), ["body.template"]),
        (channel(method="GET", body={"mode": "raw", "template": "{}"}), ["body.mode"]),
        (channel(body={"mode": "raw", "template": '{"a": 1,}'}), ["body.template"]),
        (channel(content_type="form", body={"mode": "raw", "template": "a=1&b"}), []),
        ("not an object", [""]),
    ],
)
def test_channel_shape_checks(data: Any, expected: list[str]) -> None:
    assert [loc for loc, *_ in errors(data)] == expected


def test_raw_json_body_is_checked_with_sample_data() -> None:
    broken = channel(
        body={"mode": "raw", "template": '{"name": {{ contact.first_name | d("x") }}}'}
    )
    assert [p.location for p in validate_channel(broken, SETTINGS) if p.severity == "warning"] == [
        "body.template"
    ]
    fixed = channel(
        body={"mode": "raw", "template": '{"name": {{ contact.first_name | d("x") | tojson }}}'}
    )
    assert validate_channel(fixed, SETTINGS) == []


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ contact.first_name }}", ["contact.first_name"]),
        ('{{ contact.first_name | default("there") }}', []),
        ('{{ contact.first_name | d("there") | upper }}', []),
        ("{{ contact.first_name | upper }}", ["contact.first_name"]),
        ("{{ contact.first_name or 'there' }}", []),
        ("{% if contact.vip %}{{ contact.vip_code }}{% endif %}", ["contact.vip_code"]),
        ("{% if contact.a and not contact.b %}x{% endif %}", []),
        ("{% if contact.score > 3 %}x{% endif %}", ["contact.score"]),
        ("{{ contact.x if contact.x is defined else 'n' }}", ["contact.x"]),
        ("{{ contact.z is defined }}", []),
        ("{{ contact.id }}{{ contact.external_id }}{{ campaign.name }}{{ workspace.id }}", []),
        ("{{ notification.id }}{{ now }}{{ contact | tojson }}", []),
        ("{{ event.name }}", ["event.name"]),
        ("{{ event.properties.score }}", ["event.properties.score"]),
        ('{{ event["properties"]["a b"] }}', ["event.properties.a b"]),
        ("{{ contact.name.upper() }}", ["contact.name"]),
        ("{% for t in contact.tags %}{{ t.label }}{% endfor %}", ["contact.tags"]),
        ("{{ contact.a }}{{ contact.a }}", ["contact.a"]),
    ],
)
def test_warnings_for_variables_without_fallback(template: str, expected: list[str]) -> None:
    data = channel(headers=[{"name": "X", "value": template}])
    assert [p.variable for p in variables_without_fallback(data)] == expected
    assert {p.location for p in variables_without_fallback(data)} <= {"headers[0].value"}


def test_warning_carries_line_and_column() -> None:
    data = channel(body={"mode": "raw", "template": '{\n  "n": {{ contact.n | tojson }}\n}'})
    (warning,) = variables_without_fallback(data)
    assert (warning.location, warning.line, warning.column) == ("body.template", 2, 11)
    assert warning.as_dict()["severity"] == "warning"


def test_value_field_with_fallback_does_not_warn_and_source_without_does() -> None:
    fields = [
        {"name": "a", "value": "Hi {{ contact.first_name }}", "fallback": "Hi"},
        {"name": "b", "source": "contact.email"},
        {"name": "c", "source": "contact.external_id"},
    ]
    assert warnings(channel(body={"mode": "mapping", "fields": fields})) == [
        ("body.fields[1].source", "contact.email")
    ]


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("abc\x85def", "U+0085"),
        ("a\x9bb {{ contact.id }}", "U+009B"),
        ("{{ contact.id }}\x00", "U+0000"),
        ("line\nbreak", "U+000A"),
        ("{% if contact.vip %}\n{{ contact.id }}{% endif %}", "U+000A"),
    ],
)
def test_control_characters_in_a_header_value_are_refused_at_save(value, found) -> None:
    data = channel(headers=[{"name": "X-Tag", "value": value}])
    [problem] = [p for p in validate_channel(data, SETTINGS) if p.severity == "error"]
    assert problem.location == "headers[0].value"
    assert "X-Tag header" in problem.message and found in problem.message


@pytest.mark.parametrize(
    "value",
    [
        "tab\tinside",
        "caf\xe9",
        "{%- if contact.vip -%}\n  {{ contact.id }}\n{%- endif %}",
        "{{ contact.id }}{# a\nnote #}",
    ],
)
def test_header_values_without_control_characters_are_saved(value) -> None:
    assert errors(channel(headers=[{"name": "X-Tag", "value": value}])) == []
