"""Settings → Members with email: an owner invites by email and role, sees pending
invitations and revokes them. The email goes out from the worker's mail queue."""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from engine.store import accounts, invitations, mail_queue
from engine.store.types import utcnow
from web import activity_log, engine_settings
from web.auth import login_required, require_role
from web.builder import bp
from web.database import get_session


def invite(db: Session, email: str, role: str) -> str:
    """Invite ``email`` to the current workspace and queue the email; the normalised address.
    Raises ``AccountError`` for a bad email or role. The caller commits."""
    now = utcnow()
    invitation, token = invitations.create(
        db,
        workspace_id=g.workspace.id,
        email=email,
        role=role,
        invited_by=g.user.id,
        now=now,
    )
    mail_queue.enqueue(
        db,
        kind="invitation",
        to_address=invitation.email,
        params={
            "token": token,
            "inviter": g.user.email,
            "workspace_name": g.workspace.name,
            "role": role,
            "expires_at": invitation.expires_at.strftime("%Y-%m-%d %H:%M"),
        },
        now=now,
        workspace_id=g.workspace.id,
    )
    activity_log.record(
        db,
        "member.invited",
        f"invited {invitation.email} as {role}",
        object_type="invitation",
        object_id=invitation.id,
    )
    return invitation.email


@bp.post("/settings/invitations/<invitation_id>/revoke")
@login_required
def revoke_invitation(invitation_id: str) -> Response:
    require_role("owner")
    db = get_session()
    invitation = invitations.revoke(db, g.workspace.id, invitation_id, utcnow())
    if invitation is None:
        abort(404)
    activity_log.record(
        db,
        "member.invitation_revoked",
        f"revoked the invitation of {invitation.email}",
        object_type="invitation",
        object_id=invitation.id,
    )
    db.commit()
    flash(f"The invitation of {invitation.email} was revoked; its link no longer works.")
    return redirect(url_for("builder.settings"))


def wants_invitation(db: Session, email: str) -> bool:
    """With email configured, a new address is invited rather than given a password."""
    if not engine_settings(current_app).mail_enabled:
        return False
    try:
        return accounts.get_user_by_email(db, accounts.normalize_email(email)) is None
    except accounts.AccountError:
        return True  # invite() names what is wrong with the address
