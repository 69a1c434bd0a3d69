"""Invitations in Chromium against a real ``hookcast serve`` whose worker sends email to an
SMTP server on loopback: the owner invites by email and role, the emailed link sets the
new member's password and signs them in, a used link stops working, and a pending
invitation can be revoked."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import (
    OWNER_PASSWORD,
    LiveServer,
    _cli,
    _free_port,
    _server_env,
    log_in,
    serving,
)
from tests.integration.smtp_server import SmtpServer, parts

MAIL_WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def mail_server(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[LiveServer]:
    """``hookcast serve`` with email on: SMTP on loopback, links to the server itself."""
    root = tmp_path_factory.mktemp("live-mail")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = _server_env(root / "instance")
    env.update(
        HOOKCAST_SMTP_URL=smtp.url(),
        HOOKCAST_MAIL_FROM="Hookcast <hookcast@browser.test>",
        HOOKCAST_BASE_URL=url,
    )
    _cli(env, "init")
    workspace_id = _cli(env, "workspace", "create", "Mail Co").split()[-1]
    email = "owner@mail.test"
    _cli(env, "user", "create", email, "--workspace", workspace_id, "--password", OWNER_PASSWORD)
    api_key = _cli(env, "api-key", "create", "--workspace", workspace_id)
    log_path = root / "serve.log"
    with serving(env, port, log_path):
        yield LiveServer(url, api_key, workspace_id, email, OWNER_PASSWORD, log_path)


def wait_for_mail(smtp: SmtpServer, count: int) -> str:
    """The plain text of the ``count``-th mail, once the server's worker has sent it."""
    deadline = time.monotonic() + MAIL_WAIT_SECONDS
    while time.monotonic() < deadline:
        received = smtp.received()
        if len(received) >= count:
            return parts(received[count - 1])[0]
        time.sleep(0.2)
    raise AssertionError(f"mail {count} did not arrive within {MAIL_WAIT_SECONDS} s")


def invite(page: Page, server: LiveServer, email: str, role: str) -> None:
    page.goto(f"{server.url}/settings")
    page.get_by_label("Member email").fill(email)
    page.get_by_label("Role").select_option(role)
    page.get_by_role("button", name="Invite or change member").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Invitation sent to {email}")


def test_invite_accept_and_revoke(
    mail_server: LiveServer,
    smtp: SmtpServer,
    browser: Browser,
    browser_page: Page,
    artifacts_dir: Path,
) -> None:
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, mail_server)
    page.goto(f"{mail_server.url}/settings")
    expect(page.get_by_label("Password for a new account")).to_have_count(0)

    invite(page, mail_server, "teammate@mail.test", "editor")
    pending = page.get_by_test_id("invitations")
    expect(pending).to_contain_text("teammate@mail.test")
    expect(pending).to_contain_text("editor")
    page.screenshot(path=str(artifacts_dir / "invitations.png"), full_page=True)

    text = wait_for_mail(smtp, 1)
    link = re.search(rf"{re.escape(mail_server.url)}/invitations/[\w-]+", text).group(0)

    guest_context = browser.new_context(viewport={"width": 1280, "height": 900})
    guest = guest_context.new_page()
    try:
        guest.goto(link)
        expect(guest.get_by_role("heading", name="Join Mail Co")).to_be_visible()
        form = guest.get_by_test_id("invitation-form")
        form.locator("input[name=password]").fill("teammate password")
        form.locator("input[name=confirm]").fill("teammate passw0rd")
        form.get_by_role("button", name="Create my account").click()
        expect(guest.get_by_role("alert")).to_contain_text("The two passwords differ")
        form.locator("input[name=password]").fill("teammate password")
        form.locator("input[name=confirm]").fill("teammate password")
        form.get_by_role("button", name="Create my account").click()
        guest.wait_for_url(f"{mail_server.url}/campaigns")
        expect(guest.get_by_role("status").first).to_contain_text("Welcome to Mail Co")

        guest.goto(link)  # single use
        expect(guest.get_by_role("heading", name="This link does not work")).to_be_visible()
    finally:
        guest_context.close()

    page.goto(f"{mail_server.url}/settings")
    expect(page.locator("table.list").nth(1)).to_contain_text("teammate@mail.test")
    expect(page.get_by_test_id("invitations")).to_have_count(0)

    invite(page, mail_server, "changed-mind@mail.test", "viewer")
    row = page.get_by_test_id("invitations").locator("tr", has_text="changed-mind@mail.test")
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status").first).to_contain_text("was revoked")
    expect(page.get_by_test_id("invitations")).to_have_count(0)
    revoked = re.search(r"http://\S+/invitations/[\w-]+", wait_for_mail(smtp, 2)).group(0)
    page.goto(revoked)
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()

    fresh_context = browser.new_context()
    try:  # the password chosen through the link signs in
        log_in(fresh_context.new_page(), mail_server, "teammate@mail.test", "teammate password")
    finally:
        fresh_context.close()
