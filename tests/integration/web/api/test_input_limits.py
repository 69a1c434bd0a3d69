"""Hostile input at the API's edge (issue #14): deep nesting, overflowing numbers,
``occurred_at`` out of range, oversized names and patterns. Each is a 4xx with the error
envelope, nothing is stored, and what is stored always reads back as valid JSON."""

from __future__ import annotations

import json
import math

import pytest
from sqlalchemy.exc import StatementError

from engine.store import Database, contacts
from tests.conftest import ApiClient
from tests.integration.web.api.test_api_foundation import assert_envelope

HOOK = "http://127.0.0.1:9/hook"  # discard port; nothing is sent in these tests


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _event(properties: str = "{}", name: str = "order.paid", occurred_at: str | None = None):
    extra = f',"occurred_at":"{occurred_at}"' if occurred_at else ""
    return f'{{"name":"{name}","contact":{{"external_id":"c-1"}},"properties":{properties}{extra}}}'


def _post_raw(api: ApiClient, method: str, path: str, body: str):
    return api.request(method, path, data=body, content_type="application/json")


@pytest.mark.parametrize("depth", [65, 980, 5000, 100_000])
@pytest.mark.parametrize(
    ("method", "path", "wrap"),
    [
        ("POST", "/events", lambda deep: _event(deep)),
        ("POST", "/campaigns", lambda deep: f'{{"name":"x","trigger":{deep}}}'),
        ("POST", "/render", lambda deep: f'{{"webhook":{{"url":"{HOOK}"}},"contact":{deep}}}'),
        ("PUT", "/contacts/c-1", lambda deep: f'{{"attributes":{deep}}}'),
    ],
)
def test_deep_nesting_is_refused(api: ApiClient, method, path, wrap, depth) -> None:
    error = assert_envelope(
        _post_raw(api, method, path, wrap(_nested(depth))), 422, "validation_error"
    )
    assert "at most 64 levels" in error["message"]
    assert api.get("/contacts/c-1").status_code == 404


def test_nesting_within_the_limit_is_kept(api: ApiClient) -> None:
    # 64 levels in all: the body, attributes, and 62 more.
    response = _post_raw(api, "PUT", "/contacts/c-1", f'{{"attributes":{_nested(62)}}}')
    assert response.status_code == 201, response.get_data(as_text=True)


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1e309", "1" + "0" * 400, "-" + "9" * 310])
def test_numbers_that_overflow_a_double_are_refused(api: ApiClient, number: str) -> None:
    for method, path, body in [
        ("POST", "/events", _event(f'{{"score":{number}}}')),
        ("POST", "/events", f'{{"events":[{_event()},{_event(f"[{number}]")}]}}'),
        ("PUT", "/contacts/c-1", f'{{"attributes":{{"score":{number}}}}}'),
        (
            "POST",
            "/events",
            f'{{"name":"a","contact":{{"external_id":"c-1","attributes":{{"s":{number}}}}}}}',
        ),
    ]:
        error = assert_envelope(_post_raw(api, method, path, body), 422, "validation_error")
        assert "too large" in error["message"], error
    assert api.get("/contacts/c-1").status_code == 404


def test_large_but_finite_numbers_are_kept_and_read_back(api: ApiClient) -> None:
    body = '{"attributes":{"big":1.7976931348623157e308,"small":5e-324,"int":123456789012345678}}'
    assert _post_raw(api, "PUT", "/contacts/c-1", body).status_code == 201
    raw = api.get("/contacts/c-1").get_data(as_text=True)
    attributes = json.loads(raw, parse_constant=lambda c: pytest.fail(f"{c} in {raw}"))[
        "attributes"
    ]
    # PostgreSQL's jsonb writes the largest double out as a 309-digit integer: same number.
    assert float(attributes["big"]) == 1.7976931348623157e308
    assert attributes["small"] == 5e-324
    assert attributes["int"] == 123456789012345678


def test_nan_and_infinity_literals_are_not_json(api: ApiClient) -> None:
    for literal in ("NaN", "Infinity", "-Infinity"):
        body = f'{{"attributes":{{"x":{literal}}}}}'
        assert_envelope(_post_raw(api, "PUT", "/contacts/c-1", body), 400, "bad_request")


def test_the_store_refuses_non_finite_numbers_on_any_path(db: Database, workspace) -> None:
    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises((ValueError, StatementError)), db.transaction() as session:
            contacts.upsert_contact(session, workspace.id, "c-2", {"x": [value]})
        with db.transaction(write=False) as session:
            assert contacts.get_contact(session, workspace.id, "c-2") is None


@pytest.mark.parametrize(
    "occurred_at",
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00+00:01"],
)
def test_occurred_at_outside_the_storable_range_is_refused(api: ApiClient, occurred_at) -> None:
    error = assert_envelope(
        _post_raw(api, "POST", "/events", _event(occurred_at=occurred_at)), 422, "validation_error"
    )
    assert "occurred_at" in error["details"], error
    batch = f'{{"events":[{_event()},{_event(occurred_at=occurred_at)}]}}'
    error = assert_envelope(_post_raw(api, "POST", "/events", batch), 422, "validation_error")
    assert "events[1].occurred_at" in error["details"], error
    assert api.get("/contacts/c-1").status_code == 404


def test_occurred_at_at_the_ends_of_the_range_is_kept(api: ApiClient) -> None:
    for occurred_at in (
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59+01:00",
    ):
        response = _post_raw(api, "POST", "/events", _event(occurred_at=occurred_at))
        assert response.status_code == 202, response.get_data(as_text=True)


def test_event_names_and_patterns_have_segment_limits(api: ApiClient) -> None:
    long_name = ".".join(["s"] * 65)
    error = assert_envelope(
        _post_raw(api, "POST", "/events", _event(name=long_name)), 422, "validation_error"
    )
    assert error["details"]["name"] == ["must have at most 64 segments"]
    ok = _post_raw(api, "POST", "/events", _event(name=".".join(["s"] * 64)))
    assert ok.status_code == 202
    for events, path, message in [
        ([".".join(["**"] * 33)], "trigger.events[0]", "must have at most 32 segments"),
        (["a"] * 101, "trigger.events", "at most 100 patterns"),
    ]:
        response = api.post(
            "/campaigns",
            json={
                "name": "x",
                "trigger": {"type": "event", "events": events},
                "webhook": {"url": HOOK},
            },
        )
        error = assert_envelope(response, 422, "validation_error")
        assert message in error["details"][path], error
