"""Materialising one schedule run for 100,000 contacts: seconds and peak RSS growth.

For each database (SQLite always; PostgreSQL when ``HOOKCAST_BENCH_POSTGRES_URL`` or
``HOOKCAST_TEST_POSTGRES_URL`` is set), in one run, side by side:

- run: ``engine.campaigns.schedules.run_due_schedules`` for a daily campaign whose audience
  (``contact.plan in [pro, free]`` and ``contact.score >= 0``, selected in SQL) is every
  contact: claims the fire time, pages contacts by id (1,000 per batch), renders each
  request and bulk-inserts the notifications, batch by batch.
- baseline: a bare ``INSERT`` (executemany, same batch size) of the same number of
  notification rows with a fixed request, no audience query and no rendering.

Prints seconds, peak RSS growth during the run (sampled every 10 ms by a thread, from
/proc/self/statm) and the ratio run/baseline. Targets: <= 10 s and <= 200 MB.
Run: ``.venv/bin/python bench/bench_schedule.py [contacts]``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

from scratch import database_kinds, scratch_database  # bench/scratch.py
from sqlalchemy import insert, select, text

from engine import crypto
from engine.campaigns.schedules import run_due_schedules
from engine.ids import new_id
from engine.store import Database, accounts, schedule_runs
from engine.store.models import Campaign, Contact, Notification
from engine.store.types import utcnow
from engine.templating.request import RenderSettings

ENCRYPTION_KEY = "wS6bIbJ4pPfvbY0Dp5Jd4aCqJ3kR1Xw2m0V0h0nq0Xs="
BATCH = 1000
CHANNEL: dict[str, Any] = {
    "url": "https://hooks.example.com/contacts/{{ contact.external_id | urlencode }}",
    "method": "POST",
    "content_type": "json",
    "headers": [{"name": "X-Campaign", "value": "{{ campaign.name }}"}],
    "auth": {"type": "bearer"},
    "body": {"mode": "default"},
}
FIRE = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


class PeakRss:
    """Samples this process's resident set size; ``growth`` is peak minus start, bytes."""

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self._page

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 1e6


def _seed(database: Database, contacts: int) -> tuple[str, str]:
    with database.transaction() as session:
        workspace = accounts.create_workspace(session, "Bench")
        campaign = Campaign(
            workspace_id=workspace.id,
            name="Daily digest",
            status="active",
            trigger_type="schedule",
            trigger={"type": "schedule", "cron": "0 9 * * *", "timezone": "UTC"},
            audience={
                "conditions": {
                    "all": [
                        {"field": "contact.plan", "op": "in", "value": ["pro", "free"]},
                        {"field": "contact.score", "op": "gte", "value": 0},
                    ]
                }
            },
            channel=CHANNEL,
            channel_secrets={"token": "t0ken"},
            signing_secret="whsec_x",  # noqa: S106 - a placeholder
            activated_at=datetime(2026, 1, 1, 8, 0, tzinfo=UTC),
        )
        session.add(campaign)
        session.flush()
        workspace_id, campaign_id = workspace.id, campaign.id
    for start in range(0, contacts, 10_000):
        rows = [
            {
                "id": new_id("con"),
                "workspace_id": workspace_id,
                "external_id": f"c{n}",
                "attributes": {
                    "plan": "pro" if n % 2 else "free",
                    "score": n % 100,
                    "email": f"user{n}@example.com",
                    "first_name": "Ada",
                },
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
            for n in range(start, min(start + 10_000, contacts))
        ]
        with database.transaction() as session:
            session.connection().execute(insert(Contact.__table__), rows)
    # A live database has planner statistics (autovacuum keeps them); a table filled a
    # moment ago has none, and PostgreSQL would then plan each audience page as a sort of
    # the whole workspace.
    with database.transaction() as session:
        session.execute(text("ANALYZE contacts"))
    return workspace_id, campaign_id


def _seed_elsewhere(url: str, contacts: int) -> tuple[str, str]:
    """Seed in a child process, so this process's heap (and RSS) starts small."""
    child = multiprocessing.get_context("fork").Process(target=_seed_child, args=(url, contacts))
    child.start()
    child.join()
    assert child.exitcode == 0
    database = Database(url)
    with database.session() as session:
        campaign = session.scalars(select(Campaign)).one()
        ids = campaign.workspace_id, campaign.id
    database.dispose()
    return ids


def _seed_child(url: str, contacts: int) -> None:
    database = Database(url)
    _seed(database, contacts)
    database.dispose()


def bench_audience(url: str) -> float:
    """Seconds to page through the audience in SQL alone (no rendering, no inserts)."""
    database = Database(url)
    started = time.perf_counter()
    after, total = None, 0
    with database.session() as session:
        campaign = session.scalars(select(Campaign)).one()
        while True:
            page = schedule_runs.audience_page(
                session, campaign, now=FIRE, after_id=after, limit=BATCH
            )
            if not page:
                break
            total += len(page)
            after = page[-1][0]
    database.dispose()
    return time.perf_counter() - started


def bench_run(url: str, contacts: int) -> tuple[float, float, int]:
    _seed_elsewhere(url, contacts)
    audience_seconds = bench_audience(url)
    print(f"           (selecting the audience in SQL alone: {audience_seconds:.2f} s)")
    database = Database(url)
    settings = RenderSettings(require_https=False)
    with PeakRss() as rss:
        started = time.perf_counter()
        handled = run_due_schedules(database, settings, datetime(2026, 1, 1, 9, 0, 5, tzinfo=UTC))
        elapsed = time.perf_counter() - started
    with database.session() as session:
        made = session.scalar(text("SELECT count(*) FROM notifications"))
    database.dispose()
    assert handled == 1 and made == contacts, (handled, made)
    return elapsed, rss.growth_mb, made


def bench_baseline(url: str, contacts: int) -> tuple[float, float, int]:
    workspace_id, campaign_id = _seed_elsewhere(url, contacts)
    database = Database(url)
    request = {
        "method": "POST",
        "url": "https://hooks.example.com/contacts/c1",
        "headers": [{"name": "Authorization", "value": "Bearer ****"}],
        "body": "{}",
    }
    with PeakRss() as rss:
        started = time.perf_counter()
        for start in range(0, contacts, BATCH):
            now = utcnow()
            rows = [
                {
                    "id": new_id("msg"),
                    "workspace_id": workspace_id,
                    "campaign_id": campaign_id,
                    "contact_external_id": f"c{n}",
                    "status": "pending",
                    "next_attempt_at": now,
                    "request": request,
                    "request_secrets": {"Authorization": "Bearer t0ken"},
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(start, min(start + BATCH, contacts))
            ]
            with database.transaction() as session:
                session.connection().execute(insert(Notification.__table__), rows)
        elapsed = time.perf_counter() - started
    database.dispose()
    return elapsed, rss.growth_mb, contacts


def run(label: str, contacts: int) -> None:
    results = {}
    for kind, bench in (("baseline", bench_baseline), ("run", bench_run)):
        with scratch_database(label) as url:
            results[kind] = bench(url, contacts)
    (seconds, growth, _), (base_seconds, base_growth, _) = results["run"], results["baseline"]
    verdict = "met" if seconds <= 10 and growth <= 200 else "NOT met"
    print(
        f"{label:10s} run {seconds:6.2f} s, peak RSS +{growth:6.1f} MB | bare INSERT "
        f"{base_seconds:6.2f} s, +{base_growth:5.1f} MB | run/baseline "
        f"{seconds / base_seconds:.2f}x | targets (<= 10 s, <= 200 MB): {verdict}"
    )


def main() -> None:
    crypto.configure_encryption(ENCRYPTION_KEY)
    contacts = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(f"one schedule run for {contacts:,} contacts, {BATCH} per batch")
    for kind in database_kinds():
        run(kind, contacts)


if __name__ == "__main__":
    main()
