"""Settings: API keys (created and shown once, listed by prefix, revoked) and members."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from engine.store import accounts
from web.auth import hash_password, login_required, require_role
from web.builder import bp
from web.database import get_session


@bp.get("/settings")
@login_required
def settings() -> str:
    db = get_session()
    return render_template(
        "builder/settings.html",
        api_keys=accounts.list_api_keys(db, g.workspace.id),
        members=accounts.list_members(db, g.workspace.id),
        new_key=None,
    )


@bp.post("/settings/api-keys")
@login_required
def create_api_key() -> str:
    require_role("owner")
    db = get_session()
    created = accounts.create_api_key(
        db, workspace_id=g.workspace.id, name=request.form.get("name", "")
    )
    db.commit()
    return render_template(
        "builder/settings.html",
        api_keys=accounts.list_api_keys(db, g.workspace.id),
        members=accounts.list_members(db, g.workspace.id),
        new_key=created.key,
    )


@bp.post("/settings/api-keys/<key_id>/revoke")
@login_required
def revoke_api_key(key_id: str) -> Response:
    require_role("owner")
    db = get_session()
    if not accounts.revoke_api_key(db, workspace_id=g.workspace.id, key_id=key_id):
        abort(404)
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
            if len(password) < 8:
                raise accounts.AccountError("Give a new member a password of 8 characters or more.")
            user = accounts.create_user(db, email=email, password_hash=hash_password(password))
        accounts.set_membership(db, user_id=user.id, workspace_id=g.workspace.id, role=role)
    except accounts.AccountError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("builder.settings"))
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
    if membership.role == "owner" and accounts.count_owners(db, g.workspace.id) == 1:
        flash("A workspace keeps at least one owner.", "error")
        return redirect(url_for("builder.settings"))
    accounts.remove_membership(db, user_id=user_id, workspace_id=g.workspace.id)
    db.commit()
    flash("The member was removed.")
    return redirect(url_for("builder.settings"))
