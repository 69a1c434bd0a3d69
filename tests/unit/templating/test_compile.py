"""A recipe compiled once: static problems become failures in place, errors keep recipe order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.templating.compile import Failure, compile_plan
from engine.templating.errors import RenderError
from engine.templating.render import compile_channel
from engine.templating.request import RenderSettings
from engine.templating.variables import build_variables

URL = "https://hooks.example.com/in"
SETTINGS = RenderSettings()
MISSING = "contact.nope is missing and has no fallback (add | default(...))"


def variables() -> dict[str, Any]:
    return build_variables(
        contact={"id": "con_1", "external_id": "lead-1", "attributes": {"first_name": "Ann"}},
        event=None,
        campaign={"id": "cmp_1", "name": "Spring"},
        workspace={"id": "wsp_1", "name": "Acme"},
        notification_id="ntf_1",
        now=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
    )


def first_error(channel: dict[str, Any]) -> tuple[str, str | None, str | None]:
    with pytest.raises(RenderError) as caught:
        compile_channel(channel, SETTINGS).render(variables())
    return caught.value.message, caught.value.location, caught.value.variable


def test_a_static_problem_becomes_a_failure_in_its_place_and_compiling_stops_there() -> None:
    plan = compile_plan(
        {
            "url": URL,
            "headers": [
                {"name": "X-Name", "value": "{{ contact.first_name }}"},
                {"name": "Host", "value": "x"},
            ],
            "body": {"mode": "raw", "template": "{{ never.compiled"},
        },
        SETTINGS,
    )
    assert plan.url == URL
    assert type(plan.headers[0][1]) is tuple  # a compiled template
    message = "Host is set by Hookcast and cannot be a custom header"
    assert plan.headers[1][1] == Failure(message, "headers[1].name")
    assert (plan.mode, plan.raw) == ("default", "")  # the body after the failure is not read


def test_static_texts_are_checked_when_compiling_and_need_no_variables() -> None:
    plan = compile_plan(
        {
            "url": f" {URL} ",
            "headers": [{"name": "X-Source", "value": " hookcast "}],
            "auth": {"type": "bearer", "token": "t-1"},
            "body": {"mode": "mapping", "fields": [{"name": "n", "value": "7", "type": "number"}]},
        },
        SETTINGS,
    )
    assert plan.url == URL
    assert plan.headers == [
        ("X-Source", "hookcast", "headers[0].value"),
        ("Authorization", "Bearer t-1", ""),
    ]
    assert plan.auth_type == "none"  # the credentials became a constant header
    assert not plan.needs_variables and plan.failure is None


def test_every_render_of_a_failing_recipe_raises_its_own_error() -> None:
    compiled = compile_channel({"url": URL, "method": "TRACE"}, SETTINGS)
    errors = []
    for _ in range(2):
        with pytest.raises(RenderError) as caught:
            compiled.render(variables())
        errors.append(caught.value)
    assert errors[0] is not errors[1]
    assert errors[0].as_dict() == errors[1].as_dict()


def recipe(**parts: Any) -> dict[str, Any]:
    return {"url": URL, **parts}


def mapping(*fields: Any) -> dict[str, Any]:
    return recipe(body={"mode": "mapping", "fields": list(fields)})


NOPE_HEADER = [{"name": "X", "value": "{{ contact.nope }}"}]
NO_SOURCE = ("contact.nope is missing and has no fallback", "body.fields[0].source", "contact.nope")
ORDER_CASES = [
    # an earlier error that depends on data comes before a later static problem
    (recipe(url="{{ contact.nope }}", auth="x"), (MISSING, "url", "contact.nope")),
    (recipe(auth="x", headers=[{"name": "Host"}]), ("must be an object", "auth", None)),
    (recipe(auth={"type": "magic"}, headers=NOPE_HEADER),
     (MISSING, "headers[0].value", "contact.nope")),
    (recipe(auth={"type": "magic"}),
     ("auth.type must be none, basic or bearer", "auth.type", None)),
    (recipe(headers=NOPE_HEADER, auth={"type": "basic", "username": "a:b", "password": "p"}),
     (MISSING, "headers[0].value", "contact.nope")),
    (recipe(auth={"type": "basic", "username": "a:b", "password": "p"}),
     ("a basic auth username cannot contain ':' or control characters", "auth.username", None)),
    (recipe(auth={"type": "basic", "username": "{{ contact.nope }}", "password": 7}),
     (MISSING, "auth.username", "contact.nope")),
    (recipe(auth={"type": "basic", "username": "{{ contact.id }}", "password": 7}),
     ("must be text", "auth.password", None)),
    (recipe(method="GET", auth={"type": "bearer", "token": "{{ contact.nope }}"},
            body={"mode": "raw", "template": "x"}),
     (MISSING, "auth.token", "contact.nope")),
    (recipe(method="GET", body={"mode": "raw", "template": "x"}),
     ("a GET request has no body; use mapping fields instead", "body.mode", None)),
    (recipe(body="x"), ("must be an object", "body", None)),
    (recipe(body={"mode": "weird"}),
     ("body.mode must be default, mapping or raw", "body.mode", None)),
    (recipe(body={"mode": "mapping", "fields": "x"}),
     ("mapping mode needs a list of fields", "body.fields", None)),
    # a field's value is evaluated (and cast) before its name is checked
    (mapping({"name": "", "source": "contact.nope"}), NO_SOURCE),
    (mapping({"name": "", "source": "contact.first_name"}),
     ("a field name must be non-empty, like lead.score", "body.fields[0].name", None)),
    (mapping({"name": "a", "source": "contact.nope"}, 5), NO_SOURCE),
    (mapping({"name": "a", "value": "1"}, 5), ("must be an object", "body.fields[1]", None)),
    (mapping({"name": "a", "source": "not a path"}),
     ("source must be a variable path like contact.email", "body.fields[0].source", None)),
    (mapping({"name": "a", "value": "{{ x"}),
     ("template error on line 1: unexpected end of template, expected 'end of print statement'.",
      "body.fields[0].value", None)),
]  # fmt: skip


@pytest.mark.parametrize(("channel", "expected"), ORDER_CASES)
def test_errors_come_in_recipe_order(channel: dict[str, Any], expected: tuple) -> None:
    assert first_error(channel) == expected
