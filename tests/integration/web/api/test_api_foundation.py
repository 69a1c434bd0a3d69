"""API authentication, workspace isolation, the error envelope and contacts."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from engine.store import Database, accounts
from engine.store.types import utcnow
from tests.conftest import ApiClient, WorkspaceFixture, make_workspace


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert error["message"]
    return error


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer hk_not-a-real-key"},
    ],
)
def test_missing_or_wrong_keys_are_401(client: FlaskClient, workspace, headers) -> None:
    assert_envelope(client.get("/api/v1/contacts", headers=headers), 401, "unauthorized")


def test_revoked_key_is_401(client: FlaskClient, db: Database, workspace: WorkspaceFixture) -> None:
    with db.transaction() as session:
        (key,) = accounts.list_api_keys(session, workspace.id)
        assert accounts.revoke_api_key(session, workspace_id=workspace.id, key_id=key.id)
    response = client.get("/api/v1/contacts", headers=workspace.headers)
    assert_envelope(response, 401, "unauthorized")


def test_a_key_in_use_is_refused_at_once_when_revoked_here(api: ApiClient, db: Database) -> None:
    assert api.get("/workspace").status_code == 200  # its grant is now kept for a second
    with db.transaction() as session:
        (key,) = accounts.list_api_keys(session, api.workspace.id)
        assert accounts.revoke_api_key(session, workspace_id=api.workspace.id, key_id=key.id)
    assert_envelope(api.get("/workspace"), 401, "unauthorized")


def test_a_key_revoked_by_another_process_stops_working_within_a_second(
    api: ApiClient, db: Database
) -> None:
    assert api.get("/workspace").status_code == 200
    with db.transaction() as session:  # as another process would: plain SQL, no hooks here
        session.execute(
            text("UPDATE api_keys SET revoked_at = :now WHERE workspace_id = :ws"),
            {"now": utcnow(), "ws": api.workspace.id},
        )
    time.sleep(accounts.API_KEY_CACHE_SECONDS)
    assert_envelope(api.get("/workspace"), 401, "unauthorized")


def test_key_records_last_use(api: ApiClient, db: Database) -> None:
    assert api.get("/workspace").status_code == 200
    with db.transaction(write=False) as session:
        (key,) = accounts.list_api_keys(session, api.workspace.id)
        assert key.last_used_at is not None
        assert key.prefix == api.workspace.api_key[:10]
        assert key.key_hash != api.workspace.api_key  # stored hashed


def test_envelope_for_routing_errors(api: ApiClient) -> None:
    assert_envelope(api.get("/no-such-thing"), 404, "not_found")
    assert_envelope(api.request("PATCH", "/contacts"), 405, "method_not_allowed")


def test_envelope_for_malformed_json(api: ApiClient) -> None:
    response = api.put(
        "/contacts/c1", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert_envelope(response, 400, "bad_request")
    response = api.put("/contacts/c1", data="", headers={"Content-Type": "application/json"})
    assert_envelope(response, 400, "bad_request")
    response = api.put(
        "/contacts/c1", data='{"attributes": {}}', headers={"Content-Type": "text/plain"}
    )
    assert_envelope(response, 415, "unsupported_media_type")


def test_nan_and_infinity_are_not_json(api: ApiClient, db) -> None:
    """Python's parser accepts them, PostgreSQL's JSON columns do not: refused up front,
    nothing stored, on every database."""
    bodies = [
        '{"name": "x", "contact": {"external_id": "c1", "attributes": {"score": NaN}}}',
        '{"name": "x", "contact": {"external_id": "c1"}, "properties": {"v": -Infinity}}',
    ]
    for body in bodies:
        response = api.post("/events", data=body, headers={"Content-Type": "application/json"})
        error = assert_envelope(response, 400, "bad_request")
        assert "is not a JSON value" in error["message"]
    response = api.put(
        "/contacts/c1",
        data='{"attributes": {"x": Infinity}}',
        headers={"Content-Type": "application/json"},
    )
    assert_envelope(response, 400, "bad_request")
    assert api.get("/contacts/c1").status_code == 404


def test_envelope_for_unknown_and_invalid_fields(api: ApiClient) -> None:
    error = assert_envelope(
        api.put("/contacts/c1", json={"attributes": {}, "plan": "x"}), 422, "validation_error"
    )
    assert "plan" in error["details"]
    error = assert_envelope(
        api.put("/contacts/c1", json={"attributes": "pro"}), 422, "validation_error"
    )
    assert "attributes" in error["details"]
    error = assert_envelope(api.put("/contacts/c1", json=[1, 2]), 422, "validation_error")


def test_validation_details_are_flat_paths(api: ApiClient) -> None:
    error = assert_envelope(
        api.put("/contacts/c1", json={"attributes": ["pro"]}), 422, "validation_error"
    )
    assert error["details"] == {"attributes": ["Not a valid mapping type."]}
    body = {
        "name": "x",
        "audience": {"test_contacts": ["c1", 5]},
        "frequency_cap": {"max": "often", "per_seconds": 60},
    }
    error = assert_envelope(api.post("/campaigns", json=body), 422, "validation_error")
    assert error["details"] == {
        "audience.test_contacts[1]": ["Not a valid string."],
        "frequency_cap.max": ["Not a valid integer."],
    }


def test_envelope_for_oversized_bodies(api: ApiClient, app) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = api.put("/contacts/c1", json={"attributes": {"blob": "x" * 4096}})
    assert_envelope(response, 413, "payload_too_large")


def test_attributes_over_64_kib_are_refused(api: ApiClient) -> None:
    error = assert_envelope(
        api.put("/contacts/c1", json={"attributes": {"blob": "x" * 70_000}}),
        422,
        "validation_error",
    )
    assert "at most" in str(error["details"])


def test_unexpected_errors_are_a_json_500_and_logged(app, api: ApiClient, caplog) -> None:
    from web.api import bp  # noqa: F401  (the route is added to the app directly)

    @app.get("/api/v1/__boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    error = assert_envelope(api.get("/__boom"), 500, "internal_error")
    assert "kaboom" not in error["message"]
    assert any("kaboom" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_contacts_crud(api: ApiClient) -> None:
    created = api.put("/contacts/lead-42", json={"attributes": {"email": "a@x.io", "score": 7}})
    assert created.status_code == 201
    body = created.get_json()
    assert body["external_id"] == "lead-42"
    assert body["attributes"] == {"email": "a@x.io", "score": 7}
    assert body["created_at"].endswith("Z")

    replaced = api.put("/contacts/lead-42", json={"attributes": {"email": "b@x.io"}})
    assert replaced.status_code == 200
    assert replaced.get_json()["attributes"] == {"email": "b@x.io"}  # PUT replaces
    assert replaced.get_json()["id"] == body["id"]

    assert api.get("/contacts/lead-42").get_json()["attributes"] == {"email": "b@x.io"}
    assert api.delete("/contacts/lead-42").status_code == 204
    assert_envelope(api.get("/contacts/lead-42"), 404, "not_found")
    assert_envelope(api.delete("/contacts/lead-42"), 404, "not_found")


def test_external_ids_with_slashes_and_unicode(api: ApiClient) -> None:
    for external_id in ["org/7/user 1", "Zoë-💡", "a%2Fb"]:
        path = "/contacts/" + quote(external_id, safe="")  # clients percent-encode ids
        assert api.put(path, json={"attributes": {}}).status_code == 201
        assert api.get(path).get_json()["external_id"] == external_id


def test_contacts_pagination_walks_every_contact_once(api: ApiClient) -> None:
    for n in range(7):
        assert api.put(f"/contacts/c{n}", json={"attributes": {"n": n}}).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        query = "/contacts?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(query).get_json()
        seen += [c["external_id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"c{n}" for n in reversed(range(7))]  # newest first, no repeats


def test_contacts_list_filters_by_prefix_literally(api: ApiClient) -> None:
    for external_id in ["lead_1", "lead%2", "leadx", "other"]:
        api.put(f"/contacts/{external_id}", json={"attributes": {}})
    found = api.get("/contacts?external_id_prefix=lead_").get_json()["data"]
    assert [c["external_id"] for c in found] == ["lead_1"]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=abc", "limit=100000", "cursor=%%%", "cursor=WzFd"]
)
def test_bad_paging_parameters_are_400(api: ApiClient, query: str) -> None:
    assert_envelope(api.get(f"/contacts?{query}"), 400, "bad_request")


def test_workspaces_are_isolated(client: FlaskClient, db: Database, api: ApiClient) -> None:
    other = make_workspace(db, name="Other", email="owner@other.test")
    api.put("/contacts/shared-id", json={"attributes": {"owner": "acme"}})
    other_api = ApiClient(client, other)

    assert_envelope(other_api.get("/contacts/shared-id"), 404, "not_found")
    assert_envelope(other_api.delete("/contacts/shared-id"), 404, "not_found")
    assert other_api.get("/contacts").get_json()["data"] == []

    # The same external id in another workspace is another contact.
    assert (
        other_api.put("/contacts/shared-id", json={"attributes": {"owner": "other"}}).status_code
        == 201
    )
    assert api.get("/contacts/shared-id").get_json()["attributes"] == {"owner": "acme"}
    assert other_api.get("/workspace").get_json()["id"] == other.id


def test_healthz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
