"""Each workspace's activity log: who did what to which object, and when.

Entries are written in the same transaction as the change they describe, listed newest
first with keyset pagination on the time-ordered id, filtered by user and kind, and kept
for :data:`RETENTION` (the worker's purge deletes older ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.ids import ulid_floor
from engine.store.models import Activity, Membership, User

RETENTION = timedelta(days=90)

#: Every kind an entry can have, for the filter and the API reference.
KINDS = (
    "login",
    "login.throttled",
    "password.changed",
    "sessions.ended",
    "campaign.created",
    "campaign.saved",
    "campaign.activated",
    "campaign.paused",
    "campaign.archived",
    "campaign.deleted",
    "template.created",
    "template.saved",
    "template.deleted",
    "api_key.created",
    "api_key.revoked",
    "member.added",
    "member.role_changed",
    "member.removed",
    "notification.retried",
    "notifications.bulk_retried",
    "member.invited",
    "member.invitation_revoked",
    "member.joined",
    "password.reset",
    "alerts_webhook.saved",
    "alerts_webhook.secret_rotated",
    "alerts_webhook.removed",
)


@dataclass(frozen=True)
class Actor:
    """Who acts: a user, an API key, or an operator at the command line."""

    label: str
    user_id: str | None = None


def record(
    session: Session,
    workspace_id: str,
    actor: Actor,
    kind: str,
    summary: str,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    now: datetime | None = None,
) -> Activity:
    if kind not in KINDS:
        raise ValueError(f"unknown activity kind {kind!r}")
    entry = Activity(
        workspace_id=workspace_id,
        user_id=actor.user_id,
        actor=actor.label[:400],
        kind=kind,
        object_type=object_type,
        object_id=object_id,
        summary=summary[:500],
    )
    if now is not None:
        entry.created_at = now
    session.add(entry)
    return entry


def record_for_user(
    session: Session,
    user: User,
    kind: str,
    summary: str,
    *,
    actor: Actor | None = None,
    workspace_ids: Sequence[str] | None = None,
) -> None:
    """An entry about ``user`` in every workspace they belong to (an account spans them
    all); by the user themself unless ``actor`` says otherwise. ``workspace_ids`` spares
    the query when the caller has the memberships at hand."""
    if workspace_ids is None:
        workspace_ids = session.scalars(
            select(Membership.workspace_id).where(Membership.user_id == user.id)
        ).all()
    for workspace_id in workspace_ids:
        record(
            session,
            workspace_id,
            actor or Actor(user.email, user.id),
            kind,
            summary,
            object_type="user",
            object_id=user.id,
        )


def list_page(
    session: Session,
    workspace_id: str,
    *,
    limit: int,
    before: str | None = None,
    user_id: str | None = None,
    kinds: Sequence[str] = (),
) -> list[Activity]:
    """Up to ``limit`` entries newest first, older than the id ``before`` when given."""
    query = select(Activity).where(Activity.workspace_id == workspace_id)
    if before:
        query = query.where(Activity.id < before)
    if user_id:
        query = query.where(Activity.user_id == user_id)
    if kinds:
        query = query.where(Activity.kind.in_(list(kinds)))
    return list(session.scalars(query.order_by(Activity.id.desc()).limit(limit)))


def purge_expired(session: Session, now: datetime) -> int:
    """Delete entries older than :data:`RETENTION`."""
    moment = now - RETENTION
    floor = "act_" + ulid_floor(int(moment.timestamp() * 1000))
    result = session.execute(delete(Activity).where(Activity.id < floor))
    return result.rowcount or 0
