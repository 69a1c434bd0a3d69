"""Schedule runs: at each fire time, every contact in the audience gets one notification.

``run_due_schedules`` is called every few seconds by each process's runtime (APScheduler
job). Per active schedule campaign it computes the fire times since the last run (or
since activation) with ``engine.rules.triggers``, and claims each by inserting the unique
``schedule_runs (campaign_id, fire_time)`` row — a conflict means another process has it,
so a fire time runs exactly once however many schedulers race. A fire time later than
``misfire_grace_seconds`` is recorded as ``missed`` instead of run (SPEC §6).

The audience is selected in SQL (``engine.rules.sql``) in keyset batches over
``contacts.id``; each batch is rendered and capped outside any write transaction, then
bulk-inserted in its own transaction by a writer thread while the next batch is rendered,
so memory stays bounded by two batches and other writers are never locked out for long.
A run ends ``done`` (or ``failed`` with the error); its counts are kept up to date.
A campaign paused or archived while its run is under way stops after the current batch.
Each page written moves the run's heartbeat and resume point (the last contact id; pages
go in contact id order) in the page's own transaction. A run whose process died or hangs
(no page for ``STALLED_RUN_AFTER``) is taken over by exactly one other process, which
continues after the resume point: nobody is skipped and nobody notified twice; the
process that stalled, if it wakes, finds the run no longer its own and writes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from engine.campaigns.materialize import CampaignMaterializer, MaterializedBatch
from engine.rules.triggers import fire_times, misfire_grace_seconds
from engine.store import Database, accounts, schedule_runs
from engine.store import campaigns as campaign_store
from engine.store import events as event_store
from engine.store.models import Campaign
from engine.store.types import utcnow
from engine.store.wakeups import announce_new_notifications
from engine.templating.request import RenderSettings

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
#: A running run whose claimer wrote no page for this long is taken over by another.
STALLED_RUN_AFTER = timedelta(minutes=5)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def run_due_schedules(
    database: Database,
    settings: Any,
    now: datetime | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Run (or record as missed) every due fire time; returns how many this call handled.

    ``settings`` is an ``EngineSettings`` (or a ``RenderSettings``).
    """
    now = now or utcnow()
    render_settings = (
        settings if isinstance(settings, RenderSettings) else RenderSettings.from_settings(settings)
    )
    with database.session() as session:
        campaigns = campaign_store.active_schedule_campaigns(session)
        due: list[tuple[str, datetime]] = []
        for campaign in campaigns:
            start = campaign.activated_at or campaign.created_at
            latest = campaign_store.latest_fire_time(session, campaign.id)
            after = max(start, latest) if latest else start
            try:
                times = fire_times(campaign.trigger, after=after, until=now)
            except (ValueError, KeyError, TypeError) as exc:  # stored data, not a bug: one line
                logger.warning(
                    "campaign %s has an unusable schedule (%s)",
                    campaign.id,
                    exc,
                    extra={"workspace_id": campaign.workspace_id, "campaign_id": campaign.id},
                )
                continue
            due.extend((campaign.id, moment) for moment in times)
    handled = _resume_stalled_runs(database, render_settings, now, batch_size)
    for campaign_id, fire_time in due:
        if run_fire_time(
            database, campaign_id, fire_time, render_settings, now, batch_size=batch_size
        ):
            handled += 1
    return handled


def run_fire_time(
    database: Database,
    campaign_id: str,
    fire_time: datetime,
    settings: RenderSettings,
    now: datetime,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> bool:
    """Claim one fire time and run it (or record it missed); False if it was not ours."""
    owner = worker_name()
    with database.transaction() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status != "active":
            return False
        late = (now - fire_time).total_seconds() > misfire_grace_seconds(campaign.trigger)
        run_id = schedule_runs.claim_fire_time(
            session,
            campaign,
            fire_time,
            status="missed" if late else "running",
            claimed_by=owner,
            now=now,
        )
        if run_id is None or late:
            return run_id is not None
    _run_to_the_end(
        database, _OwnedRun(campaign_id, run_id, owner, fire_time), settings, batch_size
    )
    return True


def _resume_stalled_runs(
    database: Database, settings: RenderSettings, now: datetime, batch_size: int
) -> int:
    """Continue runs whose process stopped writing pages (it died or hangs): each is taken
    over by one process and resumes after the last contact written."""
    owner = worker_name()
    with database.transaction() as session:
        runs = schedule_runs.take_over_stalled_runs(
            session, stalled_before=now - STALLED_RUN_AFTER, owner=owner, now=now
        )
        resumed = [(r.id, r.campaign_id, r.fire_time, r.last_contact_id) for r in runs]
    for run_id, campaign_id, fire_time, last_contact_id in resumed:
        logger.warning(
            "schedule run %s stalled; continuing it after contact %s", run_id, last_contact_id
        )
        _run_to_the_end(
            database,
            _OwnedRun(campaign_id, run_id, owner, fire_time),
            settings,
            batch_size,
            after_id=last_contact_id,
        )
    return len(resumed)


@dataclass(frozen=True)
class _OwnedRun:
    """A run this process holds (``owner`` is its claim) and the fire time it serves."""

    campaign_id: str
    run_id: str
    owner: str
    fire_time: datetime


def _run_to_the_end(
    database: Database,
    run: _OwnedRun,
    settings: RenderSettings,
    batch_size: int,
    *,
    after_id: str | None = None,
) -> None:
    """Materialise the rest of the run, then mark it done (or failed)."""
    try:
        _materialize_run(database, run, settings, batch_size, after_id)
    except Exception as exc:
        logger.exception(
            "schedule run %s of campaign %s failed",
            run.run_id,
            run.campaign_id,
            extra={"campaign_id": run.campaign_id},
        )
        with database.transaction() as session:
            schedule_runs.finish_run(
                session,
                run.run_id,
                owner=run.owner,
                status="failed",
                now=utcnow(),
                error=str(exc)[:2000],
            )
        return
    with database.transaction() as session:
        schedule_runs.finish_run(session, run.run_id, owner=run.owner, status="done", now=utcnow())


def _materialize_run(
    database: Database,
    run: _OwnedRun,
    settings: RenderSettings,
    batch_size: int,
    after_id: str | None,
) -> None:
    """Page through the audience: each page is read and rendered here (outside any write
    transaction) while a writer thread inserts the page before it, so the database's
    work overlaps ours; at most one rendered page waits. A page is written only while the
    campaign is still active. On an error the write in flight ends before this returns."""
    with ThreadPoolExecutor(1, thread_name_prefix="hookcast-schedule-writer") as writer:
        pending: Future[bool] | None = None
        while True:
            with database.session() as session:
                campaign = session.get(Campaign, run.campaign_id)
                if campaign is None or campaign.status != "active":
                    break  # paused, archived or deleted mid-run: the rest is not sent
                page = schedule_runs.audience_page(
                    session, campaign, now=run.fire_time, after_id=after_id, limit=batch_size
                )
                if not page:
                    break
                batch = _render_page(session, campaign, run.run_id, page, settings)
            if pending is not None and not pending.result():
                pending = None
                break
            after_id = page[-1][0]
            pending = writer.submit(_write_page, database, run, batch, after_id)
            if len(page) < batch_size:
                break
        if pending is not None:
            pending.result()  # its error fails the run


def _write_page(
    database: Database, run: _OwnedRun, batch: MaterializedBatch, last_contact_id: str
) -> bool:
    """Insert one rendered page and count it; False (nothing written) once the campaign
    is no longer active or another process has taken the run over."""
    with database.transaction() as session:
        campaign = session.get(Campaign, run.campaign_id)
        if campaign is None or campaign.status != "active":
            return False
        if not schedule_runs.record_page(
            session,
            run.run_id,
            owner=run.owner,
            last_contact_id=last_contact_id,
            now=utcnow(),
            notifications=len(batch.notifications),
            skipped=batch.skipped,
            failed=batch.failed,
        ):
            return False
        event_store.insert_notifications(session, batch.notifications, batch.attempts)
        if batch.pending:
            announce_new_notifications(session)
    return True


def _render_page(
    session: Session,
    campaign: Campaign,
    run_id: str,
    page: list[tuple[str, str, dict[str, Any]]],
    settings: RenderSettings,
) -> MaterializedBatch:
    now = utcnow()
    workspace = accounts.get_workspace(session, campaign.workspace_id)
    maker = CampaignMaterializer(
        campaign,
        {"id": campaign.workspace_id, "name": workspace.name if workspace else None},
        settings,
        schedule_run_id=run_id,
    )
    counts: dict[str, int] = {}
    limit = None
    if campaign.frequency_cap:
        limit = int(campaign.frequency_cap["max"])
        since = now - timedelta(seconds=int(campaign.frequency_cap["per_seconds"]))
        counts = event_store.recent_notification_counts(
            session, campaign.id, [row[0] for row in page], since
        )
    batch = MaterializedBatch()
    for contact_id, external_id, attributes in page:
        capped = limit is not None and counts.get(contact_id, 0) >= limit
        maker.add(
            batch,
            contact={"id": contact_id, "external_id": external_id, "attributes": attributes},
            event=None,
            event_row_id=None,
            now=now,
            capped=capped,
        )
    return batch
