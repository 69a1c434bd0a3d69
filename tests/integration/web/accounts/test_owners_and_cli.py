"""The last owner stays (web form and command line); ``hookcast user set-password`` ends
the user's sessions; ``hookcast api-key create --scope events``."""

from __future__ import annotations

from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import check_password_hash

from engine.store import Database, accounts
from tests.conftest import TEST_PASSWORD, WorkspaceFixture, csrf_token, login
from web.cli import cli


def _role(db: Database, workspace_id: str, email: str) -> str | None:
    with db.transaction(write=False) as session:
        user = accounts.get_user_by_email(session, email)
        found = accounts.get_membership(session, user_id=user.id, workspace_id=workspace_id)
        return found.role if found else None


def test_the_last_owner_cannot_step_down_or_be_removed_in_the_web_form(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    token = csrf_token(logged_in, "/settings")
    for role in ("editor", "viewer"):
        response = logged_in.post(
            "/settings/members",
            data={"csrf_token": token, "email": workspace.owner_email, "role": role},
        )
        assert response.status_code == 302
        page = logged_in.get("/settings").text
        assert f"{workspace.owner_email} is the last owner of this workspace" in page
        assert "make another member owner first" in page
    assert _role(db, workspace.id, workspace.owner_email) == "owner"
    with db.transaction(write=False) as session:
        owner = accounts.get_user_by_email(session, workspace.owner_email)
    logged_in.post(f"/settings/members/{owner.id}/remove", data={"csrf_token": token})
    assert "last owner" in logged_in.get("/settings").text
    assert _role(db, workspace.id, workspace.owner_email) == "owner"
    # The workspace still works for its owner and its keys.
    assert logged_in.get("/api/v1/workspace", headers=workspace.headers).status_code == 200


def test_an_owner_steps_down_once_another_owner_exists(
    app: Flask, logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    token = csrf_token(logged_in, "/settings")
    logged_in.post(
        "/settings/members",
        data={
            "csrf_token": token,
            "email": "co@acme.test",
            "role": "owner",
            "password": "long one!",
        },
    )
    logged_in.post(
        "/settings/members",
        data={"csrf_token": token, "email": workspace.owner_email, "role": "editor"},
    )
    assert _role(db, workspace.id, workspace.owner_email) == "editor"
    co = app.test_client()
    login(co, "co@acme.test", "long one!")
    co_token = csrf_token(co, "/settings")
    co.post(
        "/settings/members",
        data={"csrf_token": co_token, "email": "co@acme.test", "role": "viewer"},
    )
    assert "last owner" in co.get("/settings").text
    assert _role(db, workspace.id, "co@acme.test") == "owner"


def test_the_last_owner_stays_on_the_command_line(
    runner: CliRunner, db: Database, workspace: WorkspaceFixture
) -> None:
    result = runner.invoke(
        cli,
        ["user", "create", workspace.owner_email, "--workspace", workspace.id, "--role", "viewer"],
    )
    assert result.exit_code == 1
    assert result.output.startswith("hookcast: error: ")
    assert "is the last owner of this workspace" in result.output
    assert _role(db, workspace.id, workspace.owner_email) == "owner"


def test_set_password_ends_the_users_sessions(
    app: Flask, runner: CliRunner, client: FlaskClient, workspace: WorkspaceFixture
) -> None:
    login(client, workspace.owner_email)
    assert client.get("/campaigns").status_code == 200
    result = runner.invoke(
        cli, ["user", "set-password", workspace.owner_email.upper(), "--password", "brand new pw"]
    )
    assert result.exit_code == 0, result.output
    assert "1 sessions ended" in result.output
    assert client.get("/campaigns").status_code == 302

    fresh = app.test_client()
    token = csrf_token(fresh)
    data = {"csrf_token": token, "email": workspace.owner_email, "password": TEST_PASSWORD}
    assert fresh.post("/login", data=data).status_code == 401
    login(fresh, workspace.owner_email, "brand new pw")


def test_set_password_refuses_bad_input_in_one_line(
    runner: CliRunner, db: Database, workspace: WorkspaceFixture
) -> None:
    cases = [
        (["user", "set-password", "nobody@acme.test", "--password", "long enough"], "no user"),
        (["user", "set-password", workspace.owner_email, "--password", "short"], "at least 8"),
        (["user", "set-password", workspace.owner_email], "--password is required"),
    ]
    for args, message in cases:
        result = runner.invoke(cli, args, input="")
        assert result.exit_code == 1, args
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("hookcast: error:"), result.output
        assert message in lines[0]
    with db.transaction(write=False) as session:
        user = accounts.get_user_by_email(session, workspace.owner_email)
        assert check_password_hash(user.password_hash, TEST_PASSWORD)  # unchanged


def test_user_create_points_an_existing_user_to_set_password(
    runner: CliRunner, workspace: WorkspaceFixture
) -> None:
    result = runner.invoke(
        cli,
        [
            "user",
            "create",
            workspace.owner_email,
            "--workspace",
            workspace.id,
            "--password",
            "another one",
        ],
    )
    assert result.exit_code == 1 and "hookcast user set-password" in result.output


def test_api_key_create_with_the_events_scope(
    runner: CliRunner, client: FlaskClient, workspace: WorkspaceFixture
) -> None:
    result = runner.invoke(
        cli, ["api-key", "create", "--workspace", workspace.id, "--scope", "events"]
    )
    assert result.exit_code == 0, result.output
    headers = {"Authorization": f"Bearer {result.output.strip()}"}
    assert client.get("/api/v1/campaigns", headers=headers).status_code == 403
    event = {"name": "a.b", "contact": {"external_id": "x"}}
    assert client.post("/api/v1/events", json=event, headers=headers).status_code == 202
    bad = runner.invoke(cli, ["api-key", "create", "--workspace", workspace.id, "--scope", "root"])
    assert bad.exit_code != 0
