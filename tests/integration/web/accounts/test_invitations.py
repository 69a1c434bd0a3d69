"""Invitations by email (SMTP on loopback): an owner invites by email and role, the link
(valid 7 days, single use) sets a password and signs the person in; pending invitations are
listed and revocable; only the token's hash is stored. Without SMTP the members form keeps
asking for a password."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from engine.mail.sender import MailSender
from engine.store.models import Invitation, MailMessage, Membership, User
from engine.store.types import utcnow
from tests.conftest import csrf_token, login
from tests.integration.conftest import mail_settings
from tests.integration.smtp_server import parts
from web import engine_settings

_LINK = re.compile(r"https://hookcast\.acme\.test/invitations/([\w-]+)")


@pytest.fixture
def app_config(app_config, smtp_server):
    return {**app_config, **mail_settings(smtp_server)}


def invite(client, email, role="editor"):
    token = csrf_token(client, "/settings")
    return client.post(
        "/settings/members", data={"email": email, "role": role, "csrf_token": token}
    )


def sent_link(app, db, smtp_server) -> str:
    MailSender(db, engine_settings(app)).send_due()
    text, html = parts(smtp_server.received()[-1])
    token = _LINK.search(text).group(1)
    assert f"/invitations/{token}" in html
    return token


def test_an_invitation_is_accepted_end_to_end(app, db, workspace, logged_in, smtp_server):
    page = logged_in.get("/settings").get_data(as_text=True)
    assert 'name="password"' not in page and "Invite or change member" in page

    answer = invite(logged_in, "New.Person@Acme.test", "editor")
    assert answer.status_code == 302
    settings = logged_in.get("/settings").get_data(as_text=True)
    assert "Invitation sent to new.person@acme.test" in settings
    assert 'data-testid="invitations"' in settings and "new.person@acme.test" in settings
    assert smtp_server.received() == []  # never sent from inside the request

    token = sent_link(app, db, smtp_server)
    (mail,) = smtp_server.received()
    assert mail["To"] == "new.person@acme.test"
    assert mail["Subject"] == f"{workspace.owner_email} invited you to Acme on Hookcast"
    with db.session() as session:
        stored = session.scalar(select(Invitation))
        assert stored.token_hash != token and len(stored.token_hash) == 64
        assert session.scalar(select(MailMessage.params)) is None  # the link is not kept
        assert stored.expires_at - stored.created_at == timedelta(days=7)

    guest = app.test_client()
    form = guest.get(f"/invitations/{token}")
    assert form.status_code == 200 and form.headers["Referrer-Policy"] == "no-referrer"
    assert "new.person@acme.test" in form.get_data(as_text=True)
    csrf = csrf_token(guest, f"/invitations/{token}")
    mismatch = guest.post(
        f"/invitations/{token}",
        data={"password": "a-long-password", "confirm": "another-one", "csrf_token": csrf},
    )
    assert mismatch.status_code == 422 and "The two passwords differ" in mismatch.get_data(
        as_text=True
    )
    short = guest.post(
        f"/invitations/{token}", data={"password": "short", "confirm": "short", "csrf_token": csrf}
    )
    assert short.status_code == 422
    accepted = guest.post(
        f"/invitations/{token}",
        data={"password": "a-long-password", "confirm": "a-long-password", "csrf_token": csrf},
    )
    assert accepted.status_code == 302 and accepted.headers["Location"].endswith("/campaigns")
    assert guest.get("/campaigns").status_code == 200  # signed in
    with db.session() as session:
        user = session.scalar(select(User).where(User.email == "new.person@acme.test"))
        membership = session.get(Membership, (user.id, workspace.id))
        assert membership.role == "editor"

    again = app.test_client().get(f"/invitations/{token}")
    assert again.status_code == 404 and "already used" in again.get_data(as_text=True)
    settings = logged_in.get("/settings").get_data(as_text=True)
    assert 'data-testid="invitations"' not in settings  # accepted: no longer pending
    other = app.test_client()
    login(other, "new.person@acme.test", "a-long-password")


def test_a_revoked_or_expired_link_does_not_work(app, db, workspace, logged_in, smtp_server):
    invite(logged_in, "late@acme.test")
    token = sent_link(app, db, smtp_server)
    with db.transaction() as session:
        session.execute(update(Invitation).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert app.test_client().get(f"/invitations/{token}").status_code == 404

    invite(logged_in, "revoked@acme.test")
    token = sent_link(app, db, smtp_server)
    with db.session() as session:
        invitation_id = session.scalar(
            select(Invitation.id).where(Invitation.email == "revoked@acme.test")
        )
    answer = logged_in.post(
        f"/settings/invitations/{invitation_id}/revoke",
        data={"csrf_token": csrf_token(logged_in, "/settings")},
    )
    assert answer.status_code == 302
    assert app.test_client().get(f"/invitations/{token}").status_code == 404
    assert 'data-testid="invitations"' not in logged_in.get("/settings").get_data(as_text=True)


def test_inviting_again_replaces_the_first_link(app, db, workspace, logged_in, smtp_server):
    invite(logged_in, "twice@acme.test")
    first = sent_link(app, db, smtp_server)
    invite(logged_in, "twice@acme.test", "viewer")
    second = sent_link(app, db, smtp_server)
    assert app.test_client().get(f"/invitations/{first}").status_code == 404
    assert "viewer" in app.test_client().get(f"/invitations/{second}").get_data(as_text=True)


def test_an_existing_account_is_added_without_an_invitation(db, workspace, logged_in, smtp_server):
    from tests.conftest import make_workspace

    make_workspace(db, "Other", "known@other.test")
    assert invite(logged_in, "known@other.test", "viewer").status_code == 302
    with db.session() as session:
        assert session.scalar(select(Invitation)) is None
        assert session.scalar(select(MailMessage)) is None


def test_only_owners_invite_and_revoke(app, db, workspace, client, smtp_server):
    from engine.store import accounts
    from web.auth import hash_password

    with db.transaction() as session:
        user = accounts.create_user(
            session, email="ed@acme.test", password_hash=hash_password("p" * 10)
        )
        accounts.set_membership(session, user_id=user.id, workspace_id=workspace.id, role="editor")
    login(client, "ed@acme.test", "p" * 10)
    assert invite(client, "x@acme.test").status_code == 403
    token = csrf_token(client, "/settings")
    assert (
        client.post("/settings/invitations/inv_x/revoke", data={"csrf_token": token}).status_code
        == 403
    )


def test_a_bad_email_is_said_not_500(db, workspace, logged_in, smtp_server):
    answer = invite(logged_in, "not an email")
    assert answer.status_code == 302
    assert "not a valid email address" in logged_in.get("/settings").get_data(as_text=True)


class TestWithoutSmtp:
    @pytest.fixture
    def app_config(self, app_config):
        return {key: value for key, value in app_config.items() if key != "SMTP_URL"}

    def test_the_members_form_still_asks_for_a_password(self, client, workspace, logged_in):
        page = logged_in.get("/settings").get_data(as_text=True)
        assert 'name="password"' in page and "Email is not configured" in page
        answer = invite(logged_in, "typed@acme.test")
        assert answer.status_code == 302
        assert "Give a new member a password" in logged_in.get("/settings").get_data(as_text=True)
