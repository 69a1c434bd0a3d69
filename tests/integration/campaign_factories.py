"""Shared builders for the campaign, event and schedule tests."""

from __future__ import annotations

from typing import Any


def webhook(url: str = "http://127.0.0.1:9/hook", **overrides: Any) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "url": url,
        "method": "POST",
        "auth": {"type": "basic", "username": "api", "password": "s3cret"},
        "body": {
            "mode": "mapping",
            "fields": [
                {"name": "who", "source": "contact.external_id"},
                {"name": "plan", "source": "contact.plan", "fallback": "none"},
            ],
        },
    }
    channel.update(overrides)
    return channel


def event_campaign(
    api: Any,
    events: list[str],
    *,
    conditions: dict | None = None,
    activate: bool = True,
    name: str = "Leads",
    **extra: Any,
) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": "event", "events": events}
    if conditions:
        trigger["conditions"] = conditions
    body = {"name": name, "trigger": trigger, "webhook": extra.pop("webhook", webhook())}
    body.update(extra)
    response = api.post("/campaigns", json=body)
    assert response.status_code == 201, response.get_json()
    campaign = response.get_json()
    if activate:
        response = api.post(f"/campaigns/{campaign['id']}/activate")
        assert response.status_code == 200, response.get_json()
        campaign = response.get_json()
    return campaign


def send_event(api: Any, name: str, external_id: str = "c1", **fields: Any) -> dict[str, Any]:
    body = {"name": name, "contact": {"external_id": external_id}, **fields}
    if "attributes" in fields:
        body["contact"]["attributes"] = body.pop("attributes")
    response = api.post("/events", json=body)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["events"][0]
