"""Password reset links: valid one hour, single use; only the token's hash is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.store.models import PasswordReset, User

LIFETIME = timedelta(hours=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(session: Session, user_id: str, now: datetime) -> str:
    """A new reset for the user; its token (for the link, never stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordReset(
            user_id=user_id, token_hash=_hash(token), created_at=now, expires_at=now + LIFETIME
        )
    )
    session.flush()
    return token


def find_valid(
    session: Session, token: str, now: datetime, *, for_update: bool = False
) -> tuple[PasswordReset, User] | None:
    """The unused, unexpired reset a link's token names, with its user; or None."""
    query = (
        select(PasswordReset, User)
        .join(User, User.id == PasswordReset.user_id)
        .where(
            PasswordReset.token_hash == _hash(token),
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > now,
        )
    )
    if for_update:
        query = query.with_for_update(of=PasswordReset)
    row = session.execute(query).one_or_none()
    return (row[0], row[1]) if row is not None else None


def use_all(session: Session, user_id: str, now: datetime) -> None:
    """Spend every open reset link of the user (the one used, and any older ones)."""
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )


def purge_expired(session: Session, now: datetime) -> int:
    result = session.execute(
        PasswordReset.__table__.delete().where(PasswordReset.expires_at < now - timedelta(days=1))
    )
    return result.rowcount or 0
