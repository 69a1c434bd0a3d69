"""Settings → Account in Chromium: the sessions list, "sign out everywhere else", and a
password change that the next login needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LiveServer, log_in

NEW_PASSWORD = "a changed browser password"


def _problems(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    page.on("console", on_console)
    return problems


def test_sessions_list_sign_out_elsewhere_and_password_change(
    live_server: LiveServer, browser: Browser, browser_page: Page, artifacts_dir: Path
) -> None:
    page = browser_page
    problems = _problems(page)
    other_context = browser.new_context(user_agent="Second browser/1.0")
    other = other_context.new_page()
    try:
        log_in(other, live_server)
        log_in(page, live_server)

        page.get_by_role("link", name="Settings").click()
        page.get_by_role("link", name="Account").click()
        page.wait_for_url(f"{live_server.url}/settings/account")
        sessions = page.get_by_test_id("sessions")
        expect(sessions.locator("tbody tr")).to_have_count(2)
        expect(sessions).to_contain_text("Second browser/1.0")
        expect(sessions).to_contain_text("this browser")
        expect(page.get_by_test_id("password-form")).to_contain_text("at least 8 characters")
        page.screenshot(path=str(artifacts_dir / "account.png"), full_page=True)

        page.get_by_role("button", name="Sign out everywhere else").click()
        expect(page.get_by_role("status")).to_contain_text("Signed out everywhere else: 1")
        expect(sessions.locator("tbody tr")).to_have_count(1)
        other.goto(f"{live_server.url}/campaigns")
        other.wait_for_url(f"{live_server.url}/login**")

        form = page.get_by_test_id("password-form")
        form.get_by_label("Current password").fill("not the password")
        form.get_by_label("New password").fill(NEW_PASSWORD)
        form.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("alert")).to_contain_text("not your current password")

        form = page.get_by_test_id("password-form")
        form.get_by_label("Current password").fill(live_server.owner_password)
        form.get_by_label("New password").fill(NEW_PASSWORD)
        form.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("status")).to_contain_text("Your password was changed")

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(f"{live_server.url}/login")
        page.fill("input[name=email]", live_server.owner_email)
        page.fill("input[name=password]", live_server.owner_password)
        page.click("button[type=submit]")
        expect(page.get_by_role("alert")).to_contain_text("not right")
        log_in(page, live_server, password=NEW_PASSWORD)

        page.goto(f"{live_server.url}/settings/activity")
        log = page.get_by_test_id("activity")
        expect(log.locator('tr[data-kind="password.changed"]')).to_have_count(1)
        expect(log.locator('tr[data-kind="sessions.ended"]')).to_have_count(1)
        expect(log.locator('tr[data-kind="login"]')).to_have_count(3)
        page.get_by_label("Kind").select_option("password.changed")
        page.get_by_role("button", name="Filter").click()
        expect(log.locator("tbody tr")).to_have_count(1)
        expect(log).to_contain_text(live_server.owner_email)
        page.screenshot(path=str(artifacts_dir / "activity.png"), full_page=True)
        assert problems == []
    finally:
        other_context.close()
