"""A worker whose database goes away keeps retrying, logging one line a minute per kind of
failure and no traceback (issue #14)."""

from __future__ import annotations

import logging
import time

from engine.delivery.transport import Transport
from engine.delivery.worker import Worker
from engine.runtime import EngineRuntime
from engine.settings import EngineSettings
from engine.store import Database

UNREACHABLE_POSTGRES = "postgresql+psycopg://hookcast@127.0.0.1:1/hookcast"  # refused at once


def test_a_worker_without_its_database_logs_one_line_no_traceback(caplog) -> None:
    caplog.set_level(logging.INFO, "engine")
    database = Database(UNREACHABLE_POSTGRES)
    transport = Transport()
    worker = Worker(database, transport, threads=2, poll_interval=0.2)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            "database unavailable" in r.getMessage() for r in caplog.records
        ):
            time.sleep(0.1)
        time.sleep(2)  # several more failed cycles (one each half second)
    finally:
        worker.stop(grace_seconds=2)
        transport.close()
        database.dispose()
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    unavailable = [r for r in lines if "database unavailable" in r.getMessage()]
    assert len(unavailable) == 1, [r.getMessage() for r in lines]
    assert all(r.exc_info is None for r in caplog.records), [r.getMessage() for r in lines]


def test_scheduled_jobs_without_their_database_log_one_line_no_traceback(caplog) -> None:
    """One kind of failure (the refused connection) is one line a minute, whichever job."""
    caplog.set_level(logging.INFO, "engine")
    settings = EngineSettings.from_config({"DATABASE_URL": UNREACHABLE_POSTGRES})
    database = Database(UNREACHABLE_POSTGRES)
    runtime = EngineRuntime(settings, database)  # not started: its jobs are run by hand
    try:
        for job in (runtime.recover_leases, runtime.purge_expired, runtime.run_schedules):
            for _ in range(3):
                runtime.quietly(job)()
    finally:
        runtime.transport.close()
        database.dispose()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, lines
    assert "database unavailable, recover_leases waits for its next run" in lines[0]
    assert all(r.exc_info is None for r in caplog.records)
