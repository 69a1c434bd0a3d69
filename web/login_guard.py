"""What stands between a password form and a guesser: throttling kept in the database,
the same hash work whether or not the email is known, and server-side login sessions.

Every form that checks a password goes through :func:`check_credentials`; :func:`begin`
and :func:`end` start and end the session a browser's cookie names (the cookie holds only
a random token, the row its hash).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, request, session
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from engine.store import accounts, activity, login_sessions, login_throttle
from engine.store.models import User
from engine.store.types import utcnow

POLICY = login_throttle.ThrottlePolicy()
SESSION_KEY = "sid"


def hash_password(password: str) -> str:
    return generate_password_hash(password)


@functools.cache
def _unknown_user_hash() -> str:
    """A hash made like real ones, checked when the email is unknown: same work, same time."""
    return generate_password_hash("no user has this password")


def client_address() -> str:
    """The client's address (the proxy's client when ``PROXY_HOPS`` trusts the proxy)."""
    return (request.remote_addr or "")[:64]


def session_limits() -> login_sessions.SessionLimits:
    settings = current_app.extensions["hookcast.settings"]
    return login_sessions.SessionLimits(
        idle=timedelta(hours=settings.session_idle_hours),
        lifetime=timedelta(days=settings.session_lifetime_days),
    )


@dataclass(frozen=True)
class Throttled(Exception):
    """Too many failed attempts: come back in ``retry_after`` seconds."""

    retry_after: int

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        wait = "a minute" if minutes == 1 else f"{minutes} minutes"
        return (
            "Too many failed attempts for this account from your address. "
            f"Sign-in is paused: try again in {wait}, even with the right password."
        )


def _seconds_until(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


def refuse_if_address_throttled(db: Session) -> None:
    """Raise :class:`Throttled` while the client address is locked (forms without a
    password to check, such as first-run setup)."""
    now = utcnow()
    key = login_throttle.keys_for("", client_address())["address"]
    until = login_throttle.locked_until(db, [key], now)
    if until is not None:
        raise Throttled(_seconds_until(until, now))


def check_credentials(db: Session, email: str, password: str) -> User | None:
    """The user whose password this is, or None; raises :class:`Throttled` while the
    account (from this address) or the address is locked, or when this failure locks it.

    An unknown email costs the same hash check and the same writes as a wrong password.
    A failure that locks a known account is written to its workspaces' activity logs.
    The caller commits, after :class:`Throttled` too (the failure that locked is counted).
    """
    now = utcnow()
    address = client_address()
    keys = login_throttle.keys_for(email, address)
    until = login_throttle.locked_until(db, keys.values(), now)
    if until is not None:
        raise Throttled(_seconds_until(until, now))
    # No stored email holds NUL (PostgreSQL text cannot): such an email is simply unknown.
    user = None if "\x00" in email else accounts.get_user_by_email(db, email)
    stored = user.password_hash if user is not None else _unknown_user_hash()
    if check_password_hash(stored, password) and user is not None:
        login_throttle.clear(db, [keys["pair"], keys["account"]])
        return user
    failure = login_throttle.record_failure(db, keys, now, POLICY)
    if failure.locked_until is None:
        return None
    if user is not None and failure.locked.keys() & {"pair", "account"}:
        count = max(failure.locked.values())
        activity.record_for_user(
            db,
            user,
            "login.throttled",
            f"{count} failed sign-ins (last from {address or 'unknown address'}); "
            f"sign-in paused until {failure.locked_until:%Y-%m-%d %H:%M} UTC",
        )
    raise Throttled(_seconds_until(failure.locked_until, now))


def begin(db: Session, user: User, workspace_id: str | None) -> login_sessions.LoginSession:
    """Start a login session for ``user`` and put its token in the cookie."""
    started = login_sessions.start(
        db,
        user_id=user.id,
        workspace_id=workspace_id,
        client_address=client_address(),
        user_agent=request.headers.get("User-Agent", ""),
        now=utcnow(),
    )
    session.clear()
    session[SESSION_KEY] = started.token
    session.permanent = True
    return started.record


def current_token() -> str:
    token = session.get(SESSION_KEY)
    return token if isinstance(token, str) else ""


def end(db: Session) -> None:
    """End the session the cookie names (if any) and forget the cookie's contents."""
    found = login_sessions.find(db, current_token())
    if found is not None:
        login_sessions.end(db, found[0].id)
    session.clear()
