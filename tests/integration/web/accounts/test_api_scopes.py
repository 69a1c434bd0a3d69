"""Scoped API keys: an ``events`` key sends events and writes contacts, nothing else."""

from __future__ import annotations

from flask.testing import FlaskClient

from engine.store import Database, accounts
from tests.conftest import WorkspaceFixture, csrf_token


def _events_key(db: Database, workspace: WorkspaceFixture) -> dict[str, str]:
    with db.transaction() as session:
        key = accounts.create_api_key(
            session, workspace_id=workspace.id, name="backend", scope="events"
        ).key
    return {"Authorization": f"Bearer {key}"}


def test_an_events_key_sends_events_and_writes_contacts(
    client: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    headers = _events_key(db, workspace)
    event = {"name": "order.paid", "contact": {"external_id": "u-1"}}
    assert client.post("/api/v1/events", json=event, headers=headers).status_code == 202
    put = client.put("/api/v1/contacts/u-2", json={"attributes": {"plan": "pro"}}, headers=headers)
    assert put.status_code in (200, 201)
    assert client.delete("/api/v1/contacts/u-2", headers=headers).status_code == 204


def test_an_events_key_is_refused_everything_else_with_the_envelope(
    client: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    headers = _events_key(db, workspace)
    refused = [
        ("GET", "/api/v1/campaigns"),
        ("POST", "/api/v1/campaigns"),
        ("GET", "/api/v1/contacts"),
        ("GET", "/api/v1/contacts/u-1"),
        ("GET", "/api/v1/notifications"),
        ("POST", "/api/v1/notifications/retry"),
        ("GET", "/api/v1/templates"),
        ("GET", "/api/v1/workspace"),
        ("GET", "/api/v1/activity"),
        ("POST", "/api/v1/render"),
    ]
    for method, path in refused:
        response = client.open(path, method=method, json={"name": "x"}, headers=headers)
        assert response.status_code == 403, (method, path)
        error = response.get_json()["error"]
        assert error["code"] == "scope_forbidden" and "`events` scope" in error["message"]
    # Unknown paths stay 404 and the public document stays public.
    assert client.get("/api/v1/nowhere", headers=headers).status_code == 404
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_a_full_key_still_does_everything(client: FlaskClient, workspace: WorkspaceFixture) -> None:
    assert client.get("/api/v1/campaigns", headers=workspace.headers).status_code == 200
    assert client.get("/api/v1/activity", headers=workspace.headers).status_code == 200


def test_the_scope_is_chosen_in_settings_and_shown_in_the_list(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    token = csrf_token(logged_in, "/settings")
    page = logged_in.post(
        "/settings/api-keys", data={"csrf_token": token, "name": "sender", "scope": "events"}
    ).text
    shown = page.split('data-testid="new-api-key">')[1].split("<")[0]
    assert page.count('data-testid="key-scope">events<') == 1
    assert page.count('data-testid="key-scope">full<') == 1
    headers = {"Authorization": f"Bearer {shown}"}
    assert logged_in.get("/api/v1/campaigns", headers=headers).status_code == 403
    bad = logged_in.post(
        "/settings/api-keys", data={"csrf_token": token, "name": "x", "scope": "root"}
    )
    assert bad.status_code == 302
    assert "scope must be one of full, events" in logged_in.get("/settings").text
    with db.transaction(write=False) as session:
        assert sorted(k.scope for k in accounts.list_api_keys(session, workspace.id)) == [
            "events",
            "full",
        ]


def test_the_openapi_document_states_the_scope(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "403" not in paths["/events"]["post"]["responses"]
    assert "403" not in paths["/contacts/{external_id}"]["put"]["responses"]
    assert "403" in paths["/campaigns"]["get"]["responses"]
    assert "403" in paths["/activity"]["get"]["responses"]
