"""Every refusal by the private-network guard ends as ``ssrf_blocked`` (issue #14): a
rendered URL naming a private address, in any spelling, fails its notification with
``ssrf_blocked`` and the reason, at ingestion, on a test send and on a retry by hand.
Nothing is ever sent: the render refuses before any connection exists."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from engine.store.models import Attempt, Notification
from tests.conftest import ApiClient
from tests.integration.factories import event_campaign, send_event, webhook

TEMPLATED = "http://{{ contact.host }}:9/hook"

PRIVATE_HOSTS = [
    "10.0.0.1",
    "169.254.169.254",
    "0x0a.1",
    "[::10.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[64:ff9b::a00:1]",
    "[2002:a00:1::1]",
    "[fd00::1]",
]


@pytest.mark.parametrize("host", PRIVATE_HOSTS)
def test_a_rendered_private_host_ends_as_ssrf_blocked(api: ApiClient, db: Any, host: str) -> None:
    event_campaign(api, ["a"], webhook=webhook(TEMPLATED))
    send_event(api, "a", attributes={"host": host})
    with db.session() as session:
        [row] = session.scalars(select(Notification))
        [attempt] = session.scalars(select(Attempt))
    assert (row.status, row.error_code, row.attempt_count) == ("failed", "ssrf_blocked", 1)
    assert "private-network guard" in row.error_message and "url" in row.error_message
    assert (attempt.error_code, attempt.status_code) == ("ssrf_blocked", None)
    detail = api.get(f"/notifications/{row.id}").get_json()
    assert detail["error"]["code"] == "ssrf_blocked"


def test_test_send_and_render_report_ssrf_blocked(api: ApiClient) -> None:
    campaign = event_campaign(api, ["a"], webhook=webhook(TEMPLATED), activate=False)
    body = api.post(
        f"/campaigns/{campaign['id']}/test", json={"contact": {"attributes": {"host": "10.1.2.3"}}}
    ).get_json()
    assert body["error"]["code"] == "ssrf_blocked"
    rendered = api.post(
        "/render",
        json={"webhook": webhook(TEMPLATED), "contact": {"attributes": {"host": "[::10.1.2.3]"}}},
    )
    assert rendered.status_code == 422
    assert "ssrf_blocked" in rendered.get_data(as_text=True)


def test_a_literal_private_url_is_refused_at_save(api: ApiClient) -> None:
    response = api.post(
        "/campaigns",
        json={
            "name": "x",
            "trigger": {"type": "event", "events": ["a"]},
            "webhook": webhook("http://[64:ff9b::a00:1]/hook"),
        },
    )
    assert response.status_code == 422
    assert "private" in str(response.get_json()["error"]["details"])


def test_a_retry_by_hand_that_renders_a_private_host_ends_as_ssrf_blocked(
    api: ApiClient, db: Any
) -> None:
    event_campaign(api, ["a"], webhook=webhook(TEMPLATED))
    send_event(api, "a", "c-1", attributes={"host": "hooks.example.com"})
    with db.session() as session:
        [row] = session.scalars(select(Notification))
    assert row.status == "pending"  # a name: rendered, due (no worker runs: nothing is sent)
    send_event(api, "b", "c-1", attributes={"host": "[::ffff:10.0.0.1]"})
    api.post(f"/notifications/{row.id}/cancel")
    assert api.post(f"/notifications/{row.id}/retry").status_code in (200, 202)
    with db.session() as session:
        row = session.get(Notification, row.id)
    assert (row.status, row.error_code) == ("failed", "ssrf_blocked")
