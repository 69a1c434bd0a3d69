"""The durable mail queue against a real SMTP server on loopback: sent with login, text and
HTML parts; a failing server means retries with backoff, then ``failed``, listed to owners
in Settings with the server's answer, and sent again from there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from engine.mail.sender import MailSender
from engine.store import mail_queue
from engine.store.models import MailMessage
from engine.store.types import utcnow
from tests.conftest import csrf_token, login
from tests.integration.conftest import mail_settings
from tests.integration.smtp_server import parts
from web import engine_settings


@pytest.fixture
def app_config(app_config, smtp_server):
    return {**app_config, **mail_settings(smtp_server)}


@pytest.fixture
def sender(app, db):
    return MailSender(db, engine_settings(app))


def queue_alert(db, workspace_id, to="owner@acme.test"):
    with db.transaction() as session:
        return mail_queue.enqueue(
            session,
            kind="alert",
            to_address=to,
            params={
                "alert_kind": "failing",
                "campaign_id": "cmp_1",
                "campaign_name": "CRM <sync>",
                "workspace_name": "Acme",
                "threshold": 5,
                "failures": 5,
                "last_error": "the receiver answered 500",
                "reason": None,
                "notification_id": "msg_1",
            },
            now=utcnow(),
            workspace_id=workspace_id,
        ).id


def stored(db, mail_id) -> MailMessage:
    with db.session() as session:
        return session.get(MailMessage, mail_id)


def test_queued_mail_goes_out_with_login_and_both_parts(db, workspace, smtp_server, sender):
    mail_id = queue_alert(db, workspace.id)
    assert smtp_server.received() == []  # queued, not sent, until the sender runs

    assert sender.send_due() == 1
    (message,) = smtp_server.received()
    assert message["To"] == "owner@acme.test"
    assert message["From"] == "Hookcast <hookcast@acme.test>"
    text, html = parts(message)
    assert "CRM <sync>" in text and "CRM &lt;sync&gt;" in html
    assert "https://hookcast.acme.test/notifications/msg_1" in text
    row = stored(db, mail_id)
    assert row.status == "sent" and row.sent_at is not None and row.params is None
    assert sender.send_due() == 0  # sent once
    assert len(smtp_server.received()) == 1


def test_a_failing_server_means_backoff_then_failed_listed_and_sent_again(
    db, workspace, smtp_server, sender, client
):
    smtp_server.refuse = True
    mail_id = queue_alert(db, workspace.id)
    before = utcnow()
    assert sender.send_due() == 0
    row = stored(db, mail_id)
    assert row.status == "pending" and row.attempts == 1
    assert "451" in row.last_error and "Mailbox temporarily unavailable" in row.last_error
    assert row.next_attempt_at >= before + timedelta(seconds=59)
    assert sender.send_due() == 0 and stored(db, mail_id).attempts == 1  # not due yet

    for _ in range(mail_queue.MAX_ATTEMPTS - 1):
        with db.transaction() as session:
            session.execute(
                update(MailMessage)
                .where(MailMessage.id == mail_id)
                .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )
        sender.send_due()
    row = stored(db, mail_id)
    assert row.status == "failed" and row.attempts == mail_queue.MAX_ATTEMPTS
    assert smtp_server.received() == []

    login(client, workspace.owner_email)
    page = client.get("/settings").get_data(as_text=True)
    assert 'data-testid="failing-mail"' in page
    assert "owner@acme.test" in page and "Mailbox temporarily unavailable" in page
    assert "Webhook failing: CRM &lt;sync&gt; failed 5 times in a row" in page

    smtp_server.refuse = False
    answer = client.post(
        f"/settings/mail/{mail_id}/send-again", data={"csrf_token": csrf_token(client, "/settings")}
    )
    assert answer.status_code == 302
    assert sender.send_due() == 1
    assert len(smtp_server.received()) == 1
    assert stored(db, mail_id).status == "sent"
    assert 'data-testid="failing-mail"' not in client.get("/settings").get_data(as_text=True)


def test_a_wrong_smtp_password_is_said_in_words(app_config, db, workspace, smtp_server):
    from web import create_app

    wrong = create_app(
        {
            **app_config,
            "SMTP_URL": f"smtp://hookcast:nope@127.0.0.1:{smtp_server.port}",
        }
    )
    mail_id = queue_alert(db, workspace.id)
    MailSender(db, engine_settings(wrong)).send_due()
    error = stored(db, mail_id).last_error
    assert error.startswith(f"smtp://127.0.0.1:{smtp_server.port} refused the user name")
    assert "535" in error


def test_an_smtp_server_that_is_not_there(app_config, db, workspace, smtp_server):
    from web import create_app

    port = smtp_server.port
    smtp_server.close()
    gone = create_app({**app_config, "SMTP_URL": f"smtp://127.0.0.1:{port}"})
    mail_id = queue_alert(db, workspace.id)
    MailSender(db, engine_settings(gone)).send_due()
    assert stored(db, mail_id).last_error == (
        f"could not connect to smtp://127.0.0.1:{port}: connection refused"
    )


def test_viewers_see_no_mail_trouble_and_other_workspaces_mail_stays_apart(
    db, workspace, smtp_server, sender, client
):
    from tests.conftest import make_workspace

    smtp_server.refuse = True
    other = make_workspace(db, "Other", "owner@other.test")
    mail_id = queue_alert(db, other.id, to="owner@other.test")
    sender.send_due()
    login(client, workspace.owner_email)
    assert "owner@other.test" not in client.get("/settings").get_data(as_text=True)
    token = csrf_token(client, "/settings")
    with db.transaction() as session:
        session.execute(
            update(MailMessage).where(MailMessage.id == mail_id).values(status="failed")
        )
    answer = client.post(f"/settings/mail/{mail_id}/send-again", data={"csrf_token": token})
    assert answer.status_code == 404
