"""Workspaces, users, memberships and API keys."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine import crypto
from engine.store.models import API_KEY_SCOPES, ROLES, ApiKey, Membership, User, Workspace
from engine.store.types import utcnow

#: ``last_used_at`` is refreshed at most this often, so API calls do not all write.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)
#: A process looks a presented API key up at most this often: a key revoked in another
#: process stops working within this time, one revoked in this process at once.
API_KEY_CACHE_SECONDS = 1.0


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
    _grants.clear()  # this process stops honouring it now, the others within a second
    return record


@dataclass(frozen=True)
class ApiKeyGrant:
    """What a live API key allows: the workspace it acts for and its scope."""

    id: str
    workspace_id: str
    name: str | None
    prefix: str
    scope: str
    last_used_at: datetime | None


class _GrantCache:
    """``key hash → (grant, when it was read)`` for ``API_KEY_CACHE_SECONDS``."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[str, tuple[ApiKeyGrant, float]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> ApiKeyGrant | None:
        entry = self._entries.get(key_hash)
        if entry is None or time.monotonic() - entry[1] >= API_KEY_CACHE_SECONDS:
            return None
        return entry[0]

    def put(self, key_hash: str, grant: ApiKeyGrant) -> None:
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[key_hash] = (grant, time.monotonic())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_grants = _GrantCache()


def cached_api_key(key: str) -> ApiKeyGrant | None:
    """The grant of a key this process looked up within ``API_KEY_CACHE_SECONDS``, if any
    (no query); a miss says nothing about the key: look it up."""
    return _grants.get(crypto.hash_api_key(key))


def authenticate_api_key(session: Session, key: str) -> ApiKeyGrant | None:
    """The grant of a live key for a presented secret, or None (and remember it briefly)."""
    key_hash = crypto.hash_api_key(key)
    record = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )
    if record is None:
        return None
    grant = ApiKeyGrant(
        record.id,
        record.workspace_id,
        record.name,
        record.prefix,
        record.scope,
        record.last_used_at,
    )
    _grants.put(key_hash, grant)
    return grant


def api_key_needs_touch(record: ApiKey | ApiKeyGrant, now: datetime) -> bool:
    """Whether ``last_used_at`` is stale enough to be worth a write."""
    return record.last_used_at is None or now - record.last_used_at > API_KEY_TOUCH_INTERVAL


def touch_api_key(session: Session, key_id: str, now: datetime) -> None:
    """Record that the key was used at ``now``."""
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
    _grants.clear()  # cached grants would ask for the same write again within the second
