"""The notifications log: filtered newest-first listing, detail, retry/cancel, retention.

Listing is keyset-paginated on ``(workspace_id, <filter column>, id)`` indexes. Notification
ids are ULIDs, so ``ORDER BY id DESC`` is newest first and a time range is an id range
(``engine.ids.ulid_floor``): no ``OFFSET``, no ``COUNT(*)``, and a page boundary never shifts
when new rows arrive (they sort above every cursor already handed out).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from engine.ids import ulid_floor
from engine.store import channel_states
from engine.store.channel_states import ChannelWait
from engine.store.models import (
    NOTIFICATION_STATUSES,
    Alert,
    Attempt,
    Campaign,
    Notification,
)

ID_PREFIX = "msg_"
#: A manual retry moves a notification from these statuses back to the outbox (a retrying
#: one is sent now instead of at its scheduled retry, rendered from the current recipe).
RETRYABLE_STATUSES = ("failed", "cancelled", "retrying")
#: Statuses a cancel applies to (a send in flight cannot be called back).
CANCELLABLE_STATUSES = ("pending", "retrying", "held")
#: A due notification in these statuses may be held back by its channel's pacing.
WAITING_STATUSES = ("pending", "retrying")
#: Retention keeps notifications the worker still has to act on, whatever their age.
PURGEABLE_STATUSES = ("delivered", "failed", "cancelled", "skipped")


class LogActionError(Exception):
    """A retry or cancel that does not apply to the notification's current status."""

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class LogFilter:
    """What the log is narrowed to; every field is optional."""

    campaign_id: str | None = None
    status: str | None = None
    contact: str | None = None  # the contact's external id
    event: str | None = None  # the event name
    test: bool | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in NOTIFICATION_STATUSES:
            raise ValueError(f"status must be one of {', '.join(NOTIFICATION_STATUSES)}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, only the set fields, in a stable order (used for idempotency keys)."""
        out: dict[str, Any] = {}
        for name, value in asdict(self).items():
            if value is None:
                continue
            out[name] = _iso(value) if isinstance(value, datetime) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogFilter:
        values = dict(data)
        for name in ("since", "until"):
            if isinstance(values.get(name), str):
                values[name] = datetime.fromisoformat(values[name].replace("Z", "+00:00"))
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _unix_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def id_floor(moment: datetime) -> str:
    """The smallest notification id created at ``moment`` (millisecond precision)."""
    return ID_PREFIX + ulid_floor(max(_unix_ms(moment), 0))  # before 1970: from the start


def apply_filter(query: Select[Any], workspace_id: str, filters: LogFilter) -> Select[Any]:
    """Add the workspace and filter conditions to a query over ``Notification``."""
    query = query.where(Notification.workspace_id == workspace_id)
    if filters.campaign_id is not None:
        query = query.where(Notification.campaign_id == filters.campaign_id)
    if filters.status is not None:
        query = query.where(Notification.status == filters.status)
    if filters.contact is not None:
        query = query.where(Notification.contact_external_id == filters.contact)
    if filters.event is not None:
        query = query.where(Notification.event_name == filters.event)
    if filters.test is not None:  # IS true / IS 1: ix_notifications_log_test's predicate
        query = query.where(Notification.test.is_(filters.test))
    if filters.since is not None:
        query = query.where(Notification.id >= id_floor(filters.since))
    if filters.until is not None:  # inclusive, to the millisecond
        until_ms = _unix_ms(filters.until) + 1
        query = query.where(Notification.id < ID_PREFIX + ulid_floor(until_ms))
    return query


def list_notifications(
    session: Session,
    workspace_id: str,
    filters: LogFilter = LogFilter(),
    *,
    limit: int = 50,
    before_id: str | None = None,
    after_id: str | None = None,
) -> list[Notification]:
    """One page of the log, newest first; pass the last id of a page as ``before_id`` for
    the next older one, or the first id as ``after_id`` for the ``limit`` just newer."""
    query = apply_filter(select(Notification), workspace_id, filters)
    if after_id is not None:
        query = query.where(Notification.id > after_id).order_by(Notification.id).limit(limit)
        return list(reversed(session.scalars(query).all()))
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


def campaign_names(session: Session, workspace_id: str, ids: Iterable[str]) -> dict[str, str]:
    """Campaign id -> name for the campaigns on one log page."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(Campaign.id, Campaign.name).where(
            Campaign.workspace_id == workspace_id, Campaign.id.in_(wanted)
        )
    )
    return {row.id: row.name for row in rows}


@dataclass
class NotificationDetail:
    notification: Notification
    attempts: list[Attempt] = field(default_factory=list)
    campaign: Campaign | None = None


def get_notification(
    session: Session, workspace_id: str, notification_id: str, *, for_update: bool = False
) -> Notification | None:
    query = select(Notification).where(
        Notification.workspace_id == workspace_id, Notification.id == notification_id
    )
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def list_attempts(session: Session, notification_id: str) -> list[Attempt]:
    return list(
        session.scalars(
            select(Attempt)
            .where(Attempt.notification_id == notification_id)
            .order_by(Attempt.number)
        )
    )


def get_notification_detail(
    session: Session, workspace_id: str, notification_id: str
) -> NotificationDetail | None:
    """The notification, its attempts (by number) and its campaign; None if not ours."""
    notification = get_notification(session, workspace_id, notification_id)
    if notification is None:
        return None
    return NotificationDetail(
        notification=notification,
        attempts=list_attempts(session, notification.id),
        campaign=session.get(Campaign, notification.campaign_id),
    )


def channel_waits(
    session: Session, notifications: Iterable[Notification], now: datetime
) -> dict[str, ChannelWait]:
    """Notification id -> why its channel holds it back, for those that are due but wait.

    Due means ``pending`` or ``retrying`` with ``next_attempt_at`` reached: a notification
    whose next attempt is still ahead is waiting for that time, not for its channel. The
    channel's rate limit, a 429's ``Retry-After`` or the breaker may hold due ones back
    (``engine.store.channel_states.waits``: one query for all their campaigns)."""
    due = [
        n
        for n in notifications
        if n.status in WAITING_STATUSES
        and n.next_attempt_at is not None
        and n.next_attempt_at <= now
    ]
    if not due:
        return {}
    found = channel_states.waits(session, {n.campaign_id for n in due}, now)
    return {n.id: found[n.campaign_id] for n in due if n.campaign_id in found}


# -- actions --------------------------------------------------------------------------------


def requeue(
    session: Session,
    notification: Notification,
    campaign: Campaign | None,
    now: datetime,
) -> None:
    """Put a failed/cancelled/retrying notification back in the outbox, due now.

    ``held`` while the webhook is disabled or sending is paused.

    The id (the ``webhook-id``) and the attempt numbering carry on; the caller announces
    the new work (``wakeups.announce_new_notifications``) before committing.
    """
    disabled = campaign is not None and campaign.webhook_disabled
    inactive = campaign is not None and (campaign.channel or {}).get("active") is False
    if disabled or inactive:
        notification.status = "held"
        notification.reason = "webhook_disabled" if disabled else "webhook_inactive"
        notification.next_attempt_at = None
    else:
        notification.status = "pending"
        notification.reason = None
        notification.next_attempt_at = now
    notification.leased_by = None
    notification.updated_at = now


def keep_sent_requests(session: Session, notification: Notification) -> None:
    """Before a notification's request is rendered again, give its attempts the old one.

    Attempts store no request of their own while it equals the notification's (the hot
    path writes nothing extra); this keeps what each earlier attempt actually sent.
    """
    if not notification.request or not notification.attempt_count:
        return
    session.execute(
        update(Attempt)
        .where(Attempt.notification_id == notification.id, Attempt.request.is_(None))
        .values(request=notification.request)
    )


def check_retryable(notification: Notification) -> bool:
    """True when a retry has work to do; False when it is already queued (a no-op).

    Raises ``LogActionError`` for statuses a retry does not apply to.
    """
    if notification.status in RETRYABLE_STATUSES:
        return True
    if notification.status in ("pending", "sending", "held"):
        return False
    if notification.status == "delivered":
        raise LogActionError("this notification was already delivered", status="delivered")
    raise LogActionError(
        f"a {notification.status} notification cannot be retried", status=notification.status
    )


def cancel_notification(
    session: Session, workspace_id: str, notification_id: str, now: datetime
) -> Notification | None:
    """Cancel a pending, retrying or held notification; cancelling twice is a no-op.

    Returns None when the notification is not in this workspace.
    """
    notification = get_notification(session, workspace_id, notification_id, for_update=True)
    if notification is None:
        return None
    if notification.status == "cancelled":
        return notification
    if notification.status not in CANCELLABLE_STATUSES:
        raise LogActionError(
            f"a {notification.status} notification cannot be cancelled",
            status=notification.status,
        )
    # Guard on the status read, so a worker claiming it in between wins cleanly.
    changed = session.execute(
        update(Notification)
        .where(Notification.id == notification.id, Notification.status == notification.status)
        .values(
            status="cancelled",
            reason="cancelled by a user",
            next_attempt_at=None,
            leased_by=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(notification)
    if not changed and notification.status != "cancelled":
        raise LogActionError(
            f"the notification became {notification.status} meanwhile; try again",
            status=notification.status,
        )
    return notification


# -- health ---------------------------------------------------------------------------------


def list_open_alerts(session: Session, workspace_id: str, limit: int = 100) -> list[Alert]:
    return list(
        session.scalars(
            select(Alert)
            .where(Alert.workspace_id == workspace_id, Alert.acknowledged_at.is_(None))
            .order_by(Alert.created_at.desc(), Alert.id.desc())
            .limit(limit)
        )
    )


def list_campaign_alerts(
    session: Session, workspace_id: str, campaign_id: str, limit: int = 20
) -> list[Alert]:
    return list(
        session.scalars(
            select(Alert)
            .where(Alert.workspace_id == workspace_id, Alert.campaign_id == campaign_id)
            .order_by(Alert.created_at.desc(), Alert.id.desc())
            .limit(limit)
        )
    )


def count_open_alerts(session: Session, workspace_id: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Alert)
            .where(Alert.workspace_id == workspace_id, Alert.acknowledged_at.is_(None))
        )
        or 0
    )


def acknowledge_alerts(
    session: Session,
    workspace_id: str,
    user_id: str,
    now: datetime,
    alert_ids: Iterable[str] | None = None,
) -> int:
    """Acknowledge the given open alerts (all when ``alert_ids`` is None); returns how many."""
    query = update(Alert).where(Alert.workspace_id == workspace_id, Alert.acknowledged_at.is_(None))
    if alert_ids is not None:
        query = query.where(Alert.id.in_(list(alert_ids)))
    result = session.execute(
        query.values(acknowledged_at=now, acknowledged_by=user_id).execution_options(
            synchronize_session=False
        )
    )
    return result.rowcount or 0


# -- retention ------------------------------------------------------------------------------


def purge_expired(session: Session, cutoff: datetime, batch_size: int = 500) -> int:
    """Delete finished notifications created before ``cutoff``, with their attempts.

    Works through the primary key in batches of ``batch_size``, committing after each, so
    no lock is held for long and the log stays usable while it runs. Notifications still
    open (pending, sending, retrying, held) are kept whatever their age. Returns how many
    notifications were deleted. Commits.
    """
    upper = id_floor(cutoff)
    after = ""
    deleted = 0
    while True:
        rows = session.execute(
            select(Notification.id, Notification.status)
            .where(Notification.id > after, Notification.id < upper)
            .order_by(Notification.id)
            .limit(batch_size)
        ).all()
        if not rows:
            break
        after = rows[-1].id
        ids = [row.id for row in rows if row.status in PURGEABLE_STATUSES]
        if ids:
            gone = list(
                session.scalars(
                    delete(Notification)
                    .where(
                        Notification.id.in_(ids),
                        Notification.status.in_(PURGEABLE_STATUSES),
                    )
                    .returning(Notification.id)
                    .execution_options(synchronize_session=False)
                )
            )
            if gone:  # the foreign key cascades too; this keeps it explicit everywhere
                session.execute(delete(Attempt).where(Attempt.notification_id.in_(gone)))
            deleted += len(gone)
        session.commit()
        if len(rows) < batch_size:
            break
    return deleted
