"""Logging in, first-run setup, CSRF, roles and the settings page."""

from __future__ import annotations

from flask.testing import FlaskClient

from engine.store import Database, accounts
from tests.conftest import TEST_PASSWORD, WorkspaceFixture, csrf_token, login
from web.auth import hash_password


def test_first_visitor_sets_up_the_owner(client: FlaskClient, db: Database) -> None:
    assert client.get("/login").headers["Location"].endswith("/setup")
    token = csrf_token(client, "/setup")
    bad = client.post(
        "/setup",
        data={"csrf_token": token, "workspace": "", "email": "x@y.co", "password": "short"},
    )
    assert bad.status_code == 422
    assert "at least 8" in bad.get_data(as_text=True)

    ok = client.post(
        "/setup",
        data={
            "csrf_token": token,
            "workspace": "Acme",
            "email": "Me@Acme.test",
            "password": "long enough",
        },
    )
    assert ok.status_code == 302
    page = client.get("/campaigns").get_data(as_text=True)
    assert "Acme" in page and "me@acme.test" in page and "owner" in page
    # Setup is closed once anyone exists.
    assert client.get("/setup").headers["Location"].endswith("/login")


def test_login_logout_and_navigation(client: FlaskClient, workspace: WorkspaceFixture) -> None:
    assert client.get("/campaigns").headers["Location"].startswith("/login")
    token = csrf_token(client)
    wrong = client.post(
        "/login", data={"csrf_token": token, "email": workspace.owner_email, "password": "nope"}
    )
    assert wrong.status_code == 401
    assert "not right" in wrong.get_data(as_text=True)

    login(client, workspace.owner_email)
    page = client.get("/campaigns").get_data(as_text=True)
    for item in ("Campaigns", "Templates", "Notifications", "Settings"):
        assert f">{item}</a>" in page

    client.post("/logout", data={"csrf_token": csrf_token(client, "/campaigns")})
    assert client.get("/campaigns").status_code == 302


def test_login_redirects_only_to_local_paths(
    client: FlaskClient, workspace: WorkspaceFixture
) -> None:
    token = csrf_token(client)
    data = {"csrf_token": token, "email": workspace.owner_email, "password": TEST_PASSWORD}
    evil = client.post("/login?next=https://evil.example/x", data=data)
    assert evil.headers["Location"] == "/campaigns"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/campaigns")})
    data["csrf_token"] = csrf_token(client)
    local = client.post("/login?next=/settings", data=data)
    assert local.headers["Location"] == "/settings"


def test_forms_without_csrf_token_are_refused(
    client: FlaskClient, workspace: WorkspaceFixture
) -> None:
    csrf_token(client)  # a session exists
    refused = client.post(
        "/login", data={"email": workspace.owner_email, "password": TEST_PASSWORD}
    )
    assert refused.status_code == 400
    login(client, workspace.owner_email)
    assert client.post("/settings/api-keys", data={"name": "x"}).status_code == 400
    assert client.post("/logout").status_code == 400


def test_owner_creates_shows_once_and_revokes_api_keys(
    logged_in: FlaskClient, db: Database, workspace
) -> None:
    token = csrf_token(logged_in, "/settings")
    page = logged_in.post(
        "/settings/api-keys", data={"csrf_token": token, "name": "CRM <sync>"}
    ).get_data(as_text=True)
    assert "Copy this key now" in page
    assert "CRM &lt;sync&gt;" in page and "CRM <sync>" not in page  # escaped
    shown = page.split('data-testid="new-api-key">')[1].split("<")[0]
    assert (
        logged_in.get("/api/v1/workspace", headers={"Authorization": f"Bearer {shown}"}).status_code
        == 200
    )
    assert shown not in logged_in.get("/settings").get_data(as_text=True)  # only once

    with db.transaction(write=False) as session:
        key = next(
            k for k in accounts.list_api_keys(session, workspace.id) if k.name == "CRM <sync>"
        )
    logged_in.post(f"/settings/api-keys/{key.id}/revoke", data={"csrf_token": token})
    assert (
        logged_in.get("/api/v1/workspace", headers={"Authorization": f"Bearer {shown}"}).status_code
        == 401
    )


def test_viewers_change_nothing(
    client: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    with db.transaction() as session:
        viewer = accounts.create_user(
            session, email="viewer@acme.test", password_hash=hash_password(TEST_PASSWORD)
        )
        accounts.set_membership(
            session, user_id=viewer.id, workspace_id=workspace.id, role="viewer"
        )
    login(client, "viewer@acme.test")
    token = csrf_token(client, "/settings")
    page = client.get("/settings").get_data(as_text=True)
    assert "Create API key" not in page
    assert client.post("/settings/api-keys", data={"csrf_token": token}).status_code == 403
    assert (
        client.post(
            "/settings/members", data={"csrf_token": token, "email": "x@y.co", "role": "owner"}
        ).status_code
        == 403
    )
    with db.transaction(write=False) as session:
        assert len(accounts.list_api_keys(session, workspace.id)) == 1


def test_members_are_added_and_the_last_owner_stays(
    logged_in: FlaskClient, db: Database, workspace
) -> None:
    token = csrf_token(logged_in, "/settings")
    logged_in.post(
        "/settings/members",
        data={
            "csrf_token": token,
            "email": "ed@acme.test",
            "role": "editor",
            "password": "password1",
        },
    )
    with db.transaction(write=False) as session:
        roles = {u.email: m.role for m, u in accounts.list_members(session, workspace.id)}
        owner = accounts.get_user_by_email(session, workspace.owner_email)
    assert roles == {"ed@acme.test": "editor", workspace.owner_email: "owner"}
    response = logged_in.post(f"/settings/members/{owner.id}/remove", data={"csrf_token": token})
    assert response.status_code == 302
    assert "at least one owner" in logged_in.get("/settings").get_data(as_text=True)


def test_pages_send_protective_headers(client: FlaskClient, workspace) -> None:
    response = client.get("/login")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
