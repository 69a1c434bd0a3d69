"""Endpoint alerts that leave Hookcast: emails to owners at 5, 10 and 15 consecutive
failures and when the webhook is disabled (each once), and the alerts webhook's signed
operational events, checked with the independent ``standardwebhooks`` verifier. The alerts
webhook never alerts about itself."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from engine.mail.sender import MailSender
from engine.store import accounts, alerts_webhook, log_bulk
from engine.store.log import LogFilter
from engine.store.models import Alert, Campaign, MailMessage, Notification, User
from engine.store.types import utcnow
from tests.conftest import TEST_PASSWORD, csrf_token, login
from tests.integration import factories
from tests.integration.conftest import mail_settings
from tests.integration.delivery.test_delivery import running_worker, wait_for
from tests.integration.loopback_receiver import Receiver, Reply
from tests.integration.smtp_server import parts
from web import engine_settings
from web.auth import hash_password

_SECRET = re.compile(r'data-testid="alerts-webhook-secret">([^<]+)<')


@pytest.fixture
def app_config(app_config, smtp_server):
    return {**app_config, **mail_settings(smtp_server)}


@pytest.fixture
def ops_receiver():
    server = Receiver()
    yield server
    server.close()


def add_member(db, workspace_id, email, role, *, alert_emails=True):
    with db.transaction() as session:
        user = accounts.create_user(session, email=email, password_hash=hash_password("x" * 12))
        user.alert_emails = alert_emails
        accounts.set_membership(session, user_id=user.id, workspace_id=workspace_id, role=role)


def set_up_alerts_webhook(client, workspace, url) -> str:
    login(client, workspace.owner_email)
    page = client.post(
        "/settings/alerts-webhook",
        data={"url": url, "active": "on", "csrf_token": csrf_token(client, "/settings")},
    )
    assert page.status_code == 200, page.get_data(as_text=True)
    return _SECRET.search(page.get_data(as_text=True)).group(1)


def statuses(db, ids):
    with db.session() as session:
        rows = session.execute(
            select(Notification.status, func.count())
            .where(Notification.id.in_(ids))
            .group_by(Notification.status)
        )
        return dict(rows.all())


def operational_events(receiver, secret):
    """Every event the receiver got, verified; a forged signature raises."""
    verifier = Webhook(secret)
    return [verifier.verify(r.body, r.headers) for r in receiver.requests]


def test_owners_get_one_email_per_threshold_and_the_ops_webhook_gets_signed_events(
    app, db, workspace, receiver, ops_receiver, smtp_server, client, api
):
    add_member(db, workspace.id, "quiet-owner@acme.test", "owner", alert_emails=False)
    add_member(db, workspace.id, "editor@acme.test", "editor")
    secret = set_up_alerts_webhook(client, workspace, ops_receiver.url("/hookcast"))
    assert secret.startswith("whsec_")

    receiver.respond = lambda _r: Reply(500, {}, b"database is down")
    campaign_id, ids = factories.make_notifications(
        db, workspace.id, receiver.url(), 22, retry={"policy": "none"}
    )
    with db.transaction() as session:
        session.get(Campaign, campaign_id).name = "CRM <sync>"
    with running_worker(db, threads=1):
        wait_for(lambda: statuses(db, ids) == {"failed": 20, "held": 2})
        wait_for(lambda: len(ops_receiver.requests) == 4)

    sender = MailSender(db, engine_settings(app))
    assert sender.send_due() == 4
    mails = smtp_server.received()
    assert {m["To"] for m in mails} == {workspace.owner_email}  # not the opted-out, not editors
    assert [m["Subject"] for m in mails] == [
        "Webhook failing: CRM <sync> failed 5 times in a row",
        "Webhook failing: CRM <sync> failed 10 times in a row",
        "Webhook failing: CRM <sync> failed 15 times in a row",
        "Webhook disabled: CRM <sync>",
    ]
    text, html = parts(mails[3])
    assert "Last error: " in text and "500" in text
    assert "was disabled: 20 consecutive failed attempts" in text
    assert f"https://hookcast.acme.test/campaigns/{campaign_id}/health" in text
    assert re.search(r"https://hookcast\.acme\.test/notifications/msg_\w+", text)
    assert "CRM &lt;sync&gt;" in html and "<sync>" not in html
    assert sender.send_due() == 0  # exactly once each
    assert len(smtp_server.received()) == 4

    events = operational_events(ops_receiver, secret)
    assert [e["type"] for e in events] == ["endpoint.failing"] * 3 + ["endpoint.disabled"]
    assert [e["data"].get("threshold") for e in events] == [5, 10, 15, None]
    failing = events[0]["data"]
    assert failing["campaign_id"] == campaign_id and failing["campaign_name"] == "CRM <sync>"
    assert failing["consecutive_failures"] == 5
    assert failing["last_error"]["code"] == "http_status"
    assert failing["links"]["health"] == (
        f"https://hookcast.acme.test/campaigns/{campaign_id}/health"
    )
    assert events[3]["data"]["reason"] == "20 consecutive failed attempts"
    headers = ops_receiver.requests[0].headers
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"].startswith("msg_")

    # Logged like any notification, under the hidden "Alerts webhook" channel.
    hook_log = client.get("/settings/alerts-webhook").get_data(as_text=True)
    assert hook_log.count("endpoint.failing") >= 3 and "delivered" in hook_log
    assert api.get("/campaigns").get_json()["data"][0]["id"] == campaign_id  # hook not listed
    with db.session() as session:
        hook = alerts_webhook.get(session, workspace.id)
    assert api.get(f"/campaigns/{hook.id}").status_code == 404

    # Enabling again: the operational event, and no email.
    receiver.respond = lambda _r: Reply(200)
    with running_worker(db, threads=1):
        assert api.post(f"/campaigns/{campaign_id}/enable-webhook").status_code == 200
        wait_for(lambda: len(ops_receiver.requests) == 5)
    enabled = operational_events(ops_receiver, secret)[4]
    assert enabled["type"] == "endpoint.enabled"
    assert enabled["data"]["campaign_id"] == campaign_id
    assert enabled["data"]["enabled_by"].startswith("API key tests")
    assert sender.send_due() == 0


def test_a_failing_alerts_webhook_never_alerts_about_itself(
    db, workspace, ops_receiver, client, smtp_server
):
    set_up_alerts_webhook(client, workspace, ops_receiver.url("/hookcast"))
    ops_receiver.respond = lambda _r: Reply(500, {}, b"ops endpoint down")
    with db.transaction() as session:
        hook = alerts_webhook.get(session, workspace.id)
        hook.channel = {**hook.channel, "retry": {"policy": "none"}}
        for n in range(7):
            alerts_webhook.emit(session, workspace.id, "endpoint.failing", {"n": n}, utcnow())
    with running_worker(db, threads=1):
        wait_for(lambda: len(ops_receiver.requests) == 7)
        with db.session() as session:
            wait_for(
                lambda: (
                    session.scalar(
                        select(func.count())
                        .select_from(Notification)
                        .where(Notification.campaign_id == hook.id, Notification.status == "failed")
                    )
                    == 7
                )
            )
    with db.session() as session:
        stored = session.get(Campaign, hook.id)
        assert stored.consecutive_failures == 7 and not stored.webhook_disabled
        assert session.scalar(select(func.count()).select_from(Alert)) == 0
        assert session.scalar(select(func.count()).select_from(MailMessage)) == 0
        count = select(func.count()).select_from(Notification)
        assert session.scalar(count.where(Notification.campaign_id == hook.id)) == 7


def test_bulk_retry_finished_is_an_operational_event(db, workspace, ops_receiver, client, api):
    from engine.campaigns import manual_retry
    from engine.templating.request import RenderSettings
    from web import engine_settings as settings_of

    secret = set_up_alerts_webhook(client, workspace, ops_receiver.url("/hookcast"))
    campaign_id, _ = factories.make_notifications(db, workspace.id, "http://127.0.0.1:9/", 0)
    with db.transaction() as session:
        job, _created = log_bulk.start_bulk_retry(
            session, workspace.id, LogFilter(campaign_id=campaign_id, status="failed"), utcnow()
        )
        job_id = job.id
    render = RenderSettings.from_settings(settings_of(client.application))
    manual_retry.run_bulk_retry(db, render, job_id)
    with running_worker(db, threads=1):
        wait_for(lambda: len(ops_receiver.requests) == 1)
    (event,) = operational_events(ops_receiver, secret)
    assert event["type"] == "bulk_retry.finished"
    assert event["data"]["job_id"] == job_id and event["data"]["retried"] == 0


def test_alert_emails_are_turned_off_and_on_in_account_settings(db, workspace, client):
    login(client, workspace.owner_email, TEST_PASSWORD)
    token = csrf_token(client, "/settings/account")
    page = client.get("/settings/account").get_data(as_text=True)
    assert 'name="alert_emails" checked' in page
    answer = client.post("/settings/account/alert-emails", data={"csrf_token": token})
    assert answer.status_code == 302
    with db.session() as session:
        user = session.scalar(select(User).where(User.email == workspace.owner_email))
        assert user.alert_emails is False
    page = client.get("/settings/account").get_data(as_text=True)
    assert 'name="alert_emails" checked' not in page
    client.post("/settings/account/alert-emails", data={"csrf_token": token, "alert_emails": "on"})
    with db.session() as session:
        user = session.scalar(select(User).where(User.email == workspace.owner_email))
        assert user.alert_emails is True
