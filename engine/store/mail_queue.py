"""The durable mail queue: emails written in the transaction that caused them, claimed and
settled by the worker process's mail sender.

A claim leases a message (``next_attempt_at`` moves to the lease's end and the attempt is
counted), so a sender that dies mid-send leaves it due again; PostgreSQL claims skip rows
another worker holds. A message that keeps failing ends ``failed`` and stays listed to the
workspace's owners (Settings) until it is sent again by hand or purged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from engine.store.models import MailMessage

#: The wait after each failed attempt; after the last one the message is ``failed``.
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class QueuedMail:
    id: str
    kind: str
    to_address: str
    params: dict[str, Any]
    attempts: int  # including the one this claim makes


def enqueue(
    session: Session,
    *,
    kind: str,
    to_address: str,
    params: dict[str, Any],
    now: datetime,
    workspace_id: str | None = None,
) -> MailMessage:
    message = MailMessage(
        kind=kind,
        to_address=to_address,
        params=params,
        workspace_id=workspace_id,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    session.flush()
    return message


def next_retry(attempts: int, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed ones; None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + RETRY_DELAYS[attempts - 1]


def claim_due(session: Session, now: datetime, *, limit: int = 20) -> list[QueuedMail]:
    """Lease up to ``limit`` due messages, oldest first. The caller commits."""
    query = (
        select(MailMessage)
        .where(MailMessage.status == "pending", MailMessage.next_attempt_at <= now)
        .order_by(MailMessage.next_attempt_at, MailMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for message in session.scalars(query):
        message.attempts += 1
        message.next_attempt_at = now + LEASE
        claimed.append(
            QueuedMail(
                message.id,
                message.kind,
                message.to_address,
                dict(message.params or {}),
                message.attempts,
            )
        )
    session.flush()
    return claimed


def mark_sent(session: Session, mail_id: str, subject: str, now: datetime) -> None:
    """Sent: its parameters (links with tokens) are dropped, the record kept until purged."""
    session.execute(
        update(MailMessage)
        .where(MailMessage.id == mail_id)
        .values(
            status="sent",
            sent_at=now,
            subject=subject[:300],
            params=None,
            next_attempt_at=None,
            last_error=None,
        )
    )


def mark_failed(
    session: Session, mail_id: str, error: str, retry_at: datetime | None, subject: str | None
) -> None:
    """This attempt failed: due again at ``retry_at``, or ``failed`` for good."""
    values: dict[str, Any] = {"last_error": error[:2000], "next_attempt_at": retry_at}
    if subject:
        values["subject"] = subject[:300]
    if retry_at is None:
        values["status"] = "failed"
    session.execute(update(MailMessage).where(MailMessage.id == mail_id).values(**values))


def list_troubled(session: Session, workspace_id: str, *, limit: int = 50) -> list[MailMessage]:
    """The workspace's mail that failed for good or is being retried, newest first."""
    return list(
        session.scalars(
            select(MailMessage)
            .where(
                MailMessage.workspace_id == workspace_id,
                or_(
                    MailMessage.status == "failed",
                    (MailMessage.status == "pending") & (MailMessage.last_error.is_not(None)),
                ),
            )
            .order_by(MailMessage.id.desc())
            .limit(limit)
        )
    )


def send_again(session: Session, workspace_id: str, mail_id: str, now: datetime) -> bool:
    """Queue a failed message of the workspace once more (its attempts start over)."""
    result = session.execute(
        update(MailMessage)
        .where(
            MailMessage.id == mail_id,
            MailMessage.workspace_id == workspace_id,
            MailMessage.status == "failed",
        )
        .values(status="pending", attempts=0, next_attempt_at=now)
    )
    return bool(result.rowcount)


def purge(session: Session, cutoff: datetime) -> int:
    """Delete sent and failed messages created before ``cutoff``."""
    result = session.execute(
        delete(MailMessage).where(
            MailMessage.created_at < cutoff, MailMessage.status.in_(("sent", "failed"))
        )
    )
    return result.rowcount or 0
