"""Pages reached from an emailed link, without being signed in: accepting an invitation
and resetting a forgotten password (``/password-reset``).

The links carry random tokens; only their hashes are stored, each works once and expires
(invitations after 7 days, resets after 1 hour). Reset requests answer the same whether
or not the address has an account, and are throttled per address and per account with the
login throttle's store. Pages with a token in their URL send no ``Referer``.
"""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from engine.store import (
    accounts,
    activity,
    invitations,
    login_sessions,
    login_throttle,
    mail_queue,
    password_resets,
)
from engine.store.types import utcnow
from web import engine_settings, login_guard
from web.auth import MIN_PASSWORD_LENGTH
from web.database import get_session

bp = Blueprint("account_links", __name__)

#: Reset requests: 3 an hour for one address's account, 10 an hour from one client address;
#: past that, 15 minutes' pause, doubling up to 4 hours.
RESET_POLICY = login_throttle.ThrottlePolicy(
    limits={"reset_account": 3, "reset_address": 10},
    window=timedelta(hours=1),
    first_lock=timedelta(minutes=15),
    longest_lock=timedelta(hours=4),
)
RESET_SENT = (
    "If an account exists for that address, we sent it an email with a link to choose a new "
    "password. The link works once, for 1 hour."
)


def _no_referrer(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _page(template: str, status: int = 200, **context: Any) -> Response:
    response = make_response(render_template(template, **context), status)
    return _no_referrer(response)


def _password_problems(form: Any) -> dict[str, str]:
    password = form.get("password", "")
    if len(password) < MIN_PASSWORD_LENGTH:
        return {"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."}
    if password != form.get("confirm", ""):
        return {"confirm": "The two passwords differ."}
    return {}


# -- invitations -------------------------------------------------------------------------------


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> Response:
    db = get_session()
    now = utcnow()
    invitation = invitations.find_valid(db, token, now, for_update=request.method == "POST")
    if invitation is None:
        return _page("auth/link_invalid.html", 404, what="invitation")
    workspace = accounts.get_workspace(db, invitation.workspace_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        errors = _password_problems(request.form)
        if not errors and accounts.get_user_by_email(db, invitation.email) is not None:
            errors["email"] = (
                f"An account for {invitation.email} exists already: sign in, and ask an owner "
                "of the workspace to add it."
            )
        if not errors:
            user = accounts.create_user(
                db,
                email=invitation.email,
                password_hash=login_guard.hash_password(request.form["password"]),
            )
            accounts.set_membership(
                db, user_id=user.id, workspace_id=invitation.workspace_id, role=invitation.role
            )
            invitation.accepted_at = now
            activity.record(
                db,
                invitation.workspace_id,
                activity.Actor(user.email, user.id),
                "member.joined",
                f"accepted the invitation and joined as {invitation.role}",
                object_type="user",
                object_id=user.id,
            )
            login_guard.begin(db, user, invitation.workspace_id)
            db.commit()
            flash(f"Welcome to {workspace.name if workspace else 'Hookcast'}.")
            return _no_referrer(redirect(url_for("builder.campaigns")))
        db.rollback()
    return _page(
        "auth/invitation.html",
        422 if errors else 200,
        invitation=invitation,
        workspace=workspace,
        errors=errors,
        min_password_length=MIN_PASSWORD_LENGTH,
    )


# -- password reset ----------------------------------------------------------------------------


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _reset_keys(email: str) -> dict[str, str]:
    return {
        "reset_account": f"reset_account:{_digest(email.strip().lower())}",
        "reset_address": f"reset_address:{_digest(login_guard.client_address())}",
    }


@bp.route("/password-reset", methods=["GET", "POST"])
def request_password_reset() -> Response:
    mail_enabled = engine_settings(current_app).mail_enabled
    if request.method == "GET" or not mail_enabled:
        return _page("auth/password_reset_request.html", mail_enabled=mail_enabled)
    db = get_session()
    now = utcnow()
    email = request.form.get("email", "")
    keys = _reset_keys(email)
    until = login_throttle.locked_until(db, keys.values(), now)
    if until is not None:
        wait = max(1, math.ceil((until - now).total_seconds()))
        response = _page(
            "auth/password_reset_request.html",
            429,
            mail_enabled=True,
            error=(
                "Too many reset requests for this address or from your network. Try again in "
                f"{max(1, math.ceil(wait / 60))} minutes."
            ),
        )
        response.headers["Retry-After"] = str(wait)
        return response
    login_throttle.record_failure(db, keys, now, RESET_POLICY)
    user = accounts.get_user_by_email(db, email)
    if user is not None:
        token = password_resets.create(db, user.id, now)
        mail_queue.enqueue(
            db,
            kind="password_reset",
            to_address=user.email,
            params={
                "token": token,
                "email": user.email,
                "valid_minutes": int(password_resets.LIFETIME.total_seconds() // 60),
            },
            now=now,
        )
    db.commit()
    return _page("auth/password_reset_request.html", mail_enabled=True, sent=RESET_SENT)


@bp.route("/password-reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Response:
    db = get_session()
    now = utcnow()
    found = password_resets.find_valid(db, token, now, for_update=request.method == "POST")
    if found is None:
        return _page("auth/link_invalid.html", 404, what="password reset")
    _, user = found
    errors: dict[str, str] = {}
    if request.method == "POST":
        errors = _password_problems(request.form)
        if not errors:
            accounts.set_password_hash(
                db, user, login_guard.hash_password(request.form["password"])
            )
            password_resets.use_all(db, user.id, now)
            ended = login_sessions.end_all_of_user(db, user.id)
            login_throttle.clear_account(db, user.email)
            memberships = accounts.list_memberships_of_user(db, user.id)
            activity.record_for_user(
                db,
                user,
                "password.reset",
                f"set a new password from an emailed link; {ended} sessions ended",
                workspace_ids=[workspace.id for _, workspace in memberships],
            )
            login_guard.begin(db, user, memberships[0][1].id if memberships else None)
            db.commit()
            flash(f"Your password was changed. Sessions signed out elsewhere: {ended}.")
            return _no_referrer(redirect(url_for("builder.campaigns")))
        db.rollback()
    return _page(
        "auth/password_reset.html",
        422 if errors else 200,
        email=user.email,
        errors=errors,
        min_password_length=MIN_PASSWORD_LENGTH,
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
