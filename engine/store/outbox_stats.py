"""What the operator's gauges read at scrape time: the outbox backlog and disabled endpoints.

Both are index reads (``ix_notifications_due`` covers the open notifications by due time),
cheap enough for a scrape every few seconds however long the backlog.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.store.models import Campaign, Notification

_OPEN = ("pending", "retrying", "sending")


@dataclass(frozen=True)
class OutboxBacklog:
    """Notifications due now (waiting for a worker, or leased by one that stopped) and the
    earliest due time among them."""

    due: int
    oldest_due_at: datetime | None


def outbox_backlog(session: Session, now: datetime) -> OutboxBacklog:
    due, oldest = session.execute(
        select(func.count(), func.min(Notification.next_attempt_at)).where(
            Notification.status.in_(_OPEN), Notification.next_attempt_at <= now
        )
    ).one()
    return OutboxBacklog(int(due or 0), oldest)


def disabled_endpoints(session: Session) -> int:
    """Campaigns whose webhook is disabled (they hold their notifications until re-enabled)."""
    query = select(func.count()).where(Campaign.webhook_disabled.is_(True))
    return int(session.execute(query).scalar_one())
