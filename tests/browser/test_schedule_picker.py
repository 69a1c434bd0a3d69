"""The schedule picker makes the trigger a cron expert would write, in Chromium."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, log_in


def _trigger(server: LiveServer, campaign_id: str) -> dict:
    status, body = server.api("GET", f"/campaigns/{campaign_id}")
    assert status == 200, body
    return body["trigger"]


def _save(page: Page) -> None:
    page.get_by_test_id("save").click()
    expect(page.locator("[data-save-state]")).to_have_text("Saved")


def test_picker_kinds_make_the_right_trigger(live_server: LiveServer, browser_page: Page) -> None:
    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, live_server)
    page.goto(f"{live_server.url}/campaigns/new")
    page.get_by_test_id("new-name").fill("Digest")
    page.locator('input[name="trigger_type"][value="schedule"]').check()
    page.get_by_test_id("create-campaign").click()
    campaign_id = page.url.split("/campaigns/")[1].split("#")[0]

    kind = page.get_by_test_id("schedule-kind")
    expect(kind).to_have_value("weekly")  # a new schedule: Mondays at 09:00
    kind.select_option("weekly")
    boxes = page.get_by_test_id("schedule-weekdays")
    boxes.get_by_label("Mon").uncheck()
    expect(page.get_by_test_id("schedule-preview")).to_contain_text("Choose at least one day")
    boxes.get_by_label("Mon").check()
    boxes.get_by_label("Wed").check()
    page.get_by_test_id("schedule-time").fill("07:30")
    page.get_by_test_id("schedule-timezone").fill("Europe/Dublin")
    expect(page.get_by_test_id("schedule-preview")).to_contain_text(
        "every Monday and Wednesday at 07:30 (Europe/Dublin)"
    )
    expect(page.get_by_test_id("schedule-preview")).to_contain_text("next:")
    _save(page)
    assert _trigger(live_server, campaign_id) == {
        "type": "schedule",
        "cron": "30 7 * * 1,3",
        "timezone": "Europe/Dublin",
    }

    kind.select_option("monthly")
    page.get_by_test_id("schedule-monthday").fill("15")
    _save(page)
    assert _trigger(live_server, campaign_id)["cron"] == "30 7 15 * *"

    kind.select_option("daily")
    page.get_by_test_id("schedule-time").fill("18:05")
    _save(page)
    assert _trigger(live_server, campaign_id)["cron"] == "5 18 * * *"

    kind.select_option("advanced")  # starts from what was picked
    expect(page.get_by_test_id("schedule-cron")).to_have_value("5 18 * * *")
    page.get_by_test_id("schedule-cron").fill("*/15 9-17 * * 1-5")
    _save(page)
    assert _trigger(live_server, campaign_id)["cron"] == "*/15 9-17 * * 1-5"

    kind.select_option("once")
    page.get_by_test_id("schedule-at").fill("2030-01-02T09:00")
    _save(page)
    trigger = _trigger(live_server, campaign_id)
    assert trigger["at"].startswith("2030-01-02T09:00") and "cron" not in trigger

    page.reload()
    expect(page.get_by_test_id("schedule-kind")).to_have_value("once")
    assert problems == []
