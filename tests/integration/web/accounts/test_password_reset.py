"""Password reset through email (SMTP on loopback): the same answer whether or not the
address has an account, a single-use link valid 1 hour, requests throttled per address and
per account, and the new password ending the user's other sessions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from engine.mail.sender import MailSender
from engine.store.models import LoginSession, MailMessage, PasswordReset
from engine.store.types import utcnow
from tests.conftest import TEST_PASSWORD, csrf_token, login
from tests.integration.conftest import mail_settings
from tests.integration.smtp_server import parts
from web import engine_settings

_LINK = re.compile(r"https://hookcast\.acme\.test/password-reset/([\w-]+)")
_CSRF = re.compile(r'(name="csrf_token" value|name="csrf-token" content)="[^"]+"')


@pytest.fixture
def app_config(app_config, smtp_server):
    return {**app_config, **mail_settings(smtp_server)}


def ask(client, email, address="127.0.0.1"):
    token = csrf_token(client, "/password-reset")
    return client.post(
        "/password-reset",
        data={"email": email, "csrf_token": token},
        environ_overrides={"REMOTE_ADDR": address},
    )


def mailed_token(app, db, smtp_server) -> str:
    MailSender(db, engine_settings(app)).send_due()
    text, html = parts(smtp_server.received()[-1])
    token = _LINK.search(text).group(1)
    assert f"/password-reset/{token}" in html
    return token


def test_the_login_page_links_to_password_reset(client, workspace):
    assert 'href="/password-reset"' in client.get("/login").get_data(as_text=True)


def test_known_and_unknown_addresses_get_the_same_answer(app, db, workspace, smtp_server):
    known = ask(app.test_client(), workspace.owner_email)
    unknown = ask(app.test_client(), "nobody@acme.test")
    assert known.status_code == unknown.status_code == 200
    assert _CSRF.sub("", known.get_data(as_text=True)) == _CSRF.sub(
        "", unknown.get_data(as_text=True)
    )
    assert "If an account exists for that address" in known.get_data(as_text=True)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(MailMessage)) == 1
    MailSender(db, engine_settings(app)).send_due()
    assert [m["To"] for m in smtp_server.received()] == [workspace.owner_email]


def test_a_reset_works_once_and_ends_the_other_sessions(app, db, workspace, smtp_server):
    elsewhere = app.test_client()
    login(elsewhere, workspace.owner_email)
    assert elsewhere.get("/settings").status_code == 200

    ask(app.test_client(), workspace.owner_email)
    token = mailed_token(app, db, smtp_server)
    with db.session() as session:
        stored = session.scalar(select(PasswordReset))
        assert stored.token_hash != token and stored.expires_at - stored.created_at == timedelta(
            hours=1
        )

    browser = app.test_client()
    form = browser.get(f"/password-reset/{token}")
    assert form.status_code == 200 and form.headers["Referrer-Policy"] == "no-referrer"
    csrf = csrf_token(browser, f"/password-reset/{token}")
    done = browser.post(
        f"/password-reset/{token}",
        data={
            "password": "brand-new-password",
            "confirm": "brand-new-password",
            "csrf_token": csrf,
        },
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/campaigns")
    assert browser.get("/settings").status_code == 200  # signed in here
    assert elsewhere.get("/settings").status_code == 302  # signed out everywhere else
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(LoginSession)) == 1

    assert app.test_client().get(f"/password-reset/{token}").status_code == 404  # once
    old = app.test_client()
    answer = old.post(
        "/login",
        data={
            "email": workspace.owner_email,
            "password": TEST_PASSWORD,
            "csrf_token": csrf_token(old),
        },
    )
    assert answer.status_code == 401
    login(app.test_client(), workspace.owner_email, "brand-new-password")


def test_a_link_expires_after_an_hour(app, db, workspace, smtp_server):
    ask(app.test_client(), workspace.owner_email)
    token = mailed_token(app, db, smtp_server)
    with db.transaction() as session:
        session.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
    page = app.test_client().get(f"/password-reset/{token}")
    assert page.status_code == 404 and "has expired" in page.get_data(as_text=True)
    assert app.test_client().get("/password-reset/not-a-token").status_code == 404


def test_requests_are_throttled_per_account_and_per_address(app, db, workspace, smtp_server):
    client = app.test_client()
    for _ in range(3):
        assert ask(client, workspace.owner_email, "10.9.0.1").status_code == 200
    refused = ask(client, workspace.owner_email, "10.9.0.2")  # the account, from anywhere
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    for _ in range(3):  # an unknown address is counted the same way
        assert ask(client, "ghost@acme.test", "10.9.0.3").status_code == 200
    assert ask(client, "ghost@acme.test", "10.9.0.4").status_code == 429

    for n in range(7):  # one address, many accounts: 10 an hour (3 + 7)
        assert ask(client, f"someone{n}@acme.test", "10.9.0.3").status_code == 200
    assert ask(client, "someone-else@acme.test", "10.9.0.3").status_code == 429
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(PasswordReset)) == 3


def test_the_new_password_is_checked(app, db, workspace, smtp_server):
    ask(app.test_client(), workspace.owner_email)
    token = mailed_token(app, db, smtp_server)
    browser = app.test_client()
    csrf = csrf_token(browser, f"/password-reset/{token}")
    short = browser.post(
        f"/password-reset/{token}",
        data={"password": "short", "confirm": "short", "csrf_token": csrf},
    )
    assert short.status_code == 422 and "at least 8 characters" in short.get_data(as_text=True)
    assert browser.get(f"/password-reset/{token}").status_code == 200  # still usable


class TestWithoutSmtp:
    @pytest.fixture
    def app_config(self, app_config):
        return {key: value for key, value in app_config.items() if key != "SMTP_URL"}

    def test_the_page_says_email_is_off(self, client, db, workspace):
        page = client.get("/password-reset").get_data(as_text=True)
        assert "hookcast user set-password" in page and 'name="email"' not in page
        answer = ask(client, workspace.owner_email)
        assert answer.status_code == 200
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(PasswordReset)) == 0
