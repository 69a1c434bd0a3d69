"""Invitations to a workspace: an owner names an email and a role; the emailed link (valid
7 days, single use) lets the person choose a password. Only the token's hash is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.store.accounts import AccountError, normalize_email
from engine.store.models import ROLES, Invitation

LIFETIME = timedelta(days=7)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    session: Session,
    *,
    workspace_id: str,
    email: str,
    role: str,
    invited_by: str | None,
    now: datetime,
) -> tuple[Invitation, str]:
    """A new invitation and its token (to put in the link, never stored). An earlier
    pending invitation of the same email to the workspace is revoked: the newest link wins."""
    email = normalize_email(email)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    session.execute(
        update(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        workspace_id=workspace_id,
        email=email,
        role=role,
        token_hash=hash_token(token),
        invited_by=invited_by,
        created_at=now,
        expires_at=now + LIFETIME,
    )
    session.add(invitation)
    session.flush()
    return invitation, token


def list_pending(session: Session, workspace_id: str, now: datetime) -> list[Invitation]:
    return list(
        session.scalars(
            select(Invitation)
            .where(
                Invitation.workspace_id == workspace_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .order_by(Invitation.id.desc())
        )
    )


def revoke(
    session: Session, workspace_id: str, invitation_id: str, now: datetime
) -> Invitation | None:
    """Revoke a pending invitation of the workspace; None when there is none to revoke."""
    invitation = session.scalar(
        select(Invitation).where(
            Invitation.workspace_id == workspace_id,
            Invitation.id == invitation_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    )
    if invitation is not None:
        invitation.revoked_at = now
        session.flush()
    return invitation


def find_valid(
    session: Session, token: str, now: datetime, *, for_update: bool = False
) -> Invitation | None:
    """The pending, unexpired invitation a link's token names, or None."""
    query = select(Invitation).where(
        Invitation.token_hash == hash_token(token),
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > now,
    )
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)
