"""The channel's delivery control in the Content tab, in Chromium against ``hookcast serve``.

Set "Max concurrent requests" and "Rate limit", save, reload and see them kept, read them
back over the API, then a located error and "No limit". Screenshots of the Delivery card go
to ``tests/browser/artifacts/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, log_in

HOOK = "http://127.0.0.1:9/hook"  # the discard port: nothing is sent in this test


def _watch_console(page: Page) -> list[str]:
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", on_console)
    return problems


def _open_content(page: Page, server: LiveServer, campaign_id: str) -> Any:
    page.goto(f"{server.url}/campaigns/{campaign_id}")
    page.get_by_test_id("tab-content").click()
    expect(page.get_by_test_id("panel-content")).to_be_visible()
    return page.locator("section", has=page.locator("#del-h"))


def _save(page: Page) -> None:
    page.get_by_test_id("save").click()
    expect(page.locator("[data-save-state]")).to_have_text("Saved")


def test_max_concurrency_and_rate_limit_are_saved_and_kept(
    live_server: LiveServer, browser_page: Page, artifacts_dir: Path
) -> None:
    status, campaign = live_server.api(
        "POST",
        "/campaigns",
        {
            "name": "Fragile CRM",
            "trigger": {"type": "event", "events": ["lead.created"]},
            "webhook": {"url": HOOK},
        },
    )
    assert status == 201, campaign
    page = browser_page
    problems = _watch_console(page)
    log_in(page, live_server)

    delivery = _open_content(page, live_server, campaign["id"])
    concurrency = page.get_by_test_id("max-concurrency")
    per = page.get_by_test_id("rate-limit-per")
    requests = page.get_by_test_id("rate-limit-requests")
    expect(concurrency).to_have_value("10")
    expect(per).to_have_value("none")
    expect(requests).to_be_hidden()  # "No limit" needs no number
    expect(delivery).to_contain_text(
        "Requests in flight to this endpoint at once, across all workers. Lower it for "
        "receivers that cannot take parallel requests."
    )
    expect(delivery).to_contain_text(
        "At most N requests per second/minute/hour across all workers; notifications over "
        "the limit wait their turn — they never fail or use up an attempt."
    )

    concurrency.fill("3")
    per.select_option("minute")
    expect(requests).to_be_visible()
    requests.fill("5")
    delivery.screenshot(path=str(artifacts_dir / "delivery-control.png"))
    _save(page)

    page.reload()
    delivery = _open_content(page, live_server, campaign["id"])
    expect(concurrency).to_have_value("3")
    expect(per).to_have_value("minute")
    expect(requests).to_have_value("5")
    status, shown = live_server.api("GET", f"/campaigns/{campaign['id']}")
    assert status == 200
    assert shown["webhook"]["max_concurrency"] == 3
    assert shown["webhook"]["rate_limit"] == {"requests": 5, "per": "minute"}

    # A bad number is refused beside the rate limit, and nothing changes.
    requests.fill("0")
    page.get_by_test_id("save").click()
    error = page.locator('.field-error[data-error-for="webhook.rate_limit.requests"]')
    expect(error).to_be_visible()
    expect(error).to_contain_text("greater than or equal to 1")
    delivery.screenshot(path=str(artifacts_dir / "delivery-control-error.png"))
    assert live_server.api("GET", f"/campaigns/{campaign['id']}")[1]["webhook"]["rate_limit"] == {
        "requests": 5,
        "per": "minute",
    }

    # "No limit" saves a null rate limit; the concurrency stays.
    per.select_option("none")
    expect(requests).to_be_hidden()
    _save(page)
    shown = live_server.api("GET", f"/campaigns/{campaign['id']}")[1]["webhook"]
    assert shown["rate_limit"] is None and shown["max_concurrency"] == 3
    assert problems == []
