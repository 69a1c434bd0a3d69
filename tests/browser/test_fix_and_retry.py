"""Fixing a campaign reaches the notifications waiting to retry, in Chromium.

The receiver answers 404 on the mistyped path and 200 on the right one. Four notifications
fail once and wait an hour for their next retry. The marketer follows the detail's link to
the editor and fixes the URL; then one is retried from its detail sheet ("Retry now"), one
by a bulk retry from the filtered log, and the last two by the editor's "Apply the new
recipe" banner. Every one is delivered with its own webhook-id, and the first attempt still
shows the request it sent to the wrong URL.
"""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Page, expect
from werkzeug.wrappers import Response

from tests.browser.conftest import LiveServer, log_in

WAIT_SECONDS = 20


def _statuses(server: LiveServer, campaign_id: str) -> dict[str, str]:
    _, body = server.api("GET", f"/notifications?campaign_id={campaign_id}")
    return {n["contact_external_id"]: n["status"] for n in body["data"]}


def _wait(server: LiveServer, campaign_id: str, expected: dict[str, str]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        seen = _statuses(server, campaign_id)
        if all(seen.get(k) == v for k, v in expected.items()):
            return
        time.sleep(0.1)
    raise AssertionError(f"{seen} is not {expected}")


def test_fix_once_then_retry_single_bulk_and_from_the_editor(
    live_server: LiveServer, browser_page: Page, receiver: Any
) -> None:
    receiver.expect_request("/tpyo").respond_with_handler(lambda _: Response("no", status=404))
    receiver.expect_request("/fixed").respond_with_handler(lambda _: Response("ok", status=200))
    status, campaign = live_server.api(
        "POST",
        "/campaigns",
        {
            "name": "Fix me",
            "trigger": {"type": "event", "events": ["lead.fix"]},
            "webhook": {
                "url": receiver.url_for("/tpyo"),
                "retry": {"schedule": [3600], "max_attempts": 5},
            },
        },
    )
    assert status == 201, campaign
    cid = campaign["id"]
    assert live_server.api("POST", f"/campaigns/{cid}/activate")[0] == 200
    contacts = ["fix-1", "fix-2", "fix-3", "fix-4"]
    status, body = live_server.api(
        "POST",
        "/events",
        {"events": [{"name": "lead.fix", "contact": {"external_id": c}} for c in contacts]},
    )
    assert status == 202, body
    _wait(live_server, cid, dict.fromkeys(contacts, "retrying"))
    ids = {
        n["contact_external_id"]: n["id"]
        for n in live_server.api("GET", f"/notifications?campaign_id={cid}")[1]["data"]
    }

    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, live_server)

    # The detail of a retrying notification: Retry now, Stop retrying, a way to the editor.
    page.goto(f"{live_server.url}/notifications/{ids['fix-1']}")
    expect(page.locator("#status")).to_have_text("retrying")
    expect(page.get_by_role("button", name="Stop retrying")).to_be_visible()
    expect(page.get_by_role("button", name="Retry now")).to_be_visible()
    page.locator("#edit-campaign").click()
    page.wait_for_url(f"{live_server.url}/campaigns/{cid}")
    banner = page.get_by_test_id("retry-banner")
    expect(banner).to_contain_text("4 notifications of this campaign are waiting to retry")

    # Fix the URL in the editor and save.
    page.get_by_test_id("tab-content").click()
    page.get_by_test_id("url").fill(receiver.url_for("/fixed"))
    page.get_by_test_id("save").click()
    expect(page.locator("[data-save-state]")).to_have_text("Saved")
    expect(page.get_by_test_id("apply-recipe")).to_have_text(
        "Apply the new recipe to the 4 notifications waiting to retry"
    )

    # One from its detail sheet.
    page.goto(f"{live_server.url}/notifications/{ids['fix-1']}")
    page.get_by_role("button", name="Retry now").click()
    expect(page.get_by_text("Queued for sending now.")).to_be_visible()
    _wait(live_server, cid, {"fix-1": "delivered"})
    page.reload()
    expect(page.locator("#status")).to_have_text("delivered")
    first = page.locator("#attempt-1")
    expect(first).to_contain_text("HTTP 404")
    expect(first.locator("details.attempt-request")).to_contain_text("/tpyo")
    expect(page.locator("#attempt-2")).to_contain_text("HTTP 200")

    # One by a bulk retry from the filtered log.
    page.goto(f"{live_server.url}/notifications?status=retrying&contact=fix-2")
    page.locator("#bulk-retry-link").click()
    expect(page.locator("#bulk-count")).to_contain_text("1 notification matches these filters")
    expect(page.locator("#bulk-matches tbody tr")).to_have_count(1)
    expect(page.locator("#bulk-matches")).to_contain_text("fix-2")
    page.get_by_role("button", name="Retry 1 notification").click()
    expect(page.locator("#bulk-outcomes")).to_have_text("Since the retry: 1 delivered.")

    # The last two from the editor's banner.
    page.goto(f"{live_server.url}/campaigns/{cid}")
    page.get_by_test_id("apply-recipe").click()
    page.wait_for_url("**/notifications/jobs/*")
    expect(page.locator("#bulk-outcomes")).to_have_text("Since the retry: 2 delivered.")
    _wait(live_server, cid, dict.fromkeys(contacts, "delivered"))
    page.goto(f"{live_server.url}/campaigns/{cid}")
    expect(page.get_by_test_id("retry-banner")).to_be_hidden()

    fixed = [r for r, _ in receiver.log if r.path == "/fixed"]
    assert sorted(r.headers["webhook-id"] for r in fixed) == sorted(ids.values())
    assert problems == []
