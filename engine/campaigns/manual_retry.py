"""Manual retry from the log: one notification now, or every one matching a filter.

A retry is what a marketer does after fixing the cause (an expired key, a typo in the
URL), so the request is rendered again from the campaign's *current* recipe with the
notification's own contact and event, keeping its id (the ``webhook-id``). When the
contact or event is gone, the stored request is sent again as it was.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from engine.campaigns.service import channel_with_secrets
from engine.store import Database, log_bulk, notices
from engine.store import log as log_store
from engine.store.log import LogActionError, LogFilter
from engine.store.models import (
    Attempt,
    BulkJob,
    Campaign,
    Contact,
    Event,
    Notification,
    Workspace,
)
from engine.store.types import utcnow
from engine.templating.errors import RenderError
from engine.templating.render import render_request
from engine.templating.request import RenderSettings
from engine.templating.variables import build_variables

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 200
_threads: list[threading.Thread] = []
_threads_lock = threading.Lock()


def refresh_request(
    session: Session,
    notification: Notification,
    campaign: Campaign,
    settings: RenderSettings,
    now: datetime,
) -> RenderError | None:
    """Render the notification's request again from the campaign's current recipe.

    Returns the ``RenderError`` when the recipe no longer renders (the notification is
    then failed with ``render_error`` and an attempt row, like at creation). The earlier
    attempts keep the request they sent (``attempts.request``).
    """
    log_store.keep_sent_requests(session, notification)
    contact = session.get(Contact, notification.contact_id) if notification.contact_id else None
    event = session.get(Event, notification.event_id) if notification.event_id else None
    if (notification.contact_id and contact is None) or (notification.event_id and event is None):
        return None  # the data it was made from is gone: send the stored request again
    workspace = session.get(Workspace, notification.workspace_id)
    variables = build_variables(
        contact=None
        if contact is None
        else {
            "id": contact.id,
            "external_id": contact.external_id,
            "attributes": contact.attributes,
        },
        event=None
        if event is None
        else {
            "id": event.client_id or event.id,
            "name": event.name,
            "occurred_at": event.occurred_at,
            "properties": event.properties,
        },
        campaign={"id": campaign.id, "name": campaign.name},
        workspace={"id": notification.workspace_id, "name": workspace.name if workspace else ""},
        notification_id=notification.id,
        now=now,
    )
    try:
        rendered = render_request(
            channel_with_secrets(campaign.channel or {}, campaign.channel_secrets),
            variables,
            settings,
        )
    except RenderError as exc:
        notification.attempt_count += 1
        session.add(
            Attempt(
                notification_id=notification.id,
                number=notification.attempt_count,
                started_at=now,
                duration_ms=0,
                error_code=exc.code,
                error_message=str(exc),
            )
        )
        notification.status = "failed"
        notification.error_code = exc.code
        notification.error_message = str(exc)
        notification.next_attempt_at = None
        notification.updated_at = now
        return exc
    notification.request = rendered.masked()
    notification.request_secrets = rendered.secret_headers()
    notification.endpoint_host = urlsplit(rendered.url).hostname
    return None


def announce(session: Session) -> None:
    """Tell the dispatcher there is new work (PostgreSQL NOTIFY / in-process wake-up)."""
    from engine.store import wakeups

    wakeups.announce_new_notifications(session)


def _retry_loaded(
    session: Session, notification: Notification, settings: RenderSettings, now: datetime
) -> None:
    campaign = session.get(Campaign, notification.campaign_id)
    if campaign is not None and refresh_request(session, notification, campaign, settings, now):
        return  # the current recipe does not render: failed again, with the reason
    log_store.requeue(session, notification, campaign, now)


def retry_notification(
    session: Session,
    workspace_id: str,
    notification_id: str,
    settings: RenderSettings,
    now: datetime | None = None,
) -> Notification | None:
    """Retry one failed, cancelled or retrying notification now; a second call is a no-op.

    Returns None when the notification is not in this workspace; raises ``LogActionError``
    when a retry does not apply (e.g. already delivered). The caller commits.
    """
    now = now or utcnow()
    notification = log_store.get_notification(
        session, workspace_id, notification_id, for_update=True
    )
    if notification is None:
        return None
    if log_store.check_retryable(notification):
        _retry_loaded(session, notification, settings, now)
        session.flush()
        announce(session)
    return notification


def run_bulk_retry(
    database: Database,
    settings: RenderSettings,
    job_id: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Work a bulk retry job through in small committed batches, recording progress."""
    with database.transaction() as session:
        job = session.get(BulkJob, job_id)
        if job is None or job.status == "done":
            return
        job.status = "running"
        workspace_id, filters = job.workspace_id, LogFilter.from_dict(job.filters)
    before: str | None = None
    while True:
        with database.transaction() as session:
            batch = log_bulk.next_retryable_batch(
                session, workspace_id, filters, before_id=before, limit=batch_size
            )
            now = clock()
            for notification in batch:
                _retry_loaded(session, notification, settings, now)
            log_bulk.record_members(session, job_id, [n.id for n in batch])
            if batch:
                before = batch[-1].id
                session.flush()
                announce(session)
            job = session.get(BulkJob, job_id)
            job.done += len(batch)
            if len(batch) < batch_size:
                job.status = "done"
                job.total = job.done  # what was actually retried, so progress ends full
                job.finished_at = now
                notices.bulk_retry_finished(session, job, now)
                return


def run_in_background(
    database: Database, settings: RenderSettings, job_id: str
) -> threading.Thread:
    """Start ``run_bulk_retry`` on a daemon thread (the web request returns at once)."""

    def work() -> None:
        try:
            run_bulk_retry(database, settings, job_id)
        except Exception:  # logged; the job stays open and is resumed by the runtime
            logger.exception("bulk retry job %s stopped", job_id)

    thread = threading.Thread(target=work, name=f"bulk-retry-{job_id}", daemon=True)
    with _threads_lock:
        _threads[:] = [t for t in _threads if t.is_alive()] + [thread]
    thread.start()
    return thread


def start_bulk_retry(
    session: Session,
    database: Database,
    settings: RenderSettings,
    workspace_id: str,
    filters: LogFilter,
) -> tuple[BulkJob, bool]:
    """Record (or find) the bulk retry job for ``filters``; returns ``(job, created)``.

    Commits ``session`` so the job is visible to the background thread that then works a
    newly created job through (an existing one is already running or done).
    """
    job, created = log_bulk.start_bulk_retry(session, workspace_id, filters, utcnow())
    session.commit()
    if created:
        run_in_background(database, settings, job.id)
    return job, created


def wait_for_background_jobs(timeout: float = 30.0) -> None:
    """Join the bulk retry threads this process started (shutdown, tests)."""
    with _threads_lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(timeout)


def resume_bulk_jobs(database: Database, settings: RenderSettings) -> int:
    """Run jobs left queued or running (a maintenance hook for the runtime); returns how many."""
    with database.session() as session:
        job_ids = [job.id for job in log_bulk.unfinished_bulk_jobs(session)]
    for job_id in job_ids:
        run_bulk_retry(database, settings, job_id)
    return len(job_ids)


__all__ = [
    "LogActionError",
    "refresh_request",
    "resume_bulk_jobs",
    "retry_notification",
    "run_bulk_retry",
    "run_in_background",
    "start_bulk_retry",
    "wait_for_background_jobs",
]
