"""``GET /api/v1/openapi.json``: a valid document that matches the routes and the answers.

The fuzz test drives every operation through the app's WSGI interface (no socket at all)
with schemathesis: positive and negative (malformed) examples, a fixed number per
operation, derandomized. No answer may be a 500, every error must use the envelope, and
every answer must match the document. ``POST /campaigns/{id}/test`` is NOT fuzzed: it sends
a real HTTP request (its own tests use a loopback receiver).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engine.campaigns import manual_retry

EXAMPLES_PER_OPERATION = 12
NOT_FUZZED = {("POST", "/campaigns/{campaign_id}/test")}  # would send a real request
LOOPBACK_HOOK = "http://127.0.0.1:9/hook"  # discard port; nothing is ever sent to it here


def test_document_is_public_and_valid(client: Any) -> None:
    response = client.get("/api/v1/openapi.json")  # no API key
    assert response.status_code == 200
    document = response.get_json()
    validate(document)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/openapi.json"]["get"]["security"] == []


def test_other_api_routes_still_need_a_key(client: Any) -> None:
    response = client.get("/api/v1/workspace")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def _routes(app: Flask) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((method, path))
    return found


def test_document_lists_exactly_the_registered_routes(app: Flask, client: Any) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert documented == _routes(app)


def test_request_schemas_come_from_marshmallow(client: Any) -> None:
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert schemas["Event"]["required"] == ["contact", "name"]
    assert schemas["CampaignCreate"]["required"] == ["name"]
    assert "required" not in schemas["CampaignPatch"]
    assert schemas["WebhookChannel"]["properties"]["timeout_seconds"]["maximum"] == 60


def test_delivery_control_is_documented(client: Any) -> None:
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    channel = schemas["WebhookChannel"]["properties"]
    assert channel["max_concurrency"] | {"description": ""} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 10,
        "description": "",
    }
    rate_limit = channel["rate_limit"]
    assert rate_limit["nullable"] is True and rate_limit["additionalProperties"] is False
    assert set(rate_limit["required"]) == {"requests", "per"}
    assert rate_limit["properties"]["per"]["enum"] == ["second", "minute", "hour"]
    assert rate_limit["properties"]["requests"]["maximum"] == 100_000
    assert schemas["WebhookChannelPatch"]["properties"]["rate_limit"]["nullable"] is True


def test_waiting_is_documented(client: Any) -> None:
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    waiting = schemas["Notification"]["properties"]["waiting"]
    assert waiting["nullable"] is True
    assert waiting["properties"]["reason"]["enum"] == ["rate_limit", "retry_after", "breaker"]
    assert "waiting" not in schemas["Notification"]["required"]


def _seed(api: Any) -> dict[str, str]:
    """A campaign with a notification, a template and a contact, for real path ids."""
    campaign = api.post(
        "/campaigns",
        json={
            "name": "Fuzzed",
            "trigger": {"type": "event", "events": ["order.paid"]},
            "webhook": {"url": LOOPBACK_HOOK},
        },
    ).get_json()
    assert api.post(f"/campaigns/{campaign['id']}/activate").status_code == 200
    accepted = api.post(
        "/events",
        json={
            "name": "order.paid",
            "contact": {"external_id": "c-1", "attributes": {"plan": "pro"}},
        },
    ).get_json()
    template = api.post(
        "/templates",
        json={
            "name": "Fuzzed",
            "webhook": {"url": LOOPBACK_HOOK},
        },
    ).get_json()
    job = api.post("/notifications/retry", json={"status": "failed"}).get_json()
    return {
        "campaign_id": campaign["id"],
        "template_id": template["id"],
        "notification_id": accepted["events"][0]["notifications"][0],
        "external_id": "c-1",
        "job_id": job["job_id"],
    }


def _check_envelope(response: Any) -> None:
    if response.status_code < 400:
        return
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_fuzzed_requests_never_fail_with_500(app: Flask, api: Any) -> None:
    known = _seed(api)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    auth = api.workspace.headers
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = [op for op in operations if (op.method.upper(), op.path) not in NOT_FUZZED]
    assert len(fuzzed) == len(operations) - len(NOT_FUZZED)
    for operation in fuzzed:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases, use_known_ids=st.booleans())
        def exercise(case: Any, use_known_ids: bool) -> None:
            if use_known_ids and case.path_parameters:
                case.path_parameters = {
                    name: known.get(name, value) for name, value in case.path_parameters.items()
                }
            response = case.call(headers=auth)
            _check_envelope(response)
            case.validate_response(response, checks=CHECKS, headers=auth)

        exercise()
    manual_retry.wait_for_background_jobs()


def test_nul_and_unpaired_surrogates_are_refused_not_stored(api: Any) -> None:
    """PostgreSQL text holds neither; found by the fuzz test as 500s there."""
    response = api.get("/campaigns/cmp%00x")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"
    for text in ('"a\\u0000b"', '"\\ud800"'):
        response = api.put(
            "/contacts/c-1",
            data=f'{{"attributes": {{"name": {text}}}}}',
            content_type="application/json",
        )
        assert response.status_code == 422, text
        assert response.get_json()["error"]["code"] == "validation_error"
    paired = api.put(
        "/contacts/c-1",
        data='{"attributes": {"name": "\\ud83d\\ude00"}}',
        content_type="application/json",
    )
    assert paired.status_code == 201
    assert paired.get_json()["attributes"]["name"] == "\U0001f600"


# --- hostile bodies (issue #14) -------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


#: Raw JSON text put in place of one value of a valid body: numbers that overflow a double,
#: nesting past the limit (and past Python's recursion limit), control characters, text no
#: database column holds, and event names and patterns over their segment limits.
HOSTILE_VALUES = [
    "1e400",
    "-1e400",
    "1e309",
    "1" + "0" * 400,
    "-" + "9" * 5000,
    "NaN",
    "-Infinity",
    _nested(70),
    _nested(3000),
    '{"a":' * 100 + "1" + "}" * 100,
    '"x\\u0085y"',
    '"\\u0000"',
    '"\\udfff"',
    '"9999-12-31T23:59:59-23:59"',
    '"0001-01-01T00:00:00+23:59"',
    '"' + ".".join(["**"] * 80) + '"',
    '"' + ".".join(["s"] * 100) + '"',
]
_SENTINEL = "__hostile__"


def _leaf_paths(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict) and value:
        return [p for key, item in value.items() for p in _leaf_paths(item, (*path, key))]
    if isinstance(value, list) and value:
        return [p for index, item in enumerate(value) for p in _leaf_paths(item, (*path, index))]
    return [path]


def _with_sentinel(value: Any, path: tuple) -> Any:
    if not path:
        return _SENTINEL
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _with_sentinel(value.get(head), rest)}
    copy = list(value)
    copy[head] = _with_sentinel(copy[head], rest)
    return copy


def _valid_bodies(known: dict[str, str]) -> dict[tuple[str, str], Any]:
    """A body each operation accepts, so a hostile value reaches as far in as it can."""
    webhook = {"url": LOOPBACK_HOOK, "headers": [{"name": "X-A", "value": "{{ contact.id }}"}]}
    event = {
        "name": "order.paid",
        "id": "hostile-1",
        "contact": {"external_id": "c-1", "attributes": {"score": 1, "tags": ["a"]}},
        "properties": {"amount": 4.5, "nested": {"list": [1, 2]}},
        "occurred_at": "2026-11-30T10:00:00Z",
    }
    campaign = {
        "name": "Hostile",
        "trigger": {
            "type": "event",
            "events": ["order.*"],
            "conditions": {"field": "event.properties.amount", "op": "gt", "value": 1},
        },
        "audience": {"conditions": {"field": "contact.score", "op": "lt", "value": 10}},
        "webhook": webhook,
    }
    return {
        ("POST", "/events"): event,
        ("PUT", "/contacts/{external_id}"): {"attributes": {"score": 2, "deep": {"a": [1]}}},
        ("POST", "/campaigns"): campaign,
        ("PATCH", "/campaigns/{campaign_id}"): campaign,
        ("POST", "/templates"): {"name": "T", "webhook": webhook},
        ("PATCH", "/templates/{template_id}"): {"name": "T", "webhook": webhook},
        ("POST", "/render"): {
            "webhook": webhook,
            "contact": {"attributes": {"score": 1}},
            "event": {"name": "a", "properties": {"n": 1}},
        },
    }


def test_hostile_values_anywhere_in_a_body_are_4xx_never_5xx(app: Flask, api: Any) -> None:
    """Every hostile value in turn, in place of each value of a body the operation accepts
    (and of a generated one): a 4xx with the envelope, never a 5xx, nothing unreadable."""
    known = _seed(api)
    valid = _valid_bodies(known)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    with_body = [
        op for op in operations if (op.method.upper(), op.path) not in NOT_FUZZED and op.body
    ]
    assert len(with_body) >= 8
    assert set(valid) <= {(op.method.upper(), op.path) for op in with_body}
    sent = 0
    answers: dict[int, int] = {}
    for operation in with_body:
        key = (operation.method.upper(), operation.path)
        generated: list[Any] = []

        @settings(  # one generated body per operation, beside the known good one
            max_examples=1,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(GenerationMode.POSITIVE))
        def collect(case: Any) -> None:
            generated.append(case.body)  # noqa: B023 - run right below, in this iteration

        collect()
        bodies = [valid[key]] if key in valid else []
        bodies += [b for b in generated[:1] if isinstance(b, dict | list) and b]
        params = {name: known.get(name, "x") for name in re.findall(r"{(\w+)}", operation.path)}
        path = operation.path.format(**params)
        for body in bodies or [{}]:
            leaves = _leaf_paths(body) if body else [("x",)]
            for leaf in leaves:
                raw_template = json.dumps(_with_sentinel(body, leaf))
                for hostile in HOSTILE_VALUES:
                    raw = raw_template.replace(f'"{_SENTINEL}"', hostile)
                    response = api.request(key[0], path, data=raw, content_type="application/json")
                    sent += 1
                    answers[response.status_code] = answers.get(response.status_code, 0) + 1
                    assert response.status_code < 500, (
                        path,
                        raw[:300],
                        response.get_data(as_text=True),
                    )
                    if response.status_code >= 400:
                        error = response.get_json()["error"]
                        assert set(error) == {"code", "message", "details"}
    assert (
        sent > 500
        and len(answers) > 1
        and not answers.keys() - {200, 201, 202, 204, 400, 409, 413, 422}
    ), answers
    manual_retry.wait_for_background_jobs()
    # Whatever was accepted reads back as strict JSON: no NaN or Infinity anywhere.
    for path in ("/contacts", "/campaigns", "/templates", "/notifications", "/contacts/c-1"):
        text = api.get(path).get_data(as_text=True)
        json.loads(text, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    pytest.fail(f"{name} was stored and read back")
