"""Finding and fixing a failing webhook from the notifications log, in Chromium.

A campaign posts to a loopback receiver that refuses the token with 401. The log shows the
failure; the detail sheet shows the receiver's 401 body and the hint about the auth
settings; the marketer fixes the token, presses "Retry now", and the notification is
delivered with the same webhook-id.
"""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Page, expect
from werkzeug.wrappers import Request, Response

from tests.browser.conftest import LiveServer, log_in

GOOD_TOKEN = "fresh-token-2026"
WAIT_SECONDS = 20


def _answer(request: Request) -> Response:
    if request.headers.get("Authorization") == f"Bearer {GOOD_TOKEN}":
        return Response("ok", status=200)
    return Response('{"error": "invalid api key"}', status=401, content_type="application/json")


def _wait_for_status(server: LiveServer, notification_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _, body = server.api("GET", f"/notifications/{notification_id}")
        if body.get("status") == status:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{notification_id} is {body.get('status')}, not {status}")


def test_401_is_explained_fixed_and_retried(
    live_server: LiveServer, browser_page: Page, receiver: Any
) -> None:
    receiver.expect_request("/hook").respond_with_handler(_answer)
    webhook = {
        "url": receiver.url_for("/hook"),
        "method": "POST",
        "auth": {"type": "bearer", "token": "expired-token"},
        "body": {"mode": "default"},
        "retry": {"policy": "none"},
    }
    status, campaign = live_server.api(
        "POST",
        "/campaigns",
        {
            "name": "CRM sync",
            "trigger": {"type": "event", "events": ["lead.create"]},
            "webhook": webhook,
        },
    )
    assert status == 201, campaign
    status, body = live_server.api("POST", f"/campaigns/{campaign['id']}/activate")
    assert status == 200, body
    status, body = live_server.api(
        "POST",
        "/events",
        {
            "name": "lead.create",
            "contact": {"external_id": "lead-401"},
        },
    )
    assert status == 202, body
    notification_id = body["events"][0]["notifications"][0]
    if isinstance(notification_id, dict):
        notification_id = notification_id["id"]
    _wait_for_status(live_server, notification_id, "failed")

    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, live_server)
    page.goto(f"{live_server.url}/notifications?status=failed")
    row = page.locator(f'tr[data-id="{notification_id}"]')
    expect(row).to_contain_text("failed")
    expect(row).to_contain_text("401")
    expect(row).to_contain_text("lead-401")
    row.locator("a").first.click()

    expect(page.locator("#status")).to_have_text("failed")
    expect(page.locator("#attempt-1")).to_contain_text("HTTP 401")
    expect(page.locator("#attempt-1 .response-body")).to_contain_text('"error": "invalid api key"')
    expect(page.locator("#explanation")).to_contain_text("the receiver refused the credentials")
    expect(page.locator("#explanation")).to_contain_text("check the auth settings of this campaign")
    expect(page.get_by_text("Bearer ****").first).to_be_visible()

    status, body = live_server.api(
        "PATCH",
        f"/campaigns/{campaign['id']}",
        {
            "webhook": {"auth": {"type": "bearer", "token": GOOD_TOKEN}},
        },
    )
    assert status == 200, body
    page.get_by_role("button", name="Retry now").click()
    expect(page.get_by_text("Queued for sending now.")).to_be_visible()

    delivered = _wait_for_status(live_server, notification_id, "delivered")
    assert [a["status_code"] for a in delivered["attempts"]] == [401, 200]
    page.reload()
    expect(page.locator("#status")).to_have_text("delivered")
    expect(page.locator("#attempt-2")).to_contain_text("HTTP 200")
    sent = [request for request, _ in receiver.log]
    assert {r.headers["webhook-id"] for r in sent} == {notification_id}
    assert problems == []
