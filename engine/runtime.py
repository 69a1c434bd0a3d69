"""The engine's running half in one process: scheduler, dispatcher, senders, listener.

``hookcast serve`` and ``hookcast worker`` create exactly one ``EngineRuntime``; the web
app never does, so no forked web worker runs a second scheduler. APScheduler 3 (embedded,
one per process) drives the timers: a retry's due time (a date job that wakes the
dispatcher), the safety-net poll, lease recovery, the retention purge and the
schedule tick. Coordination between processes lives in
the database (leases, ``FOR UPDATE SKIP LOCKED``) and in PostgreSQL ``LISTEN/NOTIFY``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from engine.campaigns import manual_retry
from engine.campaigns.schedules import run_due_schedules
from engine.delivery.transport import Transport
from engine.delivery.worker import Worker
from engine.mail.sender import MailSender
from engine.settings import EngineSettings
from engine.store import (
    Database,
    activity,
    log,
    login_sessions,
    login_throttle,
    mail_queue,
    notices,
    outbox,
)
from engine.store.availability import RateLimitedLog, describe, failure_class, is_unavailable_error
from engine.store.types import utcnow
from engine.templating.request import RenderSettings

logger = logging.getLogger(__name__)
_unavailable_log = RateLimitedLog(60.0)

POLL_SECONDS = 5
LEASE_RECOVERY_SECONDS = 15
PURGE_SECONDS = 3600
SCHEDULE_TICK_SECONDS = 10
MAIL_POLL_SECONDS = 5
#: Sent and failed mail is kept this long (failed mail is listed to owners meanwhile).
MAIL_KEEP_DAYS = 14
STOP_GRACE_SECONDS = 10.0
#: Bulk retry jobs left queued/running by a stopped process are resumed once, soon after start.
BULK_RESUME_DELAY_SECONDS = 2


class EngineRuntime:
    def __init__(
        self,
        settings: EngineSettings,
        database: Database,
        *,
        answering_requests: Callable[[], bool] | None = None,
    ) -> None:
        """``answering_requests``: in a process that also serves the web app, whether it is
        answering requests right now (its dispatcher then gives them precedence)."""
        self.settings = settings
        self.database = database
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.transport = Transport(allowed_networks=settings.allowed_networks)
        self.worker = Worker(
            database,
            self.transport,
            threads=settings.sender_threads,
            poll_interval=POLL_SECONDS,
            wake_at=self._wake_at,
            answering_requests=answering_requests,
        )
        self.listener = None
        if database.is_postgres:  # psycopg is imported only where the database needs it
            from engine.delivery.outbox_listener import OutboxListener

            self.listener = OutboxListener(database.url, self.worker.wake)
        self.mail_sender = MailSender(database, settings) if settings.mail_enabled else None
        notices.configure(alert_emails=settings.mail_enabled, base_url=settings.base_url)

    def start(self) -> None:
        add = self.scheduler.add_job
        add(self.worker.wake, "interval", seconds=POLL_SECONDS, id="dispatch-poll")
        add(
            self.quietly(self.recover_leases),
            "interval",
            seconds=LEASE_RECOVERY_SECONDS,
            id="lease-recovery",
        )
        add(
            self.quietly(self.purge_expired),
            "interval",
            seconds=PURGE_SECONDS,
            id="retention-purge",
            next_run_time=utcnow() + timedelta(seconds=60),
        )
        add(
            self.quietly(self.resume_bulk_jobs),
            "date",
            run_date=utcnow() + timedelta(seconds=BULK_RESUME_DELAY_SECONDS),
            id="bulk-retry-resume",
            misfire_grace_time=None,
        )
        add(
            self.quietly(self.run_schedules),
            "interval",
            seconds=SCHEDULE_TICK_SECONDS,
            id="schedule-tick",
            next_run_time=utcnow(),
        )
        if self.mail_sender is not None:
            add(
                self.send_mail,
                "interval",
                seconds=MAIL_POLL_SECONDS,
                id="mail-sender",
                next_run_time=utcnow(),
            )
        self.scheduler.start()
        if self.listener is not None:
            self.listener.start()
        self.worker.start()

    def stop(self) -> None:
        """Stop timers, stop claiming, finish or release in-flight sends, close connections."""
        self.scheduler.shutdown(wait=False)
        if self.listener is not None:
            self.listener.stop()
        self.worker.stop(STOP_GRACE_SECONDS)
        self.transport.close()

    def quietly(self, job: Callable[[], None]) -> Callable[[], None]:
        """``job`` for the scheduler: while the database is away it logs one line a minute
        per kind of failure (no traceback) and tries again at its next run."""

        def run() -> None:
            try:
                job()
            except Exception as exc:
                if not is_unavailable_error(exc):
                    raise  # a bug: APScheduler logs it with its traceback
                _unavailable_log(
                    logger,
                    logging.WARNING,
                    failure_class(exc),
                    f"database unavailable, {job.__name__} waits for its next run: {describe(exc)}",
                )

        run.__name__ = job.__name__
        return run

    def _wake_at(self, when: datetime) -> None:
        """A retry timer: wake the dispatcher when the earliest retry falls due."""
        if not self.scheduler.running:
            return
        self.scheduler.add_job(
            self.worker.wake,
            "date",
            run_date=when,
            id="dispatch-timer",
            replace_existing=True,
            misfire_grace_time=None,
        )

    def recover_leases(self) -> None:
        with self.database.transaction(write=True) as session:
            recovered = outbox.recover_expired_leases(session, utcnow())
        if recovered:
            logger.warning("took back %d sends whose worker stopped mid-send", recovered)

    def purge_expired(self) -> None:
        cutoff = utcnow() - timedelta(days=self.settings.retention_days)
        with self.database.session(write=True) as session:
            purged = log.purge_expired(session, cutoff, 500)
            session.commit()
        if purged:
            logger.info("purged %d notifications older than %s", purged, cutoff)
        now = utcnow()
        limits = login_sessions.SessionLimits(
            idle=timedelta(hours=self.settings.session_idle_hours),
            lifetime=timedelta(days=self.settings.session_lifetime_days),
        )
        with self.database.transaction(write=True) as session:
            activity.purge_expired(session, now)
            login_sessions.purge_expired(session, now, limits)
            login_throttle.purge_stale(session, now, login_throttle.ThrottlePolicy())
            mail_queue.purge(session, now - timedelta(days=MAIL_KEEP_DAYS))

    def send_mail(self) -> None:
        """Send the queued mail that is due (its own scheduler job, off the dispatcher)."""
        if self.mail_sender is not None:
            self.mail_sender.send_due()

    def resume_bulk_jobs(self) -> None:
        """Finish bulk retry jobs a stopped process left unfinished (runs once per start)."""
        settings = RenderSettings.from_settings(self.settings)
        resumed = manual_retry.resume_bulk_jobs(self.database, settings)
        if resumed:
            logger.info("resumed %d unfinished bulk retry jobs", resumed)

    def run_schedules(self) -> None:
        run_due_schedules(self.database, self.settings, utcnow())
