"""Small things, in Chromium: a favicon (no 404 on any page), copy buttons for the API key
and the signing secret, the password minimum stated."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, log_in


def test_favicon_copy_buttons_and_password_minimum(
    live_server: LiveServer, browser_page: Page
) -> None:
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    log_in(page, live_server)
    icon = page.locator('link[rel="icon"]').get_attribute("href")
    assert page.request.get(live_server.url + icon).status == 200
    assert page.request.get(live_server.url + "/favicon.ico").status == 200

    page.goto(f"{live_server.url}/settings")
    page.get_by_label("Key name").fill("copy me")
    page.get_by_label("Key name").press("Enter")
    key = page.get_by_test_id("new-api-key").inner_text()
    page.get_by_test_id("copy-api-key").click()
    expect(page.get_by_test_id("copy-api-key")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == key
    expect(page.get_by_placeholder("Password, 8+ characters")).to_be_visible()

    page.goto(f"{live_server.url}/campaigns/new")
    page.get_by_test_id("new-name").fill("Secret copy")
    page.get_by_test_id("create-campaign").click()
    secret = page.locator("#revealed-secret").inner_text()
    assert secret.startswith("whsec_")
    page.get_by_test_id("copy-secret").click()
    expect(page.get_by_test_id("copy-secret")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert missing == []
