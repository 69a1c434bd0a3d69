"""Drafts save incomplete; activation names what is missing, by field, in words."""

from __future__ import annotations

from flask.testing import FlaskClient

from engine.campaigns import service as campaign_service
from engine.store import Database
from engine.store.models import Campaign
from tests.conftest import WorkspaceFixture, csrf_token


def _draft(db: Database, workspace_id: str) -> str:
    with db.transaction() as session:
        campaign, _ = campaign_service.create_campaign(session, workspace_id, {"name": "New"})
        return campaign.id


def test_a_draft_saves_without_a_url_and_activation_says_what_is_missing(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    cid = _draft(db, workspace.id)
    token = csrf_token(logged_in, f"/campaigns/{cid}")
    headers = {"X-CSRFToken": token}
    body = {
        "name": "New",
        "trigger": {"type": "event", "events": []},
        "webhook": {"url": "", "method": "POST", "headers": [{"name": "X-A", "value": "1"}]},
    }
    saved = logged_in.post(f"/campaigns/{cid}/save", json=body, headers=headers)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["webhook"]["url"] == ""

    fine = logged_in.post(f"/campaigns/{cid}/check", json=body, headers=headers).get_json()
    assert fine == {"details": {}, "labels": {}}
    check = logged_in.post(f"/campaigns/{cid}/check?activate=1", json=body, headers=headers)
    answer = check.get_json()
    assert set(answer["details"]) == {"trigger.events", "webhook.url"}
    assert answer["labels"] == {
        "trigger.events": "Setup \u203a Events",
        "webhook.url": "Content \u203a URL",
    }
    with db.session() as session:  # checking stores nothing
        assert session.get(Campaign, cid).name == "New"

    bad = {**body, "webhook": {"url": "http://127.0.0.1:9/{{ contact.x | upcase }}"}}
    refused = logged_in.post(f"/campaigns/{cid}/save", json=bad, headers=headers)
    error = refused.get_json()["error"]
    assert refused.status_code == 422
    assert error["details"]["webhook.url"] == [
        "line 1, column 33: unknown filter 'upcase' \u2014 did you mean 'upper'?"
    ]
    assert error["labels"]["webhook.url"] == "Content \u203a URL"

    page = logged_in.post(
        f"/campaigns/{cid}/activate", data={"csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Could not activate the campaign \u2014 2 things to finish:" in page
    assert "Setup \u203a Events: name at least one event" in page
    assert "Content \u203a URL: the webhook needs a URL" in page


def test_an_active_campaign_still_needs_its_url(
    logged_in: FlaskClient, api, db: Database, workspace: WorkspaceFixture
) -> None:
    created = api.post(
        "/campaigns",
        json={
            "name": "Live",
            "trigger": {"type": "event", "events": ["a.b"]},
            "webhook": {"url": "http://127.0.0.1:9/x"},
        },
    ).get_json()
    assert api.post(f"/campaigns/{created['id']}/activate").status_code == 200
    emptied = api.patch(f"/campaigns/{created['id']}", json={"webhook": {"url": ""}})
    assert emptied.status_code == 422
    assert emptied.get_json()["error"]["details"] == {
        "webhook.url": ["Enter the address the webhook is sent to."]
    }
    draft = api.post("/campaigns", json={"name": "D", "webhook": {"method": "PUT"}})
    assert draft.status_code == 201 and draft.get_json()["webhook"]["url"] == ""
