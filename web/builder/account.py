"""Settings → Account: change your password, see where you are signed in, sign out there."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from engine.store import accounts, activity, login_sessions
from web import login_guard
from web.auth import MIN_PASSWORD_LENGTH, login_required
from web.builder import bp
from web.database import get_session


def _page(errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    db = get_session()
    return (
        render_template(
            "builder/account.html",
            sessions=login_sessions.list_of_user(db, g.user.id),
            current_session_id=g.login_session.id,
            errors=errors or {},
            min_password_length=MIN_PASSWORD_LENGTH,
        ),
        status,
    )


@bp.get("/settings/account")
@login_required
def account() -> tuple[str, int]:
    return _page()


def _record_for_user(db: Any, kind: str, summary: str) -> None:
    """An entry in every workspace the signed-in user belongs to."""
    activity.record_for_user(
        db, g.user, kind, summary, workspace_ids=[w.id for _, w in g.memberships]
    )


@bp.post("/settings/account/password")
@login_required
def change_password() -> Any:
    db = get_session()
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    try:
        user = login_guard.check_credentials(db, g.user.email, current)
    except login_guard.Throttled as exc:
        db.commit()
        page, _ = _page({"current": exc.message})
        return page, 429, {"Retry-After": str(exc.retry_after)}
    errors: dict[str, str] = {}
    if user is None:
        errors["current"] = "That is not your current password."
    if len(new) < MIN_PASSWORD_LENGTH:
        errors["new"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
    elif new == current:
        errors["new"] = "Choose a password different from the current one."
    if errors:
        db.commit()  # a wrong current password counts towards the throttle
        return _page(errors, 422)
    accounts.set_password_hash(db, user, login_guard.hash_password(new))
    ended = login_sessions.end_all_of_user(db, user.id, keep=g.login_session.id)
    _record_for_user(db, "password.changed", f"changed the password; {ended} other sessions ended")
    db.commit()
    flash(f"Your password was changed. Sessions signed out elsewhere: {ended}.")
    return redirect(url_for("builder.account"))


@bp.post("/settings/account/sessions/end-others")
@login_required
def end_other_sessions() -> Response:
    db = get_session()
    ended = login_sessions.end_all_of_user(db, g.user.id, keep=g.login_session.id)
    _record_for_user(db, "sessions.ended", f"signed out everywhere else ({ended} sessions)")
    db.commit()
    flash(f"Signed out everywhere else: {ended} sessions ended.")
    return redirect(url_for("builder.account"))


@bp.post("/settings/account/sessions/<session_id>/end")
@login_required
def end_session(session_id: str) -> Response:
    db = get_session()
    if not login_sessions.end(db, session_id, user_id=g.user.id):
        abort(404)
    _record_for_user(db, "sessions.ended", "signed out one session")
    db.commit()
    if session_id == g.login_session.id:
        return redirect(url_for("auth.login"))
    flash("That session was signed out.")
    return redirect(url_for("builder.account"))
