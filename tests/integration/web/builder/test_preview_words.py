"""The preview that cannot render keeps its warnings, names the field in words, and
suggests the attribute the workspace's contacts really have."""

from __future__ import annotations

from flask.testing import FlaskClient

from engine.campaigns import service as campaign_service
from engine.store import Database, contacts
from tests.conftest import WorkspaceFixture, csrf_token


def test_a_failed_preview_keeps_warnings_and_says_did_you_mean(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    with db.transaction() as s:
        campaign, _ = campaign_service.create_campaign(s, workspace.id, {"name": "P"})
        contacts.upsert_contact(s, workspace.id, "ada", {"first_name": "Ada", "tier": "gold"})
        cid = campaign.id
    token = csrf_token(logged_in, f"/campaigns/{cid}")
    webhook = {
        "url": "http://127.0.0.1:9/{{ contact.name }}",
        "headers": [{"name": "X-Tier", "value": "{{ contact.teir }}"}],
    }
    answer = logged_in.post(
        f"/campaigns/{cid}/preview",
        json={"webhook": webhook, "contact": {"external_id": "ada"}},
        headers={"X-CSRFToken": token},
    )
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["message"] == "No preview: with this test data the request cannot be built."
    assert error["details"] == {
        "webhook.url": [
            "contact.name is missing and has no fallback (add | default(...))"
            " \u2014 did you mean contact.first_name?"
        ]
    }
    assert error["labels"] == {"webhook.url": "Content \u203a URL"}
    by_place = {w["location"]: w["message"] for w in error["warnings"]}
    assert set(by_place) == {"webhook.url", "webhook.headers[0].value"}
    assert by_place["webhook.headers[0].value"].endswith("did you mean contact.tier?")

    fine = logged_in.post(
        f"/campaigns/{cid}/preview",
        json={
            "webhook": {"url": "http://127.0.0.1:9/{{ contact.first_name }}"},
            "contact": {"external_id": "ada"},
        },
        headers={"X-CSRFToken": token},
    ).get_json()
    assert fine["request"]["url"] == "http://127.0.0.1:9/Ada"
    assert [w["location"] for w in fine["warnings"]] == ["webhook.url"]
    assert "did you mean" not in fine["warnings"][0]["message"]
