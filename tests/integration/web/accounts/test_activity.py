"""The activity log: what the builder, the API and the command line change is written with
who and when; owners read it in Settings → Activity and over ``GET /api/v1/activity``."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner
from flask.testing import FlaskClient

from engine.ids import ulid_floor
from engine.store import Database, accounts, activity
from engine.store.models import Activity
from engine.store.types import utcnow
from tests.conftest import TEST_PASSWORD, ApiClient, WorkspaceFixture, csrf_token, login
from tests.integration.factories import event_campaign, webhook
from web.auth import hash_password
from web.cli import cli


def _kinds(api: ApiClient, query: str = "") -> list[str]:
    response = api.get(f"/activity{query}")
    assert response.status_code == 200, response.get_json()
    return [entry["kind"] for entry in response.get_json()["data"]]


def test_api_changes_are_logged_with_the_key_as_actor(api: ApiClient) -> None:
    campaign = event_campaign(api, ["lead.create"], activate=False, name="Leads")
    cid = campaign["id"]
    assert api.patch(f"/campaigns/{cid}", json={"name": "Leads 2"}).status_code == 200
    assert api.post(f"/campaigns/{cid}/activate").status_code == 200
    assert api.post(f"/campaigns/{cid}/pause").status_code == 200
    assert api.post(f"/campaigns/{cid}/archive").status_code == 200
    template = api.post("/templates", json={"name": "T", "webhook": webhook()}).get_json()
    assert api.patch(f"/templates/{template['id']}", json={"name": "T2"}).status_code == 200
    assert api.delete(f"/templates/{template['id']}").status_code == 204
    assert api.post("/notifications/retry", json={"status": "failed"}).status_code == 202
    assert api.delete(f"/campaigns/{cid}").status_code == 204

    assert _kinds(api) == [
        "campaign.deleted",
        "notifications.bulk_retried",
        "template.deleted",
        "template.saved",
        "template.created",
        "campaign.archived",
        "campaign.paused",
        "campaign.activated",
        "campaign.saved",
        "campaign.created",
    ]
    first = api.get("/activity?limit=1").get_json()
    entry = first["data"][0]
    assert entry["actor"] == "API key tests" and entry["user_id"] is None
    assert entry["object"] == {"type": "campaign", "id": cid}
    assert "'Leads 2'" in entry["summary"]
    older = api.get(f"/activity?limit=1&cursor={first['next_cursor']}").get_json()
    assert older["data"][0]["kind"] == "notifications.bulk_retried"
    assert _kinds(api, "?kind=campaign.paused,campaign.activated") == [
        "campaign.paused",
        "campaign.activated",
    ]
    bad = api.get("/activity?kind=campaign.exploded")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_request"


def test_builder_changes_are_logged_with_the_user(
    logged_in: FlaskClient, api: ApiClient, db: Database, workspace: WorkspaceFixture
) -> None:
    token = csrf_token(logged_in, "/settings")
    logged_in.post(
        "/settings/members",
        data={
            "csrf_token": token,
            "email": "ed@acme.test",
            "role": "editor",
            "password": "long one!",
        },
    )
    logged_in.post(
        "/settings/members", data={"csrf_token": token, "email": "ed@acme.test", "role": "viewer"}
    )
    logged_in.post("/settings/api-keys", data={"csrf_token": token, "name": "k2"})
    with db.transaction(write=False) as session:
        key = next(k for k in accounts.list_api_keys(session, workspace.id) if k.name == "k2")
        ed = accounts.get_user_by_email(session, "ed@acme.test")
    logged_in.post(f"/settings/api-keys/{key.id}/revoke", data={"csrf_token": token})
    logged_in.post(f"/settings/members/{ed.id}/remove", data={"csrf_token": token})
    created = logged_in.post("/campaigns/new", data={"csrf_token": token, "name": "From UI"})
    assert created.status_code == 302

    assert _kinds(api) == [
        "campaign.created",
        "member.removed",
        "api_key.revoked",
        "api_key.created",
        "member.role_changed",
        "member.added",
        "login",
    ]
    entries = api.get("/activity").get_json()["data"]
    assert {e["actor"] for e in entries} == {workspace.owner_email}
    assert "from editor to viewer" in entries[4]["summary"]

    page = logged_in.get("/settings/activity").text
    assert "member.role_changed" in page and "ed@acme.test" in page
    only_logins = logged_in.get("/settings/activity?kind=login").text
    assert only_logins.count('data-kind="') == 1


def test_the_activity_page_is_for_owners_filters_by_user_and_pages(
    client: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    with db.transaction() as session:
        editor = accounts.create_user(
            session, email="ed@acme.test", password_hash=hash_password(TEST_PASSWORD)
        )
        accounts.set_membership(
            session, user_id=editor.id, workspace_id=workspace.id, role="editor"
        )
        for n in range(60):
            activity.record(
                session, workspace.id, activity.Actor("bot"), "campaign.saved", f"save {n}"
            )
    login(client, "ed@acme.test")
    assert client.get("/settings/activity").status_code == 403
    assert "Activity</a>" not in client.get("/settings/account").text
    client.post("/logout", data={"csrf_token": csrf_token(client, "/campaigns")})

    login(client, workspace.owner_email)
    first = client.get("/settings/activity").text
    assert first.count('data-kind="') == 50 and "Older entries" in first
    before = first.split("before=")[1].split('"')[0].split("&")[0]
    second = client.get(f"/settings/activity?before={before}").text
    assert second.count('data-kind="') == 12  # 10 saves, two logins
    mine = client.get(f"/settings/activity?user_id={editor.id}").text
    assert mine.count('data-kind="login"') == 1 and "save 1" not in mine


def test_entries_older_than_90_days_are_purged(db: Database, workspace) -> None:
    now = utcnow()
    old_moment = now - timedelta(days=91)
    with db.transaction() as session:
        old = activity.record(
            session, workspace.id, activity.Actor("bot"), "login", "old", now=old_moment
        )
        old.id = "act_" + ulid_floor(int(old_moment.timestamp() * 1000))[:-1] + "1"
        activity.record(session, workspace.id, activity.Actor("bot"), "login", "recent")
    with db.transaction() as session:
        assert activity.purge_expired(session, now) == 1
        assert [e.summary for e in session.query(Activity)] == ["recent"]


def test_command_line_changes_are_logged(
    runner: CliRunner, api: ApiClient, workspace: WorkspaceFixture
) -> None:
    args = ["user", "create", "ops@acme.test", "--workspace", workspace.id, "--role", "editor"]
    assert runner.invoke(cli, [*args, "--password", "long enough"]).exit_code == 0
    assert runner.invoke(cli, ["api-key", "create", "--workspace", workspace.id]).exit_code == 0
    result = runner.invoke(
        cli, ["user", "set-password", "ops@acme.test", "--password", "newer one"]
    )
    assert result.exit_code == 0, result.output
    entries = api.get("/activity").get_json()["data"]
    assert [e["kind"] for e in entries] == ["password.changed", "api_key.created", "member.added"]
    assert {e["actor"] for e in entries} == {"command line"}
