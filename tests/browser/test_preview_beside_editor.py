"""The preview beside the Content editor, in Chromium: side by side from 1200 px, below on
a phone; live as you type; when it cannot render, the problem stands beside its field
with a "did you mean" from the workspace's contacts, and the warnings stay."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, log_in


def test_preview_updates_beside_the_content_editor(
    live_server: LiveServer, browser_page: Page, artifacts_dir: Path
) -> None:
    live_server.api("PUT", "/contacts/lin-1", {"attributes": {"first_name": "Lin", "tier": "gold"}})
    status, campaign = live_server.api(
        "POST",
        "/campaigns",
        {
            "name": "Preview",
            "trigger": {"type": "event", "events": ["lead.create"]},
            "audience": {"test_contacts": ["lin-1"]},
            "webhook": {
                "url": "http://127.0.0.1:9/start",
                "headers": [{"name": "X-Tier", "value": "{{ contact.tier }}"}],
            },
        },
    )
    assert status == 201, campaign
    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, live_server)
    page.goto(f"{live_server.url}/campaigns/{campaign['id']}#content")

    url_field = page.get_by_test_id("url")
    preview = page.get_by_test_id("preview")
    expect(preview).to_be_visible()
    expect(page.get_by_test_id("preview-url")).to_have_text("http://127.0.0.1:9/start")
    field_box, preview_box = url_field.bounding_box(), preview.bounding_box()
    assert preview_box["x"] >= field_box["x"] + field_box["width"], (field_box, preview_box)
    expect(page.get_by_test_id("preview-with")).to_have_value("lin-1")

    url_field.fill("http://127.0.0.1:9/hello/{{ contact.first_name }}")
    expect(page.get_by_test_id("preview-url")).to_have_text("http://127.0.0.1:9/hello/Lin")
    # The sample data has no tier: the header cannot render, and the pane says so.
    page.get_by_test_id("preview-with").select_option(index=0)
    expect(page.get_by_test_id("preview-error")).to_contain_text("contact.tier is missing")
    expect(page.get_by_test_id("preview-error")).to_contain_text(
        "Content \u203a Header 1 \u203a value"
    )
    page.get_by_test_id("preview-with").select_option("lin-1")
    expect(page.get_by_test_id("preview-error")).to_be_hidden()
    expect(page.get_by_test_id("preview-url")).to_have_text("http://127.0.0.1:9/hello/Lin")
    warning = page.locator('.field-warning[data-error-for="webhook.url"]')
    expect(warning).to_contain_text("contact.first_name has no fallback")

    url_field.fill("http://127.0.0.1:9/hello/{{ contact.name }}")
    problem = page.locator('.preview-problem[data-error-for="webhook.url"]')
    expect(problem).to_contain_text("did you mean contact.first_name?")
    expect(page.get_by_test_id("preview-error")).to_contain_text("Content \u203a URL")
    expect(page.get_by_test_id("preview-error")).not_to_contain_text("webhook.url")
    expect(
        page.locator('.field-warning[data-error-for="webhook.headers[0].value"]')
    ).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "preview-beside-content-1280.png"), full_page=True)

    url_field.fill("http://127.0.0.1:9/hello/{{ contact.first_name | default('you') }}")
    expect(problem).to_have_count(0)
    expect(page.get_by_test_id("preview-error")).to_be_hidden()

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_test_id("preview")).to_be_visible()
    field_box = page.get_by_test_id("url").bounding_box()
    preview_box = page.get_by_test_id("preview").bounding_box()
    assert preview_box["y"] > field_box["y"] + field_box["height"], (field_box, preview_box)
    page.get_by_test_id("tab-setup").click()
    expect(page.get_by_test_id("preview")).to_be_hidden()
    assert problems == []
