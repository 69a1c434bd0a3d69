"""Settings: API keys (created and shown once, listed by prefix and scope, revoked) and
members (added, re-roled, removed; the last owner stays)."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from engine.store import accounts
from engine.store.models import API_KEY_SCOPES
from web import activity_log
from web.auth import MIN_PASSWORD_LENGTH, hash_password, login_required, require_role
from web.builder import bp
from web.database import get_session


def _page(new_key: str | None = None) -> str:
    db = get_session()
    return render_template(
        "builder/settings.html",
        api_keys=accounts.list_api_keys(db, g.workspace.id),
        members=accounts.list_members(db, g.workspace.id),
        scopes=API_KEY_SCOPES,
        new_key=new_key,
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
    """Add (or re-role) a member; a new email gets an account with the given password."""
    require_role("owner")
    db = get_session()
    email = request.form.get("email", "")
    role = request.form.get("role", "viewer")
    password = request.form.get("password", "")
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
