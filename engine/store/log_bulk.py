"""Bulk retry jobs: "retry all matching these filters", recorded in ``bulk_jobs``.

Idempotent by construction: a job's ``idempotency_key`` is a hash of the workspace and the
filter plus a short time window, and while a job with the same filter is queued or running
a new request returns that job instead of starting another. The work itself only moves
``failed``/``retrying`` notifications (``cancelled`` too when the filter names it), so a
second pass finds nothing left to retry. The notifications a job moved are recorded in
``bulk_job_notifications``, so its page can say how they ended.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.store.log import RETRYABLE_STATUSES, LogFilter, apply_filter
from engine.store.models import BulkJob, BulkJobNotification, Notification

KIND_RETRY = "retry"
#: Two clicks inside this window with the same filter are one job.
IDEMPOTENCY_WINDOW_SECONDS = 60
#: A running job not finished after this long is taken to be dead (its process stopped).
STALE_AFTER = timedelta(hours=1)
OPEN_JOB_STATUSES = ("queued", "running")


#: What a bulk retry without a status filter moves: the ones that did not get through and
#: were not stopped on purpose (cancelled ones only when the filter asks for them).
DEFAULT_RETRY_STATUSES = ("failed", "retrying")
#: How many matching notifications the confirm page lists.
PREVIEW_LIMIT = 20


def retry_statuses(filters: LogFilter) -> tuple[str, ...]:
    """Which statuses a bulk retry touches: failed and retrying unless the filter names one."""
    if filters.status is None:
        return DEFAULT_RETRY_STATUSES
    return (filters.status,) if filters.status in RETRYABLE_STATUSES else ()


def _filter_hash(workspace_id: str, filters: LogFilter) -> str:
    canonical = json.dumps(
        {"workspace": workspace_id, "kind": KIND_RETRY, "filters": filters.as_dict()},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def count_retryable(session: Session, workspace_id: str, filters: LogFilter) -> int:
    """How many notifications a bulk retry with ``filters`` would move now."""
    statuses = retry_statuses(filters)
    if not statuses:
        return 0
    query = apply_filter(select(func.count()).select_from(Notification), workspace_id, filters)
    return session.scalar(query.where(Notification.status.in_(statuses))) or 0


def count_retryable_by_status(
    session: Session, workspace_id: str, filters: LogFilter
) -> dict[str, int]:
    """The same count split by status (``{"failed": 2, "retrying": 3}``), zeros left out."""
    statuses = retry_statuses(filters)
    if not statuses:
        return {}
    query = apply_filter(
        select(Notification.status, func.count()).select_from(Notification), workspace_id, filters
    )
    rows = session.execute(
        query.where(Notification.status.in_(statuses)).group_by(Notification.status)
    )
    counts = {status: number for status, number in rows}
    return {status: int(counts[status]) for status in statuses if counts.get(status)}


def preview_retryable(
    session: Session, workspace_id: str, filters: LogFilter, limit: int = PREVIEW_LIMIT
) -> list[Notification]:
    """The newest notifications a bulk retry would move, for the confirm page to list."""
    statuses = retry_statuses(filters)
    if not statuses:
        return []
    query = apply_filter(select(Notification), workspace_id, filters)
    query = query.where(Notification.status.in_(statuses))
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


def record_members(session: Session, job_id: str, notification_ids: list[str]) -> None:
    """Remember which notifications ``job_id`` moved (a second pass adds none twice)."""
    if not notification_ids:
        return
    known = set(
        session.scalars(
            select(BulkJobNotification.notification_id).where(
                BulkJobNotification.job_id == job_id,
                BulkJobNotification.notification_id.in_(notification_ids),
            )
        )
    )
    session.add_all(
        BulkJobNotification(job_id=job_id, notification_id=nid)
        for nid in notification_ids
        if nid not in known
    )


def job_outcomes(session: Session, job_id: str) -> dict[str, int]:
    """Where the notifications a job retried are now: ``{"delivered": 5, "retrying": 1}``."""
    rows = session.execute(
        select(Notification.status, func.count())
        .join(BulkJobNotification, BulkJobNotification.notification_id == Notification.id)
        .where(BulkJobNotification.job_id == job_id)
        .group_by(Notification.status)
    )
    return {status: int(number) for status, number in rows}


def next_retryable_batch(
    session: Session,
    workspace_id: str,
    filters: LogFilter,
    *,
    before_id: str | None,
    limit: int,
) -> list[Notification]:
    """The next ``limit`` notifications to retry, newest first, below ``before_id``."""
    statuses = retry_statuses(filters)
    if not statuses:
        return []
    query = apply_filter(select(Notification), workspace_id, filters).where(
        Notification.status.in_(statuses)
    )
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


def find_open_job(
    session: Session, workspace_id: str, key_prefix: str, now: datetime
) -> BulkJob | None:
    return session.scalar(
        select(BulkJob)
        .where(
            BulkJob.workspace_id == workspace_id,
            BulkJob.idempotency_key.like(f"{key_prefix}:%"),
            BulkJob.status.in_(OPEN_JOB_STATUSES),
            BulkJob.created_at > now - STALE_AFTER,
        )
        .order_by(BulkJob.created_at.desc())
        .limit(1)
    )


def start_bulk_retry(
    session: Session, workspace_id: str, filters: LogFilter, now: datetime
) -> tuple[BulkJob, bool]:
    """Record a bulk retry job; returns ``(job, created)``.

    An open job for the same filter, or one started in the same short window, is returned
    instead of a new one (``created`` False). The caller commits and then runs the job
    (``engine.campaigns.manual_retry.run_bulk_retry``).
    """
    prefix = _filter_hash(workspace_id, filters)
    existing = find_open_job(session, workspace_id, prefix, now)
    if existing is not None:
        return existing, False
    key = f"{prefix}:{int(now.timestamp()) // IDEMPOTENCY_WINDOW_SECONDS}"
    existing = session.scalar(select(BulkJob).where(BulkJob.idempotency_key == key))
    if existing is not None:
        return existing, False
    job = BulkJob(
        workspace_id=workspace_id,
        kind=KIND_RETRY,
        filters=filters.as_dict(),
        idempotency_key=key,
        status="queued",
        total=count_retryable(session, workspace_id, filters),
        done=0,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:  # a concurrent click won the race
        existing = session.scalar(select(BulkJob).where(BulkJob.idempotency_key == key))
        if existing is None:
            raise
        return existing, False
    return job, True


def get_bulk_job(session: Session, workspace_id: str, job_id: str) -> BulkJob | None:
    return session.scalar(
        select(BulkJob).where(BulkJob.workspace_id == workspace_id, BulkJob.id == job_id)
    )


def recent_jobs(
    session: Session, workspace_id: str, since: datetime, limit: int = 3
) -> list[BulkJob]:
    """The workspace's newest bulk jobs started after ``since`` (the log lists them)."""
    return list(
        session.scalars(
            select(BulkJob)
            .where(BulkJob.workspace_id == workspace_id, BulkJob.created_at >= since)
            .order_by(BulkJob.created_at.desc())
            .limit(limit)
        )
    )


def unfinished_bulk_jobs(session: Session) -> list[BulkJob]:
    """Jobs queued or running (e.g. left by a stopped process) to be run again."""
    return list(
        session.scalars(
            select(BulkJob)
            .where(BulkJob.status.in_(OPEN_JOB_STATUSES), BulkJob.kind == KIND_RETRY)
            .order_by(BulkJob.created_at)
        )
    )
