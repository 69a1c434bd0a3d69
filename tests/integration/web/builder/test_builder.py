"""The builder's pages and JSON endpoints through the Flask test client.

Validation errors come back located for the page; CSRF is required on every POST; viewers
get 403 on every change; data from contacts and receivers is escaped; another workspace's
campaign or template is a 404.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from engine.campaigns import service as campaign_service
from engine.delivery import signing
from engine.store import Database, accounts, contacts
from tests.conftest import WorkspaceFixture, csrf_token, login, make_workspace
from web.auth import hash_password
from web.builder.campaigns import PAGE_SIZE


def _create_campaign(db: Database, workspace_id: str, **data: Any) -> str:
    with db.transaction() as session:
        campaign, _ = campaign_service.create_campaign(
            session, workspace_id, {"name": "Lead sync", **data}
        )
        return campaign.id


def _create_template(db: Database, workspace_id: str) -> str:
    with db.transaction() as session:
        template = campaign_service.create_template(
            session,
            workspace_id,
            {"name": "Tpl", "webhook": {"url": "http://127.0.0.1:9/hook", "method": "POST"}},
        )
        return template.id


def _post_json(client: FlaskClient, path: str, body: Any, token: str | None) -> Any:
    headers = {"X-CSRFToken": token} if token else {}
    return client.post(path, json=body, headers=headers)


@pytest.fixture
def campaign_id(db: Database, workspace: WorkspaceFixture) -> str:
    return _create_campaign(db, workspace.id)


@pytest.fixture
def token(logged_in: FlaskClient) -> str:
    return csrf_token(logged_in, "/campaigns")


def test_list_new_and_editor_pages_render(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture, campaign_id: str
) -> None:
    listing = logged_in.get("/campaigns").get_data(as_text=True)
    assert "Lead sync" in listing and "no deliveries yet" in listing and "healthy" in listing
    assert logged_in.get("/campaigns/new").status_code == 200
    editor = logged_in.get(f"/campaigns/{campaign_id}")
    assert editor.status_code == 200
    page = editor.get_data(as_text=True)
    for testid in ("tab-setup", "tab-content", "tab-test", "add-header", "add-field", "preview"):
        assert f'data-testid="{testid}"' in page
    assert (
        "<script>"
        not in page.replace('<script type="application/json" data-editor-state>', "").split(
            "</main>"
        )[0]
    )


def _without_csrf(page: str) -> str:
    """The page without its CSRF tokens (signed with the second they were made in)."""
    return re.sub(r'(name="csrf[-_]token" (?:content|value)=)"[^"]*"', r"\1", page)


def _listed_campaign_ids(page: str) -> list[str]:
    rows = page.split('data-testid="campaign-row"')[1:]
    return [re.search(r'href="/campaigns/([^"/]+)"', row).group(1) for row in rows]


def _link(page: str, testid: str) -> str | None:
    match = re.search(rf'href="([^"]+)" data-testid="{testid}"', page)
    return match.group(1).replace("&amp;", "&") if match else None


def test_campaign_list_pages_newest_first_with_older_and_newest_links(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    total = 2 * PAGE_SIZE + 7
    with db.transaction() as session:
        for number in range(total):
            campaign_service.create_campaign(session, workspace.id, {"name": f"Campaign {number}"})
    first = logged_in.get("/campaigns").get_data(as_text=True)
    assert _link(first, "newest-campaigns") is None and _link(first, "newer-campaigns") is None
    pages = [_listed_campaign_ids(first)]
    visited = [first]
    older = _link(first, "older-campaigns")
    while older:
        page = logged_in.get(older).get_data(as_text=True)
        pages.append(_listed_campaign_ids(page))
        visited.append(page)
        newest = logged_in.get(_link(page, "newest-campaigns")).get_data(as_text=True)
        assert _without_csrf(newest) == _without_csrf(first)
        older = _link(page, "older-campaigns")
    assert [len(ids) for ids in pages] == [PAGE_SIZE, PAGE_SIZE, 7]
    # "Newer" steps back the way "Older" came, page by page, to the newest page itself.
    newer = _link(visited[-1], "newer-campaigns")
    assert _listed_campaign_ids(logged_in.get(newer).get_data(as_text=True)) == pages[1]
    middle = logged_in.get(newer).get_data(as_text=True)
    back_on_top = logged_in.get(_link(middle, "newer-campaigns")).get_data(as_text=True)
    assert _listed_campaign_ids(back_on_top) == pages[0]
    assert _link(back_on_top, "newer-campaigns") is None
    assert _link(back_on_top, "older-campaigns") == _link(first, "older-campaigns")
    listed = [campaign_id for ids in pages for campaign_id in ids]
    assert len(set(listed)) == total
    assert listed == sorted(listed, reverse=True)
    assert "Campaign 106" in first and "Campaign 0<" not in first
    past_the_end = logged_in.get(f"/campaigns?before={listed[-1]}").get_data(as_text=True)
    assert "No older campaigns." in past_the_end
    assert _link(past_the_end, "newest-campaigns") == "/campaigns"


def test_create_form_validation_and_success(logged_in: FlaskClient, token: str) -> None:
    refused = logged_in.post(
        "/campaigns/new", data={"name": "", "trigger_type": "event", "csrf_token": token}
    )
    assert refused.status_code == 422
    assert "Give the campaign a name." in refused.get_data(as_text=True)
    bad_template = logged_in.post(
        "/campaigns/new",
        data={"name": "X", "trigger_type": "event", "template_id": "tpl_nope", "csrf_token": token},
    )
    assert bad_template.status_code == 422
    created = logged_in.post(
        "/campaigns/new", data={"name": "Fresh", "trigger_type": "schedule", "csrf_token": token}
    )
    assert created.status_code == 302
    page = logged_in.get(created.headers["Location"]).get_data(as_text=True)
    assert "whsec_" in page  # the signing secret is revealed once...
    again = logged_in.get(created.headers["Location"]).get_data(as_text=True)
    assert 'data-testid="secret-reveal"' not in again  # ...and only once


def test_a_none_of_tree_opens_as_the_root_group_itself(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture
) -> None:
    """A tree that is one "none of" group opens as the root group set to none (not wrapped
    in an "all" group, which would change its shape on every save)."""
    none_of = {"not": {"any": [{"field": "contact.plan", "op": "eq", "value": "free"}]}}
    trigger = {"type": "event", "events": ["x"], "conditions": none_of}
    with db.transaction() as session:
        campaign, _ = campaign_service.create_campaign(
            session, workspace.id, {"name": "Paying", "trigger": trigger}
        )
    page = logged_in.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    root = page.split('data-loc="trigger.conditions"', 1)[1]
    root_head = root.split("data-cond-children", 1)[0]
    assert '<option value="none" selected>' in root_head
    # Its row comes straight after the root's head, with no group in between.
    first_group = root.index("data-cond-group")
    row = root.index('data-cond-field list="field-suggestions" value="contact.plan"')
    assert "data-cond-group" not in root[first_group + 1 : row]


def test_save_returns_located_errors(logged_in: FlaskClient, token: str, campaign_id: str) -> None:
    body = {
        "name": "Lead sync",
        "trigger": {
            "type": "event",
            "events": ["lead.created"],
            "conditions": {
                "all": [
                    {"field": "contact.plan", "op": "eq", "value": "pro"},
                    {"field": "contact.plan", "op": "bogus", "value": 1},
                ]
            },
        },
        "webhook": {
            "url": "ftp://example.com/x",
            "body": {
                "mode": "mapping",
                "fields": [
                    {"name": "a", "source": "contact.email"},
                    {"name": "b", "source": "contact.email"},
                    {"name": "c", "source": "{{ nope"},
                ],
            },
        },
    }
    response = _post_json(logged_in, f"/campaigns/{campaign_id}/save", body, token)
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert "webhook.url" in details
    assert "trigger.conditions.all[1].op" in details
    assert any(loc.startswith("webhook.body.fields[2]") for loc in details), details
    body["webhook"]["timeout_seconds"] = "soon"
    body["webhook"]["body"]["fields"][0]["name"] = ""
    response = _post_json(logged_in, f"/campaigns/{campaign_id}/save", body, token)
    details = response.get_json()["error"]["details"]
    assert "webhook.timeout_seconds" in details
    assert "webhook.body.fields[0].name" in details


def test_save_keeps_write_only_secrets_and_reports_warnings(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture, token: str, campaign_id: str
) -> None:
    webhook = {
        "url": "http://127.0.0.1:9/hook",
        "auth": {"type": "basic", "username": "api", "password": "s3cret"},
        "body": {"mode": "mapping", "fields": [{"name": "e", "source": "contact.email"}]},
    }
    first = _post_json(
        logged_in, f"/campaigns/{campaign_id}/save", {"name": "L", "webhook": webhook}, token
    )
    assert first.status_code == 200, first.get_json()
    saved = first.get_json()
    assert saved["webhook"]["auth"]["password"] == "****"
    assert any(w["location"] == "webhook.body.fields[0].source" for w in saved["warnings"])
    webhook["auth"] = {"type": "basic", "username": "api2"}  # password left blank
    second = _post_json(
        logged_in, f"/campaigns/{campaign_id}/save", {"name": "L", "webhook": webhook}, token
    )
    assert second.status_code == 200
    with db.session() as session:
        from engine.store import campaigns as store

        row = store.get_campaign(session, workspace.id, campaign_id)
        assert row.channel_secrets == {"password": "s3cret"}
        assert row.channel["auth"]["username"] == "api2"


def test_delivery_control_saves_and_shows_on_campaign_and_template_editors(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture, token: str, campaign_id: str
) -> None:
    """The Content tab and the template editor share the channel form and its save."""
    template_id = _create_template(db, workspace.id)
    for editor in (f"/campaigns/{campaign_id}", f"/templates/{template_id}"):
        page = logged_in.get(editor).get_data(as_text=True)
        assert re.search(r'data-path="webhook.max_concurrency"[^>]*value="10"', page)
        assert '<option value="none" selected>No limit</option>' in page
        webhook = {
            "url": "http://127.0.0.1:9/hook",
            "max_concurrency": 3,
            "rate_limit": {"requests": 5, "per": "minute"},
        }
        saved = _post_json(logged_in, f"{editor}/save", {"webhook": webhook}, token)
        assert saved.status_code == 200, saved.get_json()
        assert saved.get_json()["webhook"]["rate_limit"] == {"requests": 5, "per": "minute"}
        page = logged_in.get(editor).get_data(as_text=True)
        assert re.search(r'data-path="webhook.max_concurrency"[^>]*value="3"', page)
        assert re.search(r'data-path="webhook.rate_limit.requests"[^>]*value="5"', page)
        assert '<option value="minute" selected>requests per minute</option>' in page
        assert "Lower it for receivers that cannot take parallel requests." in page

        webhook["rate_limit"] = {"requests": 5, "per": "fortnight"}
        refused = _post_json(logged_in, f"{editor}/save", {"webhook": webhook}, token)
        assert refused.status_code == 422
        assert set(refused.get_json()["error"]["details"]) == {"webhook.rate_limit.per"}
        webhook["rate_limit"] = None  # "No limit"
        cleared = _post_json(logged_in, f"{editor}/save", {"webhook": webhook}, token)
        assert cleared.get_json()["webhook"]["rate_limit"] is None


def test_preview_renders_with_stored_secret_and_locates_render_errors(
    logged_in: FlaskClient, token: str, campaign_id: str
) -> None:
    url = f"/campaigns/{campaign_id}/save"
    webhook = {"url": "http://127.0.0.1:9/hook", "auth": {"type": "bearer", "token": "tok-123"}}
    assert _post_json(logged_in, url, {"webhook": webhook}, token).status_code == 200
    preview = _post_json(
        logged_in,
        f"/campaigns/{campaign_id}/preview",
        {
            "webhook": {
                "url": "http://127.0.0.1:9/{{ contact.external_id }}",
                "auth": {"type": "bearer"},
            },
            "contact": {"external_id": "lead-1", "attributes": {}},
        },
        token,
    )
    assert preview.status_code == 200, preview.get_json()
    request = preview.get_json()["request"]
    assert request["url"] == "http://127.0.0.1:9/lead-1"
    assert {"name": "Authorization", "value": "Bearer ****"} in request["headers"]
    failing = _post_json(
        logged_in,
        f"/campaigns/{campaign_id}/preview",
        {
            "webhook": {"url": "http://127.0.0.1:9/{{ contact.missing }}"},
            "contact": {"attributes": {}},
        },
        token,
    )
    assert failing.status_code == 422
    assert "webhook.url" in failing.get_json()["error"]["details"]


def _signing_secrets(db: Database, workspace_id: str, campaign_id: str) -> list[str]:
    from engine.store import campaigns as store

    with db.transaction() as session:
        row = store.get_campaign(session, workspace_id, campaign_id)
        return [row.signing_secret, row.previous_signing_secret]


def test_preview_shows_the_signed_headers_added_at_send_time(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture, token: str, campaign_id: str
) -> None:
    payload = {
        "webhook": {
            "url": "http://127.0.0.1:9/hook",
            "body": {"mode": "raw", "template": '{"who": {{ contact.external_id | tojson }}}'},
        },
        "contact": {"external_id": "lead-ü", "attributes": {}},
    }
    started = int(time.time())
    answer = _post_json(logged_in, f"/campaigns/{campaign_id}/preview", payload, token)
    assert answer.status_code == 200, answer.get_json()
    preview = answer.get_json()
    body = preview["request"]["body"].encode()
    assert body == '{"who": "lead-ü"}'.encode()
    added = {h["name"]: h["value"] for h in preview["send_time_headers"]}
    assert list(added) == ["webhook-id", "webhook-timestamp", "webhook-signature"]
    assert not set(added) & {h["name"] for h in preview["request"]["headers"]}
    timestamp = int(added["webhook-timestamp"])
    assert started <= timestamp <= int(time.time())
    secret, _ = _signing_secrets(db, workspace.id, campaign_id)
    assert added["webhook-signature"] == signing.sign(
        msg_id=added["webhook-id"], timestamp=timestamp, body=body, secret=secret
    )
    assert secret not in answer.get_data(as_text=True)

    # During the 24 h after a rotation the old secret signs too, as it does at send time.
    rotated = _post_json(logged_in, f"/campaigns/{campaign_id}/rotate-secret", {}, token)
    assert rotated.status_code == 200
    answer = _post_json(logged_in, f"/campaigns/{campaign_id}/preview", payload, token)
    added = {h["name"]: h["value"] for h in answer.get_json()["send_time_headers"]}
    timestamp = int(added["webhook-timestamp"])
    assert added["webhook-signature"] == signing.signature_header(
        msg_id="msg_preview",
        timestamp=timestamp,
        body=body,
        secrets=_signing_secrets(db, workspace.id, campaign_id),
    )
    assert len(added["webhook-signature"].split(" ")) == 2
    assert rotated.get_json()["secret"] not in answer.get_data(as_text=True)


def test_schedule_preview_and_audience_estimate(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture, token: str, campaign_id: str
) -> None:
    trigger = {"type": "schedule", "cron": "0 9 * * MON", "timezone": "Europe/Dublin"}
    answer = _post_json(
        logged_in, f"/campaigns/{campaign_id}/schedule-preview", {"trigger": trigger}, token
    ).get_json()
    assert "Monday" in answer["description"] and answer["next_fire_time"]
    bad = _post_json(
        logged_in,
        f"/campaigns/{campaign_id}/schedule-preview",
        {"trigger": {"type": "schedule", "cron": "nope", "timezone": "UTC"}},
        token,
    )
    assert bad.status_code == 422 and bad.get_json()["error"]["details"]
    with db.transaction() as session:
        for index, plan in enumerate(["pro", "pro", "free"]):
            contacts.upsert_contact(session, workspace.id, f"c{index}", {"plan": plan})
    estimate = _post_json(
        logged_in,
        f"/campaigns/{campaign_id}/audience-estimate",
        {"conditions": {"all": [{"field": "contact.plan", "op": "eq", "value": "pro"}]}},
        token,
    ).get_json()
    assert estimate["count"] == 2


def test_test_send_to_a_loopback_receiver_escapes_the_response(
    logged_in: FlaskClient, token: str, campaign_id: str, httpserver: Any
) -> None:
    httpserver.expect_request("/hook").respond_with_data("<script>alert(1)</script>", status=201)
    hook = httpserver.url_for("/hook").replace("localhost", "127.0.0.1")
    saved = _post_json(
        logged_in, f"/campaigns/{campaign_id}/save", {"webhook": {"url": hook}}, token
    )
    assert saved.status_code == 200, saved.get_json()
    result = _post_json(
        logged_in,
        f"/campaigns/{campaign_id}/test-send",
        {
            "contact": {"external_id": "x", "attributes": {"email": "a@b.c"}},
            "event": {"name": "lead.created", "properties": {}},
        },
        token,
    )
    assert result.status_code == 200, result.get_json()
    assert result.get_json()["response"]["status_code"] == 201
    assert result.get_json()["response"]["body"] == "<script>alert(1)</script>"
    assert result.headers["Content-Type"].startswith("application/json")


def test_contact_attributes_are_escaped_on_the_editor(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture, token: str
) -> None:
    with db.transaction() as session:
        contacts.upsert_contact(session, workspace.id, "evil", {"email": "<script>x()</script>"})
    campaign_id = _create_campaign(db, workspace.id, audience={"test_contacts": ["evil"]})
    page = logged_in.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "<script>x()</script>" not in page
    assert "&lt;script&gt;x()&lt;/script&gt;" in page
    found = logged_in.get(f"/campaigns/{campaign_id}/contacts?q=ev").get_json()
    assert found["data"][0]["label"] == "evil · <script>x()</script>"  # JSON; shown as text


def test_posts_without_csrf_token_are_refused(
    logged_in: FlaskClient, campaign_id: str, db: Database, workspace: WorkspaceFixture
) -> None:
    template_id = _create_template(db, workspace.id)
    for path in (
        f"/campaigns/{campaign_id}/save",
        f"/campaigns/{campaign_id}/preview",
        f"/campaigns/{campaign_id}/rotate-secret",
        f"/templates/{template_id}/save",
    ):
        assert _post_json(logged_in, path, {}, None).status_code == 400, path
    for path in (
        "/campaigns/new",
        f"/campaigns/{campaign_id}/activate",
        f"/templates/{template_id}/delete",
    ):
        assert logged_in.post(path, data={"name": "x"}).status_code == 400, path


def test_viewer_sees_everything_and_changes_nothing(
    client: FlaskClient, db: Database, workspace: WorkspaceFixture, campaign_id: str
) -> None:
    template_id = _create_template(db, workspace.id)
    with db.transaction() as session:
        user = accounts.create_user(
            session, email="viewer@acme.test", password_hash=hash_password("correct horse battery")
        )
        accounts.set_membership(session, user_id=user.id, workspace_id=workspace.id, role="viewer")
    login(client, "viewer@acme.test")
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'data-testid="save"' not in page and "disabled" in page
    assert client.get(f"/templates/{template_id}").status_code == 200
    token = csrf_token(client, "/campaigns")
    json_changes = ["save", "test-send", "rotate-secret", "save-as-template"]
    for action in json_changes:
        response = _post_json(client, f"/campaigns/{campaign_id}/{action}", {}, token)
        assert response.status_code == 403, action
    assert _post_json(client, f"/templates/{template_id}/save", {}, token).status_code == 403
    for action in ("activate", "pause", "archive", "duplicate"):
        response = client.post(f"/campaigns/{campaign_id}/{action}", data={"csrf_token": token})
        assert response.status_code == 403, action
    for path in ("/campaigns/new", f"/templates/{template_id}/delete"):
        assert client.post(path, data={"csrf_token": token, "name": "x"}).status_code == 403
    # Previewing changes nothing, so a viewer may, but sees no signature: signing any body
    # a viewer types would let them forge webhooks.
    preview = _post_json(
        client,
        f"/campaigns/{campaign_id}/preview",
        {"webhook": {"url": "http://127.0.0.1:9/"}},
        token,
    )
    assert preview.status_code == 200
    added = {h["name"]: h["value"] for h in preview.get_json()["send_time_headers"]}
    assert added["webhook-id"] == "msg_preview" and added["webhook-timestamp"].isdigit()
    assert "editors" in added["webhook-signature"]
    secret, _ = _signing_secrets(db, workspace.id, campaign_id)
    real = signing.sign(
        msg_id="msg_preview",
        timestamp=int(added["webhook-timestamp"]),
        body=preview.get_json()["request"]["body"].encode(),
        secret=secret,
    )
    assert real not in preview.get_data(as_text=True)


def test_another_workspaces_objects_are_404(
    logged_in: FlaskClient, db: Database, token: str
) -> None:
    other = make_workspace(db, "Other", "owner@other.test")
    foreign_campaign = _create_campaign(db, other.id)
    foreign_template = _create_template(db, other.id)
    assert logged_in.get(f"/campaigns/{foreign_campaign}").status_code == 404
    assert logged_in.get(f"/templates/{foreign_template}").status_code == 404
    for action in (
        "save",
        "preview",
        "test-send",
        "rotate-secret",
        "save-as-template",
        "schedule-preview",
        "audience-estimate",
    ):
        response = _post_json(logged_in, f"/campaigns/{foreign_campaign}/{action}", {}, token)
        assert response.status_code == 404, action
    assert (
        logged_in.post(
            f"/campaigns/{foreign_campaign}/activate", data={"csrf_token": token}
        ).status_code
        == 404
    )
    assert (
        logged_in.post(
            f"/templates/{foreign_template}/delete", data={"csrf_token": token}
        ).status_code
        == 404
    )


def test_lifecycle_duplicate_rotate_and_templates(
    logged_in: FlaskClient, db: Database, workspace: WorkspaceFixture, token: str, campaign_id: str
) -> None:
    refused = logged_in.post(f"/campaigns/{campaign_id}/activate", data={"csrf_token": token})
    assert refused.status_code == 302
    assert "things to finish" in logged_in.get(refused.headers["Location"]).get_data(as_text=True)
    saved = _post_json(
        logged_in,
        f"/campaigns/{campaign_id}/save",
        {
            "trigger": {"type": "event", "events": ["lead.created"]},
            "webhook": {"url": "http://127.0.0.1:9/hook"},
        },
        token,
    )
    assert saved.status_code == 200
    logged_in.post(f"/campaigns/{campaign_id}/activate", data={"csrf_token": token})
    assert ">active<" in logged_in.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    rotated = _post_json(logged_in, f"/campaigns/{campaign_id}/rotate-secret", {}, token)
    assert rotated.get_json()["secret"].startswith("whsec_")
    copy = logged_in.post(f"/campaigns/{campaign_id}/duplicate", data={"csrf_token": token})
    assert re.search(r"/campaigns/cmp_\w+$", copy.headers["Location"])
    no_name = _post_json(
        logged_in, f"/campaigns/{campaign_id}/save-as-template", {"name": ""}, token
    )
    assert no_name.status_code == 422 and "name" in no_name.get_json()["error"]["details"]
    made = _post_json(
        logged_in, f"/campaigns/{campaign_id}/save-as-template", {"name": "Reusable <b>"}, token
    ).get_json()
    library = logged_in.get("/templates").get_data(as_text=True)
    assert "Reusable &lt;b&gt;" in library
    bad = _post_json(
        logged_in, f"/templates/{made['id']}/save", {"webhook": {"url": "nope"}}, token
    )
    assert bad.status_code == 422 and "webhook.url" in bad.get_json()["error"]["details"]
    good = _post_json(logged_in, f"/templates/{made['id']}/save", {"name": "Renamed"}, token)
    assert good.status_code == 200 and good.get_json()["name"] == "Renamed"
    new_page = logged_in.get(f"/campaigns/new?template={made['id']}").get_data(as_text=True)
    assert f'value="{made["id"]}" checked' in new_page
    deleted = logged_in.post(f"/templates/{made['id']}/delete", data={"csrf_token": token})
    assert deleted.status_code == 302
    assert logged_in.get(f"/templates/{made['id']}").status_code == 404


def test_campaign_pages_link_to_health_and_the_filtered_log(logged_in, api) -> None:
    created = api.post(
        "/campaigns", json={"name": "Linked", "trigger": {"type": "event", "events": ["a.b"]}}
    )
    campaign_id = created.get_json()["id"]
    editor = logged_in.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert f"/campaigns/{campaign_id}/health" in editor
    assert f"/notifications?campaign_id={campaign_id}" in editor
    listing = logged_in.get("/campaigns").get_data(as_text=True)
    assert f"/campaigns/{campaign_id}/health" in listing
    assert logged_in.get(f"/campaigns/{campaign_id}/health").status_code == 200


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ('{"contact": {"attributes": {"score": 1e400}}}', "too large"),
        ('{"contact": {"attributes": ' + "[" * 3000 + "]" * 3000 + "}}", "64 levels"),
    ],
)
def test_builder_json_keeps_the_api_limits(
    logged_in: FlaskClient, token: str, campaign_id: str, raw: str, words: str
) -> None:
    for action in ("preview", "save"):
        response = logged_in.post(
            f"/campaigns/{campaign_id}/{action}",
            data=raw,
            content_type="application/json",
            headers={"X-CSRFToken": token},
        )
        assert response.status_code == 422, response.get_data(as_text=True)
        assert words in response.get_json()["error"]["message"]
