"""Workspaces, users, memberships and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine import crypto
from engine.store.models import ROLES, ApiKey, Membership, User, Workspace
from engine.store.types import utcnow

#: ``last_used_at`` is refreshed at most this often, so API calls do not all write.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


class AccountError(ValueError):
    """Bad input for an account operation; the message is fit to show a person."""


@dataclass(frozen=True)
class CreatedApiKey:
    record: ApiKey
    key: str  # the secret itself: shown once, never stored


def create_workspace(session: Session, name: str) -> Workspace:
    name = name.strip()
    if not name:
        raise AccountError("workspace name must not be empty")
    if len(name) > 200:
        raise AccountError("workspace name must be at most 200 characters")
    workspace = Workspace(name=name)
    session.add(workspace)
    session.flush()
    return workspace


def get_workspace(session: Session, workspace_id: str) -> Workspace | None:
    return session.get(Workspace, workspace_id)


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or not domain or " " in email or len(email) > 320:
        raise AccountError(f"not a valid email address: {email!r}")
    return email


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def get_user(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def create_user(session: Session, *, email: str, password_hash: str) -> User:
    email = normalize_email(email)
    if get_user_by_email(session, email) is not None:
        raise AccountError(f"a user with email {email} already exists")
    user = User(email=email, password_hash=password_hash)
    session.add(user)
    session.flush()
    return user


def set_password_hash(session: Session, user: User, password_hash: str) -> None:
    user.password_hash = password_hash
    session.flush()


def set_membership(session: Session, *, user_id: str, workspace_id: str, role: str) -> Membership:
    """Add the user to the workspace with ``role``, or change the role they have."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    membership = session.get(Membership, (user_id, workspace_id))
    if membership is None:
        membership = Membership(user_id=user_id, workspace_id=workspace_id, role=role)
        session.add(membership)
    else:
        membership.role = role
    session.flush()
    return membership


def remove_membership(session: Session, *, user_id: str, workspace_id: str) -> bool:
    membership = session.get(Membership, (user_id, workspace_id))
    if membership is None:
        return False
    session.delete(membership)
    session.flush()
    return True


def get_membership(session: Session, *, user_id: str, workspace_id: str) -> Membership | None:
    return session.get(Membership, (user_id, workspace_id))


def list_memberships_of_user(session: Session, user_id: str) -> list[tuple[Membership, Workspace]]:
    rows = session.execute(
        select(Membership, Workspace)
        .join(Workspace, Workspace.id == Membership.workspace_id)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.created_at)
    )
    return [(m, w) for m, w in rows]


def list_members(session: Session, workspace_id: str) -> list[tuple[Membership, User]]:
    rows = session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(User.email)
    )
    return [(m, u) for m, u in rows]


def count_owners(session: Session, workspace_id: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.workspace_id == workspace_id, Membership.role == "owner")
        )
        or 0
    )


def create_api_key(session: Session, *, workspace_id: str, name: str = "") -> CreatedApiKey:
    if session.get(Workspace, workspace_id) is None:
        raise AccountError(f"no workspace with id {workspace_id}")
    key = crypto.generate_api_key()
    record = ApiKey(
        workspace_id=workspace_id,
        name=name.strip()[:200],
        prefix=key[:10],
        key_hash=crypto.hash_api_key(key),
    )
    session.add(record)
    session.flush()
    return CreatedApiKey(record=record, key=key)


def list_api_keys(session: Session, workspace_id: str) -> list[ApiKey]:
    return list(
        session.scalars(
            select(ApiKey).where(ApiKey.workspace_id == workspace_id).order_by(ApiKey.id.desc())
        )
    )


def revoke_api_key(session: Session, *, workspace_id: str, key_id: str) -> bool:
    result = session.execute(
        update(ApiKey)
        .where(
            ApiKey.workspace_id == workspace_id, ApiKey.id == key_id, ApiKey.revoked_at.is_(None)
        )
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)


def authenticate_api_key(session: Session, key: str) -> ApiKey | None:
    """The live key record for a presented secret, or None."""
    return session.scalar(
        select(ApiKey).where(
            ApiKey.key_hash == crypto.hash_api_key(key), ApiKey.revoked_at.is_(None)
        )
    )


def api_key_needs_touch(record: ApiKey, now: datetime) -> bool:
    """Whether ``last_used_at`` is stale enough to be worth a write."""
    return record.last_used_at is None or now - record.last_used_at > API_KEY_TOUCH_INTERVAL


def touch_api_key(session: Session, key_id: str, now: datetime) -> None:
    """Record that the key was used at ``now``."""
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
