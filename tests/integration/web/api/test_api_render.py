"""``POST /api/v1/render``: the request a channel would send, warnings, and 422s."""

from __future__ import annotations

import json
from typing import Any

import pytest

WEBHOOK = {
    "url": "https://api.example.com/leads/{{ contact.external_id | urlencode }}",
    "auth": {"type": "bearer", "token": "tok-{{ workspace.id }}"},
    "body": {
        "mode": "mapping",
        "fields": [
            {"name": "email", "source": "contact.email"},
            {"name": "score", "source": "event.properties.score", "type": "number", "fallback": 0},
        ],
    },
}


def test_render_with_attributes_and_event(api: Any) -> None:
    response = api.post(
        "/render",
        json={
            "webhook": WEBHOOK,
            "contact": {"external_id": "a/b", "attributes": {"email": "x@example.com"}},
            "event": {"name": "lead.create", "properties": {"score": "9"}},
            "campaign": {"id": "cmp_x", "name": "Preview"},
        },
    )
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    request = data["request"]
    assert request["url"] == "https://api.example.com/leads/a%2Fb"
    assert json.loads(request["body"]) == {"email": "x@example.com", "score": 9}
    assert {"name": "Authorization", "value": "Bearer ****"} in request["headers"]
    assert [w["variable"] for w in data["warnings"]] == ["contact.email"]


def test_stored_contact_and_missing_variable(api: Any) -> None:
    assert api.put("/contacts/lead-1", json={"attributes": {"plan": "pro"}}).status_code in (
        200,
        201,
    )
    response = api.post("/render", json={"webhook": WEBHOOK, "contact": {"external_id": "lead-1"}})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "render_error"
    assert error["details"]["variable"] == "contact.email"
    assert error["details"]["location"] == "body.fields[0].source"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"webhook": {**WEBHOOK, "url": "https://{{ contact.id"}}, 422),
        ({"webhook": {**WEBHOOK, "method": "FETCH"}}, 422),
        ({"webhook": WEBHOOK, "contact": {"external_id": "nobody"}}, 404),
        ({"webhook": "x"}, 422),
    ],
)
def test_render_refuses_bad_input(api: Any, body: dict, status: int) -> None:
    response = api.post("/render", json=body)
    assert response.status_code == status
    assert "error" in response.get_json()
