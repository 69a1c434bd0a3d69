"""A draft saves without a URL; activating names what is missing beside each field, marks
the tabs, and each message goes away once its field is right — in Chromium."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, log_in


def test_activation_problems_beside_fields_and_cleared_when_fixed(
    live_server: LiveServer, browser_page: Page
) -> None:
    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, live_server)
    page.goto(f"{live_server.url}/campaigns/new")
    page.get_by_test_id("new-name").fill("Half done")
    page.get_by_test_id("create-campaign").click()
    page.get_by_test_id("tab-content").click()
    page.get_by_test_id("add-header").click()
    page.locator('[data-row="header"] [data-key="name"]').fill("X-Team")
    page.locator('[data-row="header"] [data-key="value"]').fill("growth")
    page.get_by_test_id("save").click()
    expect(page.locator("[data-save-state]")).to_have_text("Saved")  # no URL yet: a draft

    page.get_by_test_id("activate").click()
    box = page.get_by_test_id("errors-box")
    expect(box).to_contain_text("Not activated yet: 2 things to finish.")
    expect(box).to_contain_text("Content \u203a URL: the webhook needs a URL")
    expect(box).to_contain_text("Setup \u203a Events: name at least one event")
    expect(box).not_to_contain_text("webhook.url")
    expect(page.get_by_test_id("tab-setup")).to_have_class("has-error")
    expect(page.get_by_test_id("tab-content")).to_have_class("has-error")
    expect(page.locator('.field-error[data-error-for="trigger.events"]')).to_be_visible()

    page.get_by_test_id("tab-content").click()
    url_error = page.locator('.field-error[data-error-for="webhook.url"]')
    expect(url_error).to_be_visible()
    page.get_by_test_id("url").fill("http://127.0.0.1:9/{{ contact.id | upcase }}")
    expect(url_error).to_contain_text("unknown filter 'upcase' \u2014 did you mean 'upper'?")
    expect(url_error).to_contain_text("line 1, column")
    page.get_by_test_id("url").fill("http://127.0.0.1:9/{{ contact.id | upper }}")
    expect(url_error).to_have_count(0)  # fixed: gone without pressing anything
    expect(page.get_by_test_id("tab-content")).not_to_have_class("has-error")
    expect(box).to_contain_text("Not activated yet: 1 thing to finish.")

    page.get_by_test_id("tab-setup").click()
    page.get_by_test_id("event-patterns").fill("lead.create")
    expect(box).to_be_hidden()
    page.get_by_test_id("activate").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("active")
    assert problems == []
