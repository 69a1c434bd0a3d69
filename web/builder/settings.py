"""Settings: API keys (created and shown once, listed by prefix and scope, revoked) and
members (added, re-roled, removed; the last owner stays)."""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from engine.store import accounts, invitations, mail_queue
from engine.store.models import API_KEY_SCOPES
from engine.store.types import utcnow
from web import activity_log, engine_settings
from web.auth import MIN_PASSWORD_LENGTH, hash_password, login_required, require_role
from web.builder import bp
from web.builder import invitations as invitation_pages
from web.database import get_session


def mail_enabled() -> bool:
    return engine_settings(current_app).mail_enabled


def _page(new_key: str | None = None) -> str:
    db = get_session()
    owner = g.role == "owner"
    return render_template(
        "builder/settings.html",
        api_keys=accounts.list_api_keys(db, g.workspace.id),
        members=accounts.list_members(db, g.workspace.id),
        scopes=API_KEY_SCOPES,
        new_key=new_key,
        mail_enabled=mail_enabled(),
        troubled_mail=mail_queue.list_troubled(db, g.workspace.id) if owner else [],
        invitations=invitations.list_pending(db, g.workspace.id, utcnow()) if owner else [],
    )


@bp.get("/settings")
@login_required
def settings() -> str:
    return _page()


@bp.post("/settings/api-keys")
@login_required
def create_api_key() -> str | Response:
    require_role("owner")
    db = get_session()
    try:
        created = accounts.create_api_key(
            db,
            workspace_id=g.workspace.id,
            name=request.form.get("name", ""),
            scope=request.form.get("scope", "full"),
        )
    except accounts.AccountError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("builder.settings"))
    record = created.record
    activity_log.record(
        db,
        "api_key.created",
        f"created API key {record.name or record.prefix + '…'} (scope {record.scope})",
        object_type="api_key",
        object_id=record.id,
    )
    db.commit()
    return _page(new_key=created.key)


@bp.post("/settings/api-keys/<key_id>/revoke")
@login_required
def revoke_api_key(key_id: str) -> Response:
    require_role("owner")
    db = get_session()
    record = accounts.revoke_api_key(db, workspace_id=g.workspace.id, key_id=key_id)
    if record is None:
        abort(404)
    activity_log.record(
        db,
        "api_key.revoked",
        f"revoked API key {record.name or record.prefix + '…'}",
        object_type="api_key",
        object_id=record.id,
    )
    db.commit()
    flash("The API key was revoked.")
    return redirect(url_for("builder.settings"))


@bp.post("/settings/members")
@login_required
def add_member() -> Response:
    """Add (or re-role) a member. A new email is invited by email when SMTP is configured,
    else gets an account with the password the owner typed."""
    require_role("owner")
    db = get_session()
    email = request.form.get("email", "")
    role = request.form.get("role", "viewer")
    password = request.form.get("password", "")
    if invitation_pages.wants_invitation(db, email):
        try:
            invited = invitation_pages.invite(db, email, role)
        except accounts.AccountError as exc:
            db.rollback()
            flash(str(exc), "error")
            return redirect(url_for("builder.settings"))
        db.commit()
        flash(f"Invitation sent to {invited}: the link in it is valid for 7 days.")
        return redirect(url_for("builder.settings"))
    try:
        user = accounts.get_user_by_email(db, email)
        if user is None:
            if len(password) < MIN_PASSWORD_LENGTH:
                raise accounts.AccountError(
                    f"Give a new member a password of {MIN_PASSWORD_LENGTH} characters or more."
                )
            user = accounts.create_user(db, email=email, password_hash=hash_password(password))
        before = accounts.get_membership(db, user_id=user.id, workspace_id=g.workspace.id)
        old_role = before.role if before is not None else None
        accounts.set_membership(db, user_id=user.id, workspace_id=g.workspace.id, role=role)
    except accounts.AccountError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("builder.settings"))
    if old_role is None:
        activity_log.record(
            db,
            "member.added",
            f"added {user.email} as {role}",
            object_type="user",
            object_id=user.id,
        )
    elif old_role != role:
        activity_log.record(
            db,
            "member.role_changed",
            f"changed {user.email} from {old_role} to {role}",
            object_type="user",
            object_id=user.id,
        )
    db.commit()
    flash(f"{user.email} is now {role}.")
    return redirect(url_for("builder.settings"))


@bp.post("/settings/members/<user_id>/remove")
@login_required
def remove_member(user_id: str) -> Response:
    require_role("owner")
    db = get_session()
    membership = accounts.get_membership(db, user_id=user_id, workspace_id=g.workspace.id)
    if membership is None:
        abort(404)
    member = accounts.get_user(db, user_id)
    try:
        accounts.remove_membership(db, user_id=user_id, workspace_id=g.workspace.id)
    except accounts.LastOwnerError as exc:
        db.rollback()
        flash(f"{exc}. A workspace keeps at least one owner.", "error")
        return redirect(url_for("builder.settings"))
    activity_log.record(
        db,
        "member.removed",
        f"removed {member.email if member else user_id} ({membership.role})",
        object_type="user",
        object_id=user_id,
    )
    db.commit()
    flash("The member was removed.")
    return redirect(url_for("builder.settings"))


@bp.post("/settings/mail/<mail_id>/send-again")
@login_required
def send_mail_again(mail_id: str) -> Response:
    require_role("owner")
    db = get_session()
    if not mail_queue.send_again(db, g.workspace.id, mail_id, utcnow()):
        abort(404)
    db.commit()
    flash("The email is queued again; the worker sends it within seconds.")
    return redirect(url_for("builder.settings"))
