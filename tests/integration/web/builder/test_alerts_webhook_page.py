"""Settings → Alerts webhook: owners only, the URL checked like a campaign's, the secret
shown once and rotated, and its events readable in the notifications log and the API."""

from __future__ import annotations

import re

from engine.store import alerts_webhook
from engine.store.types import utcnow
from tests.conftest import csrf_token, login

_SECRET = re.compile(r'data-testid="alerts-webhook-secret">([^<]+)<')


def save(client, url, **extra):
    data = {"url": url, "active": "on", "csrf_token": csrf_token(client, "/settings"), **extra}
    return client.post("/settings/alerts-webhook", data=data)


def test_owners_set_rotate_and_remove_the_alerts_webhook(db, workspace, logged_in, api):
    page = logged_in.get("/settings/alerts-webhook")
    assert page.status_code == 200 and "endpoint.failing" in page.get_data(as_text=True)

    bad = save(logged_in, "ftp://example.com/x")
    assert bad.status_code == 422 and "This URL cannot be used" in bad.get_data(as_text=True)

    created = save(logged_in, "http://127.0.0.1:9/ops")
    first = _SECRET.search(created.get_data(as_text=True)).group(1)
    assert first.startswith("whsec_")
    shown = logged_in.get("/settings/alerts-webhook").get_data(as_text=True)
    assert first not in shown and "whsec_****" in shown  # shown once, then masked

    saved = save(logged_in, "http://127.0.0.1:9/ops2")
    assert saved.status_code == 302
    with db.session() as session:
        hook = alerts_webhook.get(session, workspace.id)
        assert hook.signing_secret == first and hook.channel["url"] == "http://127.0.0.1:9/ops2"

    rotated = logged_in.post(
        "/settings/alerts-webhook/rotate-secret",
        data={"csrf_token": csrf_token(logged_in, "/settings")},
    )
    second = _SECRET.search(rotated.get_data(as_text=True)).group(1)
    with db.session() as session:
        hook = alerts_webhook.get(session, workspace.id)
        assert hook.signing_secret == second and hook.previous_signing_secret == first

    with db.transaction() as session:
        event_id = alerts_webhook.emit(
            session, workspace.id, "endpoint.failing", {"threshold": 5}, utcnow()
        )
    assert event_id is not None
    listed = logged_in.get(f"/notifications?campaign_id={hook.id}").get_data(as_text=True)
    assert event_id in listed and "Alerts webhook" in listed
    assert logged_in.get(f"/notifications/{event_id}").status_code == 200
    detail = api.get(f"/notifications/{event_id}").get_json()
    assert detail["event_name"] == "endpoint.failing"
    assert '"type":"endpoint.failing"' in detail["request"]["body"]

    removed = logged_in.post(
        "/settings/alerts-webhook/remove", data={"csrf_token": csrf_token(logged_in, "/settings")}
    )
    assert removed.status_code == 302
    with db.transaction() as session:
        assert alerts_webhook.get(session, workspace.id) is None
        assert alerts_webhook.emit(session, workspace.id, "endpoint.failing", {}, utcnow()) is None


def test_an_inactive_alerts_webhook_gets_nothing(db, workspace, logged_in):
    token = csrf_token(logged_in, "/settings")
    logged_in.post(
        "/settings/alerts-webhook", data={"url": "http://127.0.0.1:9/ops", "csrf_token": token}
    )
    with db.transaction() as session:
        assert alerts_webhook.emit(session, workspace.id, "endpoint.failing", {}, utcnow()) is None


def test_editors_cannot_see_or_change_it(db, workspace, client):
    from engine.store import accounts
    from web.auth import hash_password

    with db.transaction() as session:
        user = accounts.create_user(
            session, email="ed@acme.test", password_hash=hash_password("p" * 10)
        )
        accounts.set_membership(session, user_id=user.id, workspace_id=workspace.id, role="editor")
    login(client, "ed@acme.test", "p" * 10)
    assert client.get("/settings/alerts-webhook").status_code == 403
    assert save(client, "http://127.0.0.1:9/ops").status_code == 403
    assert "Alerts webhook" not in client.get("/settings").get_data(as_text=True)
