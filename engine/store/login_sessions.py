"""Signed-in browsers: server-side login sessions that logout and password changes end.

The browser holds a random token; the row stores only its SHA-256, so reading the table
does not give anyone a live session. A session ends when it is deleted (logout, "sign out
everywhere else", a password change), after ``idle`` without a request, or ``lifetime``
after it began, whichever comes first.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from engine.store.models import LoginSession, User

#: ``last_seen_at`` is refreshed at most this often, so page views do not all write.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class SessionLimits:
    idle: timedelta = timedelta(hours=12)
    lifetime: timedelta = timedelta(days=14)


@dataclass(frozen=True)
class StartedSession:
    record: LoginSession
    token: str  # goes into the cookie, never stored


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    session: Session,
    *,
    user_id: str,
    workspace_id: str | None,
    client_address: str,
    user_agent: str,
    now: datetime,
) -> StartedSession:
    token = secrets.token_urlsafe(32)
    record = LoginSession(
        token_hash=_hash(token),
        user_id=user_id,
        workspace_id=workspace_id,
        client_address=client_address[:64],
        user_agent=user_agent[:500],
        created_at=now,
        last_seen_at=now,
    )
    session.add(record)
    session.flush()
    return StartedSession(record=record, token=token)


def is_expired(record: LoginSession, now: datetime, limits: SessionLimits) -> bool:
    return now - record.last_seen_at > limits.idle or now - record.created_at > limits.lifetime


def find(session: Session, token: str) -> tuple[LoginSession, User] | None:
    """The session a cookie's token names, with its user (expired or not), or None."""
    if not token:
        return None
    row = session.execute(
        select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.token_hash == _hash(token))
    ).first()
    return (row[0], row[1]) if row else None


def needs_touch(record: LoginSession, now: datetime, client_address: str) -> bool:
    return now - record.last_seen_at > TOUCH_INTERVAL or record.client_address != client_address


def touch(session: Session, session_id: str, now: datetime, client_address: str) -> None:
    session.execute(
        update(LoginSession)
        .where(LoginSession.id == session_id)
        .values(last_seen_at=now, client_address=client_address[:64])
    )


def set_workspace(session: Session, session_id: str, workspace_id: str) -> None:
    session.execute(
        update(LoginSession).where(LoginSession.id == session_id).values(workspace_id=workspace_id)
    )


def end(session: Session, session_id: str, *, user_id: str | None = None) -> bool:
    """Delete one session (only if it is ``user_id``'s, when given)."""
    query = delete(LoginSession).where(LoginSession.id == session_id)
    if user_id is not None:
        query = query.where(LoginSession.user_id == user_id)
    return bool(session.execute(query).rowcount)


def end_all_of_user(session: Session, user_id: str, *, keep: str | None = None) -> int:
    """Delete every session of the user but ``keep``; returns how many ended."""
    query = delete(LoginSession).where(LoginSession.user_id == user_id)
    if keep is not None:
        query = query.where(LoginSession.id != keep)
    return session.execute(query).rowcount or 0


def list_of_user(session: Session, user_id: str) -> list[LoginSession]:
    return list(
        session.scalars(
            select(LoginSession)
            .where(LoginSession.user_id == user_id)
            .order_by(LoginSession.last_seen_at.desc())
        )
    )


def purge_expired(session: Session, now: datetime, limits: SessionLimits) -> int:
    """Delete sessions past their idle timeout or lifetime."""
    result = session.execute(
        delete(LoginSession).where(
            (LoginSession.last_seen_at < now - limits.idle)
            | (LoginSession.created_at < now - limits.lifetime)
        )
    )
    return result.rowcount or 0
