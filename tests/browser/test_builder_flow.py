"""The marketer's path through the builder, in Chromium against ``hookcast serve``.

Build an event campaign with mapping rows and basic auth, watch the preview, send a test to
a loopback receiver and read its answer, save it as a template, make a second campaign from
the template, activate it, post an event through the API and see the webhook arrive.
Screenshots of the editor's three tabs (desktop and phone) go to ``tests/browser/artifacts/``.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect
from werkzeug.wrappers import Response

from tests.browser.conftest import LiveServer, log_in

ARRIVAL_SECONDS = 20


def _watch_console(page: Page) -> list[str]:
    """Script errors and CSP refusals (both arrive as console errors).

    Answers with an error status (a 422 preview while a field is half-typed) are not.
    """
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", on_console)
    return problems


def _tab(page: Page, name: str) -> None:
    page.get_by_test_id(f"tab-{name}").click()
    expect(page.get_by_test_id(f"panel-{name}")).to_be_visible()


def _fill_row(row: Any, values: dict[str, str]) -> None:
    for key, value in values.items():
        element = row.locator(f'[data-key="{key}"]')
        if element.evaluate("el => el.tagName") == "SELECT":
            element.select_option(value)
        else:
            element.fill(value)


def _wait_for_requests(receiver: Any, count: int) -> list[Any]:
    deadline = time.monotonic() + ARRIVAL_SECONDS
    while time.monotonic() < deadline and len(receiver.log) < count:
        time.sleep(0.1)
    return [request for request, _ in receiver.log]


def test_build_test_template_activate_and_deliver(
    live_server: LiveServer, browser_page: Page, receiver: Any, artifacts_dir: Path
) -> None:
    page = browser_page
    problems = _watch_console(page)
    answer = {"accepted": True, "note": "<script>alert(1)</script>"}
    receiver.expect_request("/hook").respond_with_response(
        Response(
            json.dumps(answer),
            status=200,
            headers={"Content-Type": "application/json", "X-Receiver": "loopback"},
        )
    )
    hook_url = receiver.url_for("/hook")

    log_in(page, live_server)
    page.get_by_test_id("new-campaign").click()
    page.get_by_test_id("new-name").fill("Lead sync")
    page.get_by_test_id("create-campaign").click()
    expect(page.get_by_test_id("campaign-editor")).to_be_visible()
    expect(page.get_by_test_id("secret-reveal")).to_contain_text("whsec_")

    # Setup: the event and one condition.
    page.get_by_test_id("event-patterns").fill("lead.created")
    page.get_by_test_id("add-condition").first.click()
    leaf = page.locator('[data-conditions][data-loc="trigger.conditions"] [data-cond-leaf]').first
    leaf.locator("[data-cond-field]").fill("contact.plan")
    leaf.locator("[data-cond-op]").select_option("eq")
    leaf.locator("[data-cond-value]").fill("pro")
    page.screenshot(path=str(artifacts_dir / "editor-setup.png"), full_page=True)

    # Content: URL, basic auth, a header and mapping rows.
    _tab(page, "content")
    page.get_by_test_id("url").fill(hook_url)
    page.get_by_test_id("auth-type").select_option("basic")
    page.get_by_test_id("auth-username").fill("api")
    page.get_by_test_id("auth-password").fill("s3cret")
    page.get_by_test_id("add-header").click()
    _fill_row(
        page.locator('[data-row="header"]').last,
        {"name": "X-Source", "value": "{{ campaign.name }}"},
    )
    page.get_by_test_id("body-mode").select_option("mapping")
    page.get_by_test_id("add-field").click()
    _fill_row(
        page.locator('[data-row="field"]').last,
        {"name": "email", "source": "contact.email", "fallback": "unknown@example.com"},
    )
    page.get_by_test_id("add-field").click()
    _fill_row(
        page.locator('[data-row="field"]').last,
        {"name": "lead.score", "source": "event.properties.score", "type": "number"},
    )
    page.get_by_test_id("add-field").click()
    _fill_row(
        page.locator('[data-row="field"]').last,
        {"name": "origin", "kind": "value", "value": "hookcast"},
    )
    # A variable without a fallback is flagged before saving, once: beside its row, not
    # again in the list under the rows.
    content = page.get_by_test_id("panel-content")
    expect(
        page.locator('.field-warning[data-error-for="webhook.body.fields[1].source"]')
    ).to_contain_text("event.properties.score has no fallback")
    expect(content.get_by_text("event.properties.score has no fallback")).to_have_count(1)
    expect(page.get_by_test_id("warnings")).not_to_contain_text("event.properties.score")
    page.screenshot(path=str(artifacts_dir / "editor-content.png"), full_page=True)

    page.get_by_test_id("save").click()
    expect(page.locator("[data-save-state]")).to_have_text("Saved")
    expect(page.get_by_test_id("auth-password")).to_have_attribute(
        "placeholder", "leave blank to keep"
    )

    # Test: the live preview of the exact request, then a real send.
    _tab(page, "test")
    expect(page.get_by_test_id("preview-url")).to_have_text(hook_url)
    expect(page.get_by_test_id("preview-headers")).to_contain_text("Basic ****")
    expect(page.get_by_test_id("preview-headers")).to_contain_text("Lead sync")
    expect(page.get_by_test_id("preview-body")).to_contain_text('"score": 42')
    # The Standard Webhooks headers the sender adds, marked as such and really signed.
    send_time = page.get_by_test_id("preview-headers").locator("tr[data-send-time]")
    expect(send_time).to_have_count(3)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        expect(send_time.filter(has_text=name)).to_contain_text("added at send time")
    expect(send_time.filter(has_text="webhook-signature")).to_contain_text("v1,")
    expect(page.get_by_test_id("preview-headers")).to_contain_text("Added at send time")
    page.get_by_test_id("sample-event-properties").fill('{"score": 7}')
    expect(page.get_by_test_id("preview-body")).to_contain_text('"score": 7')
    page.get_by_test_id("send-test").click()
    expect(page.get_by_test_id("test-summary")).to_contain_text("HTTP 200")
    expect(page.get_by_test_id("test-response-body")).to_contain_text("<script>alert(1)</script>")
    expect(page.get_by_test_id("test-result")).to_contain_text("X-Receiver")
    page.screenshot(path=str(artifacts_dir / "editor-test.png"), full_page=True)

    sent = _wait_for_requests(receiver, 1)[0]
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"api:s3cret").decode()
    assert sent.headers["X-Source"] == "Lead sync"
    assert sent.headers["webhook-signature"].startswith("v1,")
    assert json.loads(sent.get_data()) == {
        "email": "ada@example.com",
        "lead": {"score": 7},
        "origin": "hookcast",
    }

    # Save as template, then a second campaign from it.
    page.get_by_test_id("save-as-template").click()
    page.get_by_test_id("template-name").fill("Lead sync template")
    page.get_by_test_id("template-confirm").click()
    expect(page.locator("[data-save-state]")).to_contain_text("Saved as template")

    page.goto(f"{live_server.url}/templates")
    row = page.get_by_test_id("template-row").filter(has_text="Lead sync template")
    row.get_by_test_id("use-template").click()
    page.get_by_test_id("new-name").fill("Lead sync from template")
    page.get_by_test_id("create-campaign").click()
    expect(page.get_by_test_id("campaign-title")).to_have_text("Lead sync from template")
    _tab(page, "content")
    expect(page.get_by_test_id("url")).to_have_value(hook_url)
    expect(page.locator('[data-row="field"]')).to_have_count(3)
    expect(page.get_by_test_id("auth-password")).to_have_attribute(
        "placeholder", "leave blank to keep"
    )
    _tab(page, "setup")
    page.get_by_test_id("event-patterns").fill("lead.created")
    page.get_by_test_id("save").click()
    expect(page.locator("[data-save-state]")).to_have_text("Saved")
    page.get_by_test_id("activate").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("active")

    # An event through the API reaches the receiver through the running engine.
    status, body = live_server.api(
        "POST",
        "/events",
        {
            "name": "lead.created",
            "contact": {"external_id": "lead-77", "attributes": {"email": "grace@example.com"}},
            "properties": {"score": 99},
        },
    )
    assert status == 202, body
    arrived = _wait_for_requests(receiver, 2)
    assert len(arrived) == 2, f"the event's webhook did not arrive:\n{live_server.log()[-3000:]}"
    assert json.loads(arrived[1].get_data()) == {
        "email": "grace@example.com",
        "lead": {"score": 99},
        "origin": "hookcast",
    }
    assert arrived[1].headers["Authorization"] == sent.headers["Authorization"]

    page.goto(f"{live_server.url}/campaigns")
    expect(page.get_by_test_id("campaign-row")).to_have_count(2)
    assert problems == []


def test_editor_fits_a_phone_and_shows_errors_beside_fields(
    live_server: LiveServer, browser_page: Page, artifacts_dir: Path
) -> None:
    page = browser_page
    problems = _watch_console(page)
    log_in(page, live_server)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/campaigns/new")
    page.get_by_test_id("new-name").fill("Phone check")
    page.get_by_test_id("create-campaign").click()
    _tab(page, "content")
    page.get_by_test_id("url").fill("ftp://nope")
    page.get_by_test_id("body-mode").select_option("mapping")
    page.get_by_test_id("add-field").click()
    page.get_by_test_id("save").click()
    errors = page.get_by_test_id("errors-box")
    expect(errors).to_be_visible()
    # The empty name fails the shape check and the channel check: both messages, one place.
    expect(
        page.locator('.field-error[data-error-for="webhook.body.fields[0].name"]').first
    ).to_be_visible()
    page.locator('[data-row="field"] [data-key="name"]').fill("email")
    page.locator('[data-row="field"] [data-key="source"]').fill("contact.email")
    page.get_by_test_id("save").click()
    expect(page.locator('.field-error[data-error-for="webhook.url"]')).to_be_visible()
    expect(
        page.locator('.field-error[data-error-for="webhook.body.fields[0].name"]')
    ).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "editor-phone-errors.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px at phone width"
    assert problems == []


def test_none_of_groups_are_edited_like_all_and_any(
    live_server: LiveServer, browser_page: Page
) -> None:
    """{"not": {"any": [...]}} opens as a "none" group whose rows can be edited; a new group
    set to "none" saves as one; a `not` the builder has no shape for stays verbatim."""
    plan_is_pro = {"field": "contact.plan", "op": "eq", "value": "pro"}
    not_all = {"not": {"all": [{"field": "contact.vip", "op": "eq", "value": True}]}}
    status, campaign = live_server.api(
        "POST",
        "/campaigns",
        {
            "name": "None of",
            "webhook": {"url": "http://127.0.0.1:9/hook", "body": {"mode": "default"}},
            "trigger": {
                "type": "event",
                "events": ["lead.created"],
                "conditions": {
                    "all": [
                        plan_is_pro,
                        {"not": {"any": [{"field": "contact.country", "op": "eq", "value": "FR"}]}},
                        not_all,
                    ]
                },
            },
        },
    )
    assert status == 201, campaign
    page = browser_page
    problems = _watch_console(page)
    log_in(page, live_server)
    page.goto(f"{live_server.url}/campaigns/{campaign['id']}")
    root = page.locator('[data-conditions][data-loc="trigger.conditions"] > [data-cond-group]')
    nested = root.locator(":scope > [data-cond-children] > [data-cond-group]")
    expect(nested).to_have_count(1)
    expect(nested.locator(":scope > .cond-head [data-cond-join]")).to_have_value("none")
    expect(root.locator(":scope > [data-cond-children] > [data-cond-raw]")).to_have_count(1)

    # Edit the existing "none" group's row, then add a second "none" group with one row.
    nested.locator("[data-cond-value]").fill("FR, DE")
    nested.locator("[data-cond-op]").select_option("in")
    root.locator(":scope > .cond-head [data-cond-add=group]").click()
    added = root.locator(":scope > [data-cond-children] > [data-cond-group]").last
    added.locator(":scope > .cond-head [data-cond-join]").select_option("none")
    added.locator(":scope > .cond-head [data-cond-add=leaf]").click()
    leaf = added.locator("[data-cond-leaf]")
    leaf.locator("[data-cond-field]").fill("contact.email")
    leaf.locator("[data-cond-op]").select_option("ends_with")
    leaf.locator("[data-cond-value]").fill("@example.com")
    page.get_by_test_id("save").click()
    expect(page.locator("[data-save-state]")).to_have_text("Saved")

    email_at_example = {"field": "contact.email", "op": "ends_with", "value": "@example.com"}
    status, saved = live_server.api("GET", f"/campaigns/{campaign['id']}")
    assert status == 200, saved
    assert saved["trigger"]["conditions"] == {
        "all": [
            plan_is_pro,
            {"not": {"any": [{"field": "contact.country", "op": "in", "value": ["FR", "DE"]}]}},
            not_all,
            {"not": {"any": [email_at_example]}},
        ]
    }
    page.reload()
    groups = page.locator(
        '[data-conditions][data-loc="trigger.conditions"] > [data-cond-group]'
        " > [data-cond-children] > [data-cond-group] > .cond-head [data-cond-join]"
    )
    expect(groups).to_have_count(2)
    expect(groups.first).to_have_value("none")
    expect(groups.last).to_have_value("none")
    assert problems == []
