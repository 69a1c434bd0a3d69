"""The main pages at 1280 and 390 px, in Chromium: nothing scrolls sideways at phone
width (editor, log, detail), mapping rows stack with their labels, the log's filters fold
behind a "Filters" button. Screenshots of every page land in tests/browser/artifacts/."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, log_in

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


WIDE_ELEMENTS = """() => Array.from(document.querySelectorAll("body *"))
  .filter((el) => el.getBoundingClientRect().right > 391)
  .slice(0, 5)
  .map((el) => {
    const right = Math.round(el.getBoundingClientRect().right);
    return `${el.tagName.toLowerCase()}.${el.className} (${right}px)`;
  })"""


def _no_sideways_scroll(page: Page, what: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(WIDE_ELEMENTS) if width > 390 else []
    assert width <= 390, f"{what} is {width}px wide at phone width: {wide}"


def _seed(server: LiveServer, receiver: Any) -> tuple[str, str, str, str]:
    receiver.expect_request("/phone").respond_with_json(
        {"error": "a rather long message " * 8}, 401
    )
    long_id = "contact-with-a-really-long-external-identifier-0123456789@example.com"
    status, campaign = server.api(
        "POST",
        "/campaigns",
        {
            "name": "Phone-sized campaign with a long name for wrapping",
            "trigger": {"type": "event", "events": ["lead.status.update.very.long.name"]},
            "webhook": {
                "url": receiver.url_for("/phone") + "?who={{ contact.external_id | urlencode }}",
                "headers": [{"name": "X-Very-Long-Header-Name", "value": "{{ campaign.name }}"}],
                "body": {
                    "mode": "mapping",
                    "fields": [
                        {"name": "lead.email", "source": "contact.email", "fallback": "x@y.z"},
                        {
                            "name": "lead.score",
                            "source": "event.properties.score",
                            "type": "number",
                        },
                        {"name": "source", "value": "hookcast"},
                    ],
                },
                "retry": {"schedule": [3600], "max_attempts": 3},
            },
        },
    )
    assert status == 201, campaign
    assert server.api("POST", f"/campaigns/{campaign['id']}/activate")[0] == 200
    status, body = server.api(
        "POST",
        "/events",
        {
            "name": "lead.status.update.very.long.name",
            "contact": {"external_id": long_id, "attributes": {"email": "a" * 40 + "@example.com"}},
            "properties": {"score": 7},
        },
    )
    assert status == 202, body
    notification_id = body["events"][0]["notifications"][0]
    deadline = time.monotonic() + 20
    while server.api("GET", f"/notifications/{notification_id}")[1]["status"] != "retrying":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    status, schedule = server.api(
        "POST",
        "/campaigns",
        {
            "name": "Monday digest",
            "trigger": {"type": "schedule", "cron": "30 7 * * 1,3", "timezone": "Europe/Dublin"},
            "webhook": {"url": receiver.url_for("/digest")},
        },
    )
    assert status == 201, schedule
    assert server.api("POST", f"/campaigns/{schedule['id']}/activate")[0] == 200
    return campaign["id"], notification_id, long_id, schedule["id"]


def test_phone_width_and_screenshots(
    live_server: LiveServer, browser_page: Page, receiver: Any, artifacts_dir: Path
) -> None:
    campaign_id, notification_id, contact_id, schedule_id = _seed(live_server, receiver)
    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, live_server)
    base = live_server.url
    pages = {
        "campaigns": "/campaigns",
        "editor-setup": f"/campaigns/{campaign_id}#setup",
        "editor-content": f"/campaigns/{campaign_id}#content",
        "editor-test": f"/campaigns/{campaign_id}#test",
        "log": "/notifications",
        "detail": f"/notifications/{notification_id}",
        "health": f"/campaigns/{campaign_id}/health",
        "schedule-editor": f"/campaigns/{schedule_id}#setup",
        "schedule-health": f"/campaigns/{schedule_id}/health",
        "contacts": "/contacts",
        "contact": f"/contacts/{contact_id}",
        "settings": "/settings",
    }
    for size_name, size in (("1280", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(size)
        for name, path in pages.items():
            page.goto(base + path)
            if "#" in path:  # only the hash changed: load the page again on that tab
                page.reload()
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(artifacts_dir / f"{name}-{size_name}.png"), full_page=True)
            if size is PHONE:  # every page, not only the editor, the log and the detail
                _no_sideways_scroll(page, name)

    page.set_viewport_size(PHONE)
    page.goto(f"{base}/campaigns/{campaign_id}#content")
    page.locator('[data-rows="field"]').screenshot(path=str(artifacts_dir / "mapping-390.png"))
    first_row = page.locator('[data-row="field"]').first
    for label in ("Field name", "Source", "Variable", "Fallback", "Type"):
        expect(first_row.get_by_text(label, exact=True)).to_be_visible()
    name_box = first_row.locator('[data-key="name"]').bounding_box()
    fallback_box = first_row.locator('[data-key="fallback"]').bounding_box()
    assert fallback_box["y"] > name_box["y"]  # stacked, not squeezed into one line

    page.goto(f"{base}/notifications")
    toggle = page.get_by_test_id("filters-toggle")
    expect(toggle).to_be_visible()
    expect(page.locator("#log-filters")).to_be_hidden()
    toggle.click()
    expect(page.locator("#log-filters")).to_be_visible()
    page.locator('#log-filters select[name="status"]').select_option("retrying")
    page.locator("#log-filters").get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("filters-toggle")).to_have_text("Filters (1 on)")
    expect(page.locator(f'tr[data-id="{notification_id}"]')).to_be_visible()
    _no_sideways_scroll(page, "the filtered log")
    page.screenshot(path=str(artifacts_dir / "log-filtered-390.png"))
    page.goto(f"{base}/notifications/{notification_id}")
    page.screenshot(path=str(artifacts_dir / "detail-top-390.png"))
    page.locator("#attempt-1").screenshot(path=str(artifacts_dir / "detail-attempt-390.png"))

    page.set_viewport_size(DESKTOP)
    page.goto(f"{base}/notifications")
    expect(page.get_by_test_id("filters-toggle")).to_be_hidden()
    expect(page.locator("#log-filters")).to_be_visible()
    assert problems == []
