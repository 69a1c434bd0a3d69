"""Contacts in the builder, in Chromium: create one, find it, edit its attributes, and use
it as a campaign's test contact — the preview then renders with its attributes."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, log_in


def test_create_find_edit_and_use_as_test_contact(
    live_server: LiveServer, browser_page: Page
) -> None:
    status, campaign = live_server.api(
        "POST",
        "/campaigns",
        {
            "name": "Greeting",
            "trigger": {"type": "event", "events": ["lead.create"]},
            "webhook": {
                "url": "http://127.0.0.1:9/hi/{{ contact.first_name | default('x') }}",
            },
        },
    )
    assert status == 201, campaign
    for i in range(3):
        live_server.api("PUT", f"/contacts/other-{i}", {"attributes": {"plan": "free"}})
    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, live_server)

    page.get_by_role("link", name="Contacts", exact=True).click()
    page.get_by_test_id("new-contact").click()
    page.get_by_test_id("contact-external-id").fill("grace-1906")
    page.get_by_test_id("contact-attributes").fill('{"first_name": "Grace", "plan": "pro"')
    page.get_by_test_id("contact-create").click()
    expect(page.locator(".field-error")).to_contain_text("not valid JSON")
    page.get_by_test_id("contact-attributes").fill('{"first_name": "Grace", "plan": "pro"}')
    page.get_by_test_id("contact-create").click()
    expect(page.get_by_test_id("contact-title")).to_have_text("grace-1906")

    page.goto(f"{live_server.url}/contacts")
    expect(page.get_by_test_id("contact-row")).to_have_count(4)
    expect(page.get_by_test_id("contact-row").first).to_contain_text("grace-1906")
    page.get_by_test_id("contact-search").fill("PRO")
    page.get_by_test_id("contact-search").press("Enter")
    expect(page.get_by_test_id("contact-row")).to_have_count(1)
    page.get_by_role("link", name="grace-1906").click()

    page.get_by_text("Edit attributes").click()
    page.get_by_test_id("contact-attributes").fill(
        '{"first_name": "Grace", "last_name": "Hopper", "plan": "pro"}'
    )
    page.get_by_test_id("save-attributes").click()
    expect(page.get_by_test_id("contact-attributes-table")).to_contain_text("Hopper")

    page.get_by_test_id("test-campaign").select_option(label="Greeting (draft)")
    page.get_by_test_id("use-as-test").click()
    page.wait_for_url(f"{live_server.url}/campaigns/{campaign['id']}*")
    expect(page.get_by_test_id("panel-test")).to_be_visible()
    expect(page.get_by_test_id("test-contact")).to_have_value("grace-1906")
    expect(page.get_by_test_id("preview-url")).to_have_text("http://127.0.0.1:9/hi/Grace")
    assert problems == []
