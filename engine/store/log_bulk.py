"""Bulk retry jobs: "retry all failed matching these filters", recorded in ``bulk_jobs``.

Idempotent by construction: a job's ``idempotency_key`` is a hash of the workspace and the
filter plus a short time window, and while a job with the same filter is queued or running
a new request returns that job instead of starting another. The work itself only moves
``failed``/``cancelled`` notifications, so a second pass finds nothing left to retry.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.store.log import RETRYABLE_STATUSES, LogFilter, apply_filter
from engine.store.models import BulkJob, Notification

KIND_RETRY = "retry"
#: Two clicks inside this window with the same filter are one job.
IDEMPOTENCY_WINDOW_SECONDS = 60
#: A running job not finished after this long is taken to be dead (its process stopped).
STALE_AFTER = timedelta(hours=1)
OPEN_JOB_STATUSES = ("queued", "running")


def retry_statuses(filters: LogFilter) -> tuple[str, ...]:
    """Which statuses a bulk retry touches: ``failed`` unless the filter names another."""
    if filters.status is None:
        return ("failed",)
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


def unfinished_bulk_jobs(session: Session) -> list[BulkJob]:
    """Jobs queued or running (e.g. left by a stopped process) to be run again."""
    return list(
        session.scalars(
            select(BulkJob)
            .where(BulkJob.status.in_(OPEN_JOB_STATUSES), BulkJob.kind == KIND_RETRY)
            .order_by(BulkJob.created_at)
        )
    )
