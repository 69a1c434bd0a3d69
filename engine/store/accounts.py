"""Workspaces, users, memberships and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine import crypto
from engine.store.models import API_KEY_SCOPES, ROLES, ApiKey, Membership, User, Workspace
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


class LastOwnerError(AccountError):
    """The change would leave a workspace without an owner."""


def _lock_workspace(session: Session, workspace_id: str) -> None:
    """Serialise owner changes of one workspace (two owners stepping down at once)."""
    session.execute(select(Workspace.id).where(Workspace.id == workspace_id).with_for_update())


def _refuse_last_owner(session: Session, membership: Membership, email: str) -> None:
    if membership.role == "owner" and count_owners(session, membership.workspace_id) <= 1:
        raise LastOwnerError(
            f"{email} is the last owner of this workspace; make another member owner first"
        )


def set_membership(session: Session, *, user_id: str, workspace_id: str, role: str) -> Membership:
    """Add the user to the workspace with ``role``, or change the role they have.

    Raises ``LastOwnerError`` rather than demote the workspace's last owner."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    _lock_workspace(session, workspace_id)
    membership = session.get(Membership, (user_id, workspace_id))
    if membership is None:
        membership = Membership(user_id=user_id, workspace_id=workspace_id, role=role)
        session.add(membership)
    elif membership.role != role:
        if role != "owner":
            user = session.get(User, user_id)
            _refuse_last_owner(session, membership, user.email if user else user_id)
        membership.role = role
    session.flush()
    return membership


def remove_membership(session: Session, *, user_id: str, workspace_id: str) -> bool:
    """Remove the user from the workspace; ``LastOwnerError`` for its last owner."""
    _lock_workspace(session, workspace_id)
    membership = session.get(Membership, (user_id, workspace_id))
    if membership is None:
        return False
    user = session.get(User, user_id)
    _refuse_last_owner(session, membership, user.email if user else user_id)
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


def create_api_key(
    session: Session, *, workspace_id: str, name: str = "", scope: str = "full"
) -> CreatedApiKey:
    """A new key; ``scope`` ``full`` (everything) or ``events`` (events and contact writes)."""
    if scope not in API_KEY_SCOPES:
        raise AccountError(f"scope must be one of {', '.join(API_KEY_SCOPES)}; got {scope!r}")
    if session.get(Workspace, workspace_id) is None:
        raise AccountError(f"no workspace with id {workspace_id}")
    key = crypto.generate_api_key()
    record = ApiKey(
        workspace_id=workspace_id,
        name=name.strip()[:200],
        scope=scope,
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


def revoke_api_key(session: Session, *, workspace_id: str, key_id: str) -> ApiKey | None:
    """Revoke a live key of the workspace; the key, or None when there was none to revoke."""
    record = session.scalar(
        select(ApiKey).where(
            ApiKey.workspace_id == workspace_id, ApiKey.id == key_id, ApiKey.revoked_at.is_(None)
        )
    )
    if record is None:
        return None
    record.revoked_at = utcnow()
    session.flush()
    return record


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
