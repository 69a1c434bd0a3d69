"""Logging in to the builder: sessions, first-run owner setup, role checks.

A user is a member of one or more workspaces; a server-side login session (see
``web.login_guard``) remembers the user and the workspace they are working in. Roles:
``owner`` > ``editor`` > ``viewer``. Viewers see everything and change nothing; the check is
made here, on the server, for every change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from engine.store import accounts, activity, login_sessions
from engine.store.types import utcnow
from web import login_guard
from web.database import get_database, get_session, request_writes
from web.login_guard import Throttled, hash_password

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])
ROLE_RANK = {"viewer": 0, "editor": 1, "owner": 2}
MIN_PASSWORD_LENGTH = 8


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths, so ``?next=`` cannot bounce a user elsewhere."""
    if not target:
        return url_for("builder.campaigns")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("builder.campaigns")
    return target


@contextmanager
def _session_writer() -> Iterator[Session]:
    """Where ``load_user`` writes: the request's own session when it already writes (a
    second writer would wait for it on SQLite), else a short transaction of its own, so a
    page view never upgrades its read transaction."""
    if request_writes():
        db = get_session()
        yield db
        db.commit()
    else:
        with get_database().transaction() as writer:
            yield writer


def load_user() -> None:
    """Put the logged-in user, workspace, role and login session on ``g`` (or None)."""
    g.user = g.workspace = g.role = g.login_session = None
    g.memberships = []
    token = login_guard.current_token()
    if not token or request.path.startswith(("/api/", "/static/")):
        return
    db = get_session()
    found = login_sessions.find(db, token)
    now = utcnow()
    if found is None or login_sessions.is_expired(found[0], now, login_guard.session_limits()):
        if found is not None:
            with _session_writer() as writer:
                login_sessions.end(writer, found[0].id)
        session.clear()
        return
    record, user = found
    address = login_guard.client_address()
    memberships = accounts.list_memberships_of_user(db, user.id)
    chosen = next((pair for pair in memberships if pair[1].id == record.workspace_id), None)
    if chosen is None and memberships:
        chosen = memberships[0]
    wanted_workspace = chosen[1].id if chosen is not None else None
    if login_sessions.needs_touch(record, now, address) or wanted_workspace != record.workspace_id:
        with _session_writer() as writer:
            login_sessions.touch(writer, record.id, now, address)
            if wanted_workspace is not None:
                login_sessions.set_workspace(writer, record.id, wanted_workspace)
    g.user = user
    g.login_session = record
    g.memberships = memberships
    if chosen is not None:
        g.role, g.workspace = chosen[0].role, chosen[1]


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if g.get("workspace") is None:
            abort(403, "You are not a member of any workspace. Ask an owner to invite you.")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def role_at_least(role: str) -> bool:
    return ROLE_RANK.get(g.get("role") or "", -1) >= ROLE_RANK[role]


def require_role(role: str) -> None:
    """Abort with 403 unless the current user's role is at least ``role``."""
    if not role_at_least(role):
        abort(403, f"This needs the {role} role in this workspace.")


def _throttled_page(template: str, exc: Throttled, **context: Any) -> Response:
    response = make_response(render_template(template, error=exc.message, **context), 429)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    db = get_session()
    if accounts.count_users(db) == 0:
        return redirect(url_for("auth.setup"))
    error = None
    if request.method == "POST":
        email = request.form.get("email", "")
        password = request.form.get("password", "")
        try:
            user = login_guard.check_credentials(db, email, password)
        except Throttled as exc:
            db.commit()
            return _throttled_page("auth/login.html", exc)
        if user is None:
            db.commit()
            error = "Email or password is not right."
        else:
            memberships = accounts.list_memberships_of_user(db, user.id)
            started = login_guard.begin(db, user, memberships[0][1].id if memberships else None)
            activity.record_for_user(
                db,
                user,
                "login",
                f"signed in from {started.client_address or 'an unknown address'}",
                workspace_ids=[workspace.id for _, workspace in memberships],
            )
            db.commit()
            return redirect(_safe_next(request.args.get("next")))
    status = 401 if error else 200
    return render_template("auth/login.html", error=error), status


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Any:
    """First run: the first visitor creates the workspace and its owner account."""
    db = get_session()
    if accounts.count_users(db) > 0:
        return redirect(url_for("auth.login"))
    errors: dict[str, str] = {}
    form = request.form
    if request.method == "POST":
        try:
            login_guard.refuse_if_address_throttled(db)
        except Throttled as exc:
            return _throttled_page("auth/setup.html", exc, errors=errors, form=form)
        if len(form.get("password", "")) < MIN_PASSWORD_LENGTH:
            errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
        if not form.get("workspace", "").strip():
            errors["workspace"] = "Name your workspace."
        if not errors:
            try:
                workspace = accounts.create_workspace(db, form["workspace"])
                user = accounts.create_user(
                    db, email=form.get("email", ""), password_hash=hash_password(form["password"])
                )
            except accounts.AccountError as exc:
                errors["email"] = str(exc)
            else:
                accounts.set_membership(
                    db, user_id=user.id, workspace_id=workspace.id, role="owner"
                )
                login_guard.begin(db, user, workspace.id)
                db.commit()
                flash("Welcome to Hookcast. Your workspace is ready.")
                return redirect(url_for("builder.campaigns"))
        db.rollback()
    return render_template("auth/setup.html", errors=errors, form=form), 422 if errors else 200


@bp.post("/logout")
def logout() -> Response:
    db = get_session()
    login_guard.end(db)
    db.commit()
    return redirect(url_for("auth.login"))


@bp.post("/workspace")
def switch_workspace() -> Response:
    if g.get("user") is None:
        return redirect(url_for("auth.login"))
    wanted = request.form.get("workspace_id", "")
    if any(w.id == wanted for _, w in g.memberships):
        db = get_session()
        login_sessions.set_workspace(db, g.login_session.id, wanted)
        db.commit()
    return redirect(url_for("builder.campaigns"))


def init_app(app: Flask) -> None:
    app.before_request(load_user)
    app.register_blueprint(bp)

    @app.context_processor
    def _auth_context() -> dict[str, Any]:
        return {"can_edit": role_at_least("editor"), "is_owner": role_at_least("owner")}
