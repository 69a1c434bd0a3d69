"""Server-side login sessions: the cookie names a session row; logout, password changes,
"sign out everywhere else", the idle timeout and the absolute lifetime end it. Behind a
trusted proxy, HTTPS requests get a Secure cookie and HSTS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from engine.store import Database, accounts, login_sessions
from engine.store.models import LoginSession
from engine.store.types import utcnow
from tests.conftest import TEST_PASSWORD, WorkspaceFixture, csrf_token, login
from web import create_app
from web.database import get_database


def _cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def _copy_of(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of ``client``'s session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", _cookie(client))
    return thief


def _sessions(db: Database, email: str) -> list[LoginSession]:
    with db.transaction(write=False) as session:
        user = accounts.get_user_by_email(session, email)
        return login_sessions.list_of_user(session, user.id)


def test_the_cookie_carries_only_a_session_token(
    app: Flask, logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    serializer = app.session_interface.get_signing_serializer(app)
    contents = serializer.loads(_cookie(logged_in))
    assert set(contents) <= {"sid", "csrf_token", "_flashes", "_permanent"}
    assert "user_id" not in contents and "workspace_id" not in contents
    (record,) = _sessions(db, workspace.owner_email)
    assert record.token_hash != contents["sid"]  # only the hash is stored
    assert record.user_agent.startswith("Werkzeug")
    assert record.client_address == "127.0.0.1"


def test_a_copied_cookie_is_dead_after_logout(
    app: Flask, logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    thief = _copy_of(app, logged_in)
    assert thief.get("/campaigns").status_code == 200

    logged_in.post("/logout", data={"csrf_token": csrf_token(logged_in, "/campaigns")})
    assert logged_in.get("/campaigns").status_code == 302
    response = thief.get("/campaigns")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert _sessions(db, workspace.owner_email) == []


@pytest.mark.parametrize(
    ("created_ago", "seen_ago", "alive"),
    [
        (timedelta(hours=13), timedelta(hours=11), True),
        (timedelta(hours=13), timedelta(hours=12, minutes=1), False),  # idle
        (timedelta(days=14, minutes=1), timedelta(minutes=5), False),  # lifetime
    ],
)
def test_sessions_end_when_idle_or_too_old(
    logged_in: FlaskClient,
    db: Database,
    workspace: WorkspaceFixture,
    created_ago: timedelta,
    seen_ago: timedelta,
    alive: bool,
) -> None:
    now = utcnow()
    with db.transaction() as session:
        session.execute(
            update(LoginSession).values(created_at=now - created_ago, last_seen_at=now - seen_ago)
        )
    assert logged_in.get("/campaigns").status_code == (200 if alive else 302)
    assert len(_sessions(db, workspace.owner_email)) == (1 if alive else 0)


def test_session_limits_are_configurable(
    app_config: dict[str, Any], db: Database, workspace: WorkspaceFixture
) -> None:
    short = create_app({**app_config, "SESSION_IDLE_HOURS": "1", "SESSION_LIFETIME_DAYS": "2"})
    try:
        client = short.test_client()
        login(client, workspace.owner_email)
        assert "after 1 h without use, and 2 days" in client.get("/settings/account").text
        with db.transaction() as session:
            session.execute(update(LoginSession).values(last_seen_at=utcnow() - timedelta(hours=2)))
        assert client.get("/campaigns").status_code == 302
    finally:
        get_database(short).dispose()
    with pytest.raises(ValueError, match="SESSION_IDLE_HOURS"):
        create_app({**app_config, "SESSION_IDLE_HOURS": "0"})


def test_the_account_page_lists_sessions_and_signs_out_everywhere_else(
    app: Flask, client: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    login(client, workspace.owner_email)
    other = app.test_client()
    other.environ_base.update(REMOTE_ADDR="127.0.0.7", HTTP_USER_AGENT="Other browser/1.0")
    login(other, workspace.owner_email)

    page = client.get("/settings/account").text
    assert page.count("data-session=") == 2
    assert "Other browser/1.0" in page and "127.0.0.7" in page and "this browser" in page
    client.post(
        "/settings/account/sessions/end-others",
        data={"csrf_token": csrf_token(client, "/settings/account")},
    )
    assert other.get("/campaigns").status_code == 302
    assert client.get("/campaigns").status_code == 200
    assert len(_sessions(db, workspace.owner_email)) == 1


def test_one_session_is_signed_out_and_nobody_ends_another_users_session(
    app: Flask, client: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    login(client, workspace.owner_email)
    other = app.test_client()
    login(other, workspace.owner_email)
    mine = {s.id for s in _sessions(db, workspace.owner_email)}
    with db.transaction() as session:
        stranger = accounts.create_user(session, email="s@else.test", password_hash="x")
        foreign = login_sessions.start(
            session,
            user_id=stranger.id,
            workspace_id=None,
            client_address="",
            user_agent="",
            now=utcnow(),
        ).record.id
    token = csrf_token(client, "/settings/account")
    refused = client.post(f"/settings/account/sessions/{foreign}/end", data={"csrf_token": token})
    assert refused.status_code == 404
    rows = client.get("/settings/account").text.split('data-session="')[1:]
    current = next(row.split('"')[0] for row in rows if "this browser" in row.split("</tr>")[0])
    target = next(iter(mine - {current}))
    client.post(f"/settings/account/sessions/{target}/end", data={"csrf_token": token})
    assert other.get("/campaigns").status_code == 302
    assert client.get("/campaigns").status_code == 200


def test_password_change_needs_the_current_password_and_ends_other_sessions(
    app: Flask, client: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    login(client, workspace.owner_email)
    other = app.test_client()
    login(other, workspace.owner_email)
    page = client.get("/settings/account").text
    assert "at least 8 characters" in page
    token = csrf_token(client, "/settings/account")

    def change(current: str, new: str) -> Any:
        return client.post(
            "/settings/account/password",
            data={"csrf_token": token, "current_password": current, "new_password": new},
        )

    wrong = change("not my password", "a new long password")
    assert wrong.status_code == 422 and "not your current password" in wrong.text
    short = change(TEST_PASSWORD, "short")
    assert short.status_code == 422 and "at least 8 characters" in short.text
    assert other.get("/campaigns").status_code == 200  # nothing changed yet

    done = change(TEST_PASSWORD, "a new long password")
    assert done.status_code == 302
    assert "Sessions signed out elsewhere: 1" in client.get("/settings/account").text
    assert other.get("/campaigns").status_code == 302
    assert client.get("/campaigns").status_code == 200

    fresh = app.test_client()
    token = csrf_token(fresh)
    old_password = {"csrf_token": token, "email": workspace.owner_email, "password": TEST_PASSWORD}
    old = fresh.post("/login", data=old_password)
    assert old.status_code == 401
    login(fresh, workspace.owner_email, "a new long password")


@pytest.fixture
def proxied_app(app_config: dict[str, Any]) -> Any:
    proxied = create_app({**app_config, "PROXY_HOPS": "1"})
    yield proxied
    get_database(proxied).dispose()


# Flask-WTF checks the Referer of HTTPS form posts, as a browser sends it.
HTTPS_PROXY = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-For": "203.0.113.9",
    "Referer": "https://localhost/login",
}


def _login_through(client: FlaskClient, email: str, headers: dict[str, str]) -> Any:
    page = client.get("/login", headers=headers).text
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    return client.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": TEST_PASSWORD},
        headers=headers,
    )


def test_https_through_a_trusted_proxy_gets_a_secure_cookie_and_hsts(
    proxied_app: Flask, db: Database, workspace: WorkspaceFixture
) -> None:
    client = proxied_app.test_client()
    response = _login_through(client, workspace.owner_email, HTTPS_PROXY)
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]
    assert "HttpOnly" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    (record,) = _sessions(db, workspace.owner_email)
    assert record.client_address == "203.0.113.9"  # the proxy's client, not the proxy

    plain = proxied_app.test_client()
    response = _login_through(plain, workspace.owner_email, {})
    assert "Secure" not in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in response.headers


def test_forwarded_headers_are_ignored_without_proxy_hops(
    app: Flask, db: Database, workspace: WorkspaceFixture
) -> None:
    response = _login_through(app.test_client(), workspace.owner_email, HTTPS_PROXY)
    assert response.status_code == 302
    assert "Secure" not in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in response.headers
    (record,) = _sessions(db, workspace.owner_email)
    assert record.client_address == "127.0.0.1"


def test_a_direct_https_request_gets_a_secure_cookie(app: Flask, workspace) -> None:
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost").text
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    response = client.post(
        "/login",
        base_url="https://localhost",
        data={"csrf_token": token, "email": workspace.owner_email, "password": TEST_PASSWORD},
        headers={"Referer": "https://localhost/login"},
    )
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in response.headers


def test_bad_proxy_hops_is_explained(app_config: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="PROXY_HOPS"):
        create_app({**app_config, "PROXY_HOPS": "two"})


def test_last_seen_is_refreshed_on_pages_and_on_form_posts(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    for method in ("GET", "POST"):
        earlier = utcnow() - timedelta(minutes=5)
        with db.transaction() as session:
            session.execute(update(LoginSession).values(last_seen_at=earlier))
        if method == "GET":
            assert logged_in.get("/campaigns").status_code == 200
        else:
            token = csrf_token(logged_in, "/campaigns")
            with db.transaction() as session:
                session.execute(update(LoginSession).values(last_seen_at=earlier))
            response = logged_in.post(
                "/settings/account/sessions/end-others", data={"csrf_token": token}
            )
            assert response.status_code == 302
        (record,) = _sessions(db, workspace.owner_email)
        assert record.last_seen_at > earlier + timedelta(minutes=4), method
