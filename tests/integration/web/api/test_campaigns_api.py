"""Campaigns and templates over the API: lifecycle rules, secrets, templates, isolation."""

from __future__ import annotations

from typing import Any

from pytest_httpserver import HTTPServer
from sqlalchemy import select

from engine.store.models import Campaign, Notification
from tests.conftest import ApiClient, make_workspace
from tests.integration.factories import event_campaign, make_campaign, webhook


def _stored(db: Any, campaign_id: str) -> Campaign:
    with db.session() as session:
        return session.get(Campaign, campaign_id)


def test_create_is_a_draft_and_secrets_are_write_only(api: ApiClient, db: Any) -> None:
    created = api.post("/campaigns", json={"name": "Leads", "webhook": webhook()})
    assert created.status_code == 201
    body = created.get_json()
    assert body["status"] == "draft"
    secret = body["webhook"]["secret"]
    assert secret.startswith("whsec_") and "****" not in secret  # shown once, in full
    assert body["webhook"]["auth"]["password"] == "****"
    assert set(body) >= {"id", "trigger", "audience", "frequency_cap", "health", "created_at"}

    shown = api.get(f"/campaigns/{body['id']}").get_json()
    assert shown["webhook"]["secret"].startswith("whsec_****")
    assert shown["webhook"]["auth"]["password"] == "****"
    row = _stored(db, body["id"])
    assert "password" not in row.channel["auth"]
    assert row.channel_secrets == {"password": "s3cret"}
    assert row.signing_secret == secret

    # Omitted, or sent back masked: kept. Given: replaced.
    api.patch(f"/campaigns/{body['id']}", json={"webhook": {"url": "http://127.0.0.1:9/x"}})
    assert _stored(db, body["id"]).channel_secrets == {"password": "s3cret"}
    response = api.patch(f"/campaigns/{body['id']}", json={"webhook": shown["webhook"]})
    assert response.status_code == 200, response.get_json()
    row = _stored(db, body["id"])
    assert row.channel_secrets == {"password": "s3cret"} and row.signing_secret == secret
    api.patch(
        f"/campaigns/{body['id']}",
        json={"webhook": {"auth": {"type": "basic", "username": "u", "password": "new"}}},
    )
    assert _stored(db, body["id"]).channel_secrets == {"password": "new"}


def test_validation_names_the_bad_node(api: ApiClient) -> None:
    trigger = {
        "type": "event",
        "events": ["lead.*"],
        "conditions": {
            "all": [
                {"field": "contact.plan", "op": "eq", "value": "pro"},
                {"any": [{"field": "contact.score", "op": "bigger", "value": 3}]},
            ]
        },
    }
    response = api.post("/campaigns", json={"name": "x", "trigger": trigger})
    assert response.status_code == 422
    assert "trigger.conditions.all[1].any[0].op" in response.get_json()["error"]["details"]
    response = api.post("/campaigns", json={"name": "x", "webhook": {"url": "ftp://x"}})
    assert response.status_code == 422
    assert "webhook.url" in response.get_json()["error"]["details"]


def test_webhook_errors_name_list_positions_in_brackets(api: ApiClient) -> None:
    fields = [{"name": "who", "source": "contact.external_id"}, {"source": "contact.plan"}]
    channel = webhook(body={"mode": "mapping", "fields": fields})
    for path in ("/campaigns", "/templates"):
        response = api.post(path, json={"name": "x", "webhook": channel})
        assert response.status_code == 422
        details = response.get_json()["error"]["details"]
        assert "webhook.body.fields[1].name" in details, details
        assert not any(".1." in location for location in details), details
        assert all(
            isinstance(m, list) and all(isinstance(t, str) for t in m) for m in details.values()
        ), details


def test_lifecycle_rules(api: ApiClient) -> None:
    draft = api.post("/campaigns", json={"name": "Draft"}).get_json()
    refused = api.post(f"/campaigns/{draft['id']}/activate")
    assert refused.status_code == 422
    details = refused.get_json()["error"]["details"]
    assert {"trigger.events", "webhook.url"} <= set(details)
    assert all(
        isinstance(m, list) and all(isinstance(t, str) for t in m) for m in details.values()
    ), details
    assert api.post(f"/campaigns/{draft['id']}/pause").status_code == 409

    campaign = event_campaign(api, ["lead.create"])
    assert campaign["status"] == "active"
    assert api.delete(f"/campaigns/{campaign['id']}").status_code == 409
    # An active campaign must stay complete.
    emptied = api.patch(
        f"/campaigns/{campaign['id']}", json={"trigger": {"type": "event", "events": []}}
    )
    assert emptied.status_code == 422
    paused = api.post(f"/campaigns/{campaign['id']}/pause").get_json()
    assert paused["status"] == "paused"
    assert api.post(f"/campaigns/{campaign['id']}/archive").get_json()["status"] == "archived"
    again = api.post(f"/campaigns/{campaign['id']}/activate")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "invalid_state"
    assert api.patch(f"/campaigns/{campaign['id']}", json={"name": "n"}).status_code == 409
    assert api.delete(f"/campaigns/{campaign['id']}").status_code == 204
    assert api.get(f"/campaigns/{campaign['id']}").status_code == 404


def test_rotate_duplicate_and_list(api: ApiClient, db: Any) -> None:
    campaign = event_campaign(api, ["lead.create"], activate=False)
    old = campaign["webhook"]["secret"]
    rotated = api.post(f"/campaigns/{campaign['id']}/rotate-secret").get_json()
    assert rotated["webhook"]["secret"] != old and "****" not in rotated["webhook"]["secret"]
    row = _stored(db, campaign["id"])
    assert row.previous_signing_secret == old and row.previous_secret_expires_at is not None

    copy = api.post(f"/campaigns/{campaign['id']}/duplicate", json={"name": "Again"})
    assert copy.status_code == 201
    copy_body = copy.get_json()
    assert copy_body["status"] == "draft" and copy_body["name"] == "Again"
    assert copy_body["webhook"]["secret"] != rotated["webhook"]["secret"]
    assert _stored(db, copy_body["id"]).channel_secrets == {"password": "s3cret"}

    first = api.get("/campaigns?limit=1").get_json()
    assert len(first["data"]) == 1 and first["next_cursor"]
    second = api.get(f"/campaigns?limit=1&cursor={first['next_cursor']}").get_json()
    assert {first["data"][0]["id"], second["data"][0]["id"]} == {campaign["id"], copy_body["id"]}


def test_templates_copy_and_later_edits_do_not_reach(api: ApiClient, db: Any) -> None:
    template = api.post(
        "/templates", json={"name": "CRM", "webhook": webhook("http://127.0.0.1:9/crm")}
    )
    assert template.status_code == 201, template.get_json()
    tpl = template.get_json()
    assert tpl["webhook"]["auth"]["password"] == "****" and "secret" not in tpl["webhook"]
    created = api.post(
        "/campaigns",
        json={
            "name": "From template",
            "template_id": tpl["id"],
            "trigger": {"type": "event", "events": ["a.b"]},
        },
    ).get_json()
    assert created["webhook"]["url"] == "http://127.0.0.1:9/crm"
    assert _stored(db, created["id"]).channel_secrets == {"password": "s3cret"}

    edit = api.patch(f"/templates/{tpl['id']}", json={"webhook": {"url": "http://127.0.0.1:9/v2"}})
    assert edit.status_code == 200
    assert edit.get_json()["webhook"]["auth"]["password"] == "****"
    assert api.get(f"/campaigns/{created['id']}").get_json()["webhook"]["url"].endswith("/crm")

    saved = api.post(f"/campaigns/{created['id']}/save-as-template", json={"name": "Copy"})
    assert saved.status_code == 201 and saved.get_json()["name"] == "Copy"
    names = {t["name"] for t in api.get("/templates").get_json()["data"]}
    assert names == {"CRM", "Copy"}
    assert api.post("/campaigns", json={"name": "x", "template_id": "tpl_nope"}).status_code == 404
    assert api.delete(f"/templates/{tpl['id']}").status_code == 204
    assert api.get(f"/templates/{tpl['id']}").status_code == 404


def test_delivery_control_defaults_round_trip_and_patch(api: ApiClient, db: Any) -> None:
    """``max_concurrency`` and ``rate_limit`` are stored in the channel the engine reads;
    a PATCH that omits them keeps them, as it keeps every other channel field."""
    plain = api.post("/campaigns", json={"name": "Plain", "webhook": webhook()}).get_json()
    assert plain["webhook"]["max_concurrency"] == 10
    assert plain["webhook"]["rate_limit"] is None

    paced = webhook(max_concurrency=3, rate_limit={"requests": 5, "per": "minute"})
    created = api.post("/campaigns", json={"name": "Paced", "webhook": paced})
    assert created.status_code == 201, created.get_json()
    campaign_id = created.get_json()["id"]
    shown = api.get(f"/campaigns/{campaign_id}").get_json()["webhook"]
    assert shown["max_concurrency"] == 3
    assert shown["rate_limit"] == {"requests": 5, "per": "minute"}
    stored = _stored(db, campaign_id).channel
    assert stored["max_concurrency"] == 3
    assert stored["rate_limit"] == {"requests": 5, "per": "minute"}

    kept = api.patch(f"/campaigns/{campaign_id}", json={"webhook": {"timeout_seconds": 9}})
    assert kept.status_code == 200, kept.get_json()
    assert kept.get_json()["webhook"]["max_concurrency"] == 3
    assert kept.get_json()["webhook"]["rate_limit"] == {"requests": 5, "per": "minute"}
    kept = api.patch(f"/campaigns/{campaign_id}", json={"name": "Renamed"}).get_json()
    assert kept["webhook"]["rate_limit"] == {"requests": 5, "per": "minute"}

    changed = api.patch(
        f"/campaigns/{campaign_id}",
        json={"webhook": {"rate_limit": None, "max_concurrency": 1}},
    ).get_json()
    assert changed["webhook"]["rate_limit"] is None
    assert changed["webhook"]["max_concurrency"] == 1
    assert _stored(db, campaign_id).channel["rate_limit"] is None

    # Sent back whole, as a client that read it would: accepted and unchanged.
    again = api.patch(f"/campaigns/{campaign_id}", json={"webhook": changed["webhook"]})
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["webhook"]["max_concurrency"] == 1


def test_delivery_control_errors_are_located(api: ApiClient, db: Any) -> None:
    campaign = event_campaign(api, ["lead.create"], activate=False)
    for bad, location in [
        ({"max_concurrency": 0}, "webhook.max_concurrency"),
        ({"max_concurrency": 101}, "webhook.max_concurrency"),
        ({"max_concurrency": "10"}, "webhook.max_concurrency"),
        ({"rate_limit": {"requests": 5, "per": "day"}}, "webhook.rate_limit.per"),
        ({"rate_limit": {"requests": 0, "per": "second"}}, "webhook.rate_limit.requests"),
        ({"rate_limit": {"requests": 100_001, "per": "hour"}}, "webhook.rate_limit.requests"),
        ({"rate_limit": {"requests": 5, "per": "hour", "burst": 9}}, "webhook.rate_limit.burst"),
        ({"rate_limit": "5/minute"}, "webhook.rate_limit"),
    ]:
        for method, path in (("patch", f"/campaigns/{campaign['id']}"), ("post", "/templates")):
            body = (
                {"webhook": bad} if method == "patch" else {"name": "T", "webhook": webhook(**bad)}
            )
            response = getattr(api, method)(path, json=body)
            assert response.status_code == 422, (path, bad)
            details = response.get_json()["error"]["details"]
            assert set(details) == {location}, (path, bad, details)
    assert _stored(db, campaign["id"]).channel["max_concurrency"] == 10  # nothing saved


def test_templates_carry_delivery_control_to_their_campaigns(api: ApiClient) -> None:
    recipe = webhook(max_concurrency=2, rate_limit={"requests": 100, "per": "hour"})
    template = api.post("/templates", json={"name": "Slow CRM", "webhook": recipe}).get_json()
    assert template["webhook"]["max_concurrency"] == 2
    assert template["webhook"]["rate_limit"] == {"requests": 100, "per": "hour"}
    edited = api.patch(
        f"/templates/{template['id']}", json={"webhook": {"url": "http://127.0.0.1:9/v2"}}
    ).get_json()
    assert edited["webhook"]["rate_limit"] == {"requests": 100, "per": "hour"}
    created = api.post(
        "/campaigns", json={"name": "From slow CRM", "template_id": template["id"]}
    ).get_json()
    assert created["webhook"]["max_concurrency"] == 2
    assert created["webhook"]["rate_limit"] == {"requests": 100, "per": "hour"}
    saved = api.post(f"/campaigns/{created['id']}/save-as-template", json={"name": "Again"})
    copy = api.get(f"/templates/{saved.get_json()['id']}").get_json()
    assert copy["webhook"]["max_concurrency"] == 2


def test_a_channel_stored_before_delivery_control_shows_the_defaults(
    api: ApiClient, db: Any
) -> None:
    with db.transaction() as session:
        campaign_id = make_campaign(session, api.workspace.id).id
    assert "max_concurrency" not in _stored(db, campaign_id).channel
    shown = api.get(f"/campaigns/{campaign_id}").get_json()["webhook"]
    assert shown["max_concurrency"] == 10 and shown["rate_limit"] is None
    draft = api.post("/campaigns", json={"name": "No webhook yet"}).get_json()
    assert draft["webhook"]["max_concurrency"] == 10 and draft["webhook"]["rate_limit"] is None


def test_another_workspaces_objects_are_404(api: ApiClient, client: Any, db: Any) -> None:
    campaign = event_campaign(api, ["lead.create"], activate=False)
    template = api.post("/templates", json={"name": "T", "webhook": webhook()}).get_json()
    other = ApiClient(client, make_workspace(db, "Other", "other@acme.test"))
    for path in (f"/campaigns/{campaign['id']}", f"/templates/{template['id']}"):
        assert other.get(path).status_code == 404
        assert other.patch(path, json={"name": "mine"}).status_code == 404
        assert other.delete(path).status_code == 404
    for action in ("activate", "pause", "rotate-secret", "duplicate", "runs"):
        method = other.get if action == "runs" else other.post
        assert method(f"/campaigns/{campaign['id']}/{action}").status_code == 404
    used = other.post("/campaigns", json={"name": "x", "template_id": template["id"]})
    assert used.status_code == 404
    assert other.get("/campaigns").get_json()["data"] == []


def test_test_send_returns_the_response_and_logs_it(
    api: ApiClient, db: Any, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_json({"ok": True}, status=201)
    campaign = event_campaign(
        api, ["lead.create"], webhook=webhook(httpserver.url_for("/hook")), activate=False
    )
    response = api.post(
        f"/campaigns/{campaign['id']}/test",
        json={"contact": {"attributes": {"plan": "pro"}}, "event": {"name": "lead.create"}},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["response"]["status_code"] == 201
    assert '"ok"' in body["response"]["body"]
    headers = {h["name"]: h["value"] for h in body["request"]["headers"]}
    assert headers["Authorization"] == "Basic ****"
    assert headers["webhook-id"] == body["notification_id"]
    sent = httpserver.log[0][0]
    assert sent.headers["Authorization"].startswith("Basic ") and sent.json["plan"] == "pro"
    with db.session() as session:
        row = session.get(Notification, body["notification_id"])
        assert row.test is True and row.status == "delivered"

    missing = api.post(
        f"/campaigns/{campaign['id']}/test", json={"contact": {"external_id": "nobody"}}
    )
    assert missing.status_code == 404


def test_test_send_render_error_is_reported(api: ApiClient, db: Any) -> None:
    channel = webhook(body={"mode": "raw", "template": '{"a": {{ contact.nope | tojson }}}'})
    campaign = event_campaign(api, ["x"], webhook=channel, activate=False)
    body = api.post(
        f"/campaigns/{campaign['id']}/test", json={"contact": {"attributes": {}}}
    ).get_json()
    assert body["error"]["code"] == "render_error"
    with db.session() as session:
        rows = list(session.scalars(select(Notification)))
    assert [(r.status, r.test) for r in rows] == [("failed", True)]
