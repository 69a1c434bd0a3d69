"""Batched event ingestion through the HTTP API, with 50 active campaigns.

For each database (SQLite always; PostgreSQL when ``HOOKCAST_BENCH_POSTGRES_URL`` or
``HOOKCAST_TEST_POSTGRES_URL`` is set) this measures, in one run, side by side:

- api: ``POST /api/v1/events`` with batches of 1,000 events (Flask test client, the whole
  view: JSON parsing, validation, contact upsert, duplicates check, pattern index,
  conditions, caps, rendering, bulk inserts, commit). 50 active campaigns listen to
  ``evt<N>.*`` / ``**`` patterns; every event matches exactly one campaign whose
  conditions hold, so each event makes one rendered notification.
- baseline: a bare ``INSERT`` (executemany) of the same number of event rows and
  notification rows, in one transaction per batch — the floor any ingestion pays.

Prints events/s for both and the ratio (target: api >= 5,000 events/s on 2 cores).
Run: ``.venv/bin/python bench/bench_ingest.py [batches]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from scratch import database_kinds, scratch_database  # bench/scratch.py
from sqlalchemy import event, insert, text

from engine import crypto
from engine.ids import new_id
from engine.store import Database, accounts
from engine.store.models import Campaign, Event, Notification
from engine.store.types import utcnow
from web import create_app

ENCRYPTION_KEY = "wS6bIbJ4pPfvbY0Dp5Jd4aCqJ3kR1Xw2m0V0h0nq0Xs="
BATCH = 1000
CAMPAIGNS = 50
CHANNEL: dict[str, Any] = {
    "url": "https://hooks.example.com/leads/{{ contact.external_id | urlencode }}",
    "method": "POST",
    "headers": [{"name": "X-Campaign", "value": "{{ campaign.name }}"}],
    "auth": {"type": "bearer", "token": "t0ken"},
    "body": {"mode": "default"},
}


def _campaigns(client: Any, headers: dict[str, str]) -> None:
    for number in range(CAMPAIGNS):
        trigger = {
            "type": "event",
            "events": [f"evt{number}.*"],
            "conditions": {"field": "contact.plan", "op": "in", "value": ["pro", "free"]},
        }
        body = {"name": f"Campaign {number}", "trigger": trigger, "webhook": CHANNEL}
        created = client.post("/api/v1/campaigns", json=body, headers=headers)
        assert created.status_code == 201, created.get_json()
        campaign_id = created.get_json()["id"]
        activated = client.post(f"/api/v1/campaigns/{campaign_id}/activate", headers=headers)
        assert activated.status_code == 200, activated.get_json()


def _batch(batch_number: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"evt{(batch_number * BATCH + i) % CAMPAIGNS}.created",
            "id": f"b{batch_number}-{i}",
            "contact": {
                "external_id": f"contact-{(batch_number * 397 + i) % 5000}",
                "attributes": {"plan": "pro" if i % 2 else "free", "score": i % 100},
            },
            "properties": {"amount": i, "currency": "EUR", "source": "bench"},
        }
        for i in range(BATCH)
    ]


class _WriteLockClock:
    """Time spent in SQLite write transactions (BEGIN IMMEDIATE to COMMIT or ROLLBACK):
    while one is open, every other writer (the delivery worker too) waits."""

    def __init__(self, database: Database) -> None:
        self.seconds = 0.0
        self._started: dict[int, float] = {}
        if not database.is_postgres:
            event.listen(database.engine, "begin", self._begin)
            event.listen(database.engine, "commit", self._end)
            event.listen(database.engine, "rollback", self._end)

    def _begin(self, conn: Any) -> None:
        if conn.get_execution_options().get("sqlite_immediate", False):
            self._started[id(conn)] = time.perf_counter()

    def _end(self, conn: Any) -> None:
        started = self._started.pop(id(conn), None)
        if started is not None:
            self.seconds += time.perf_counter() - started


def bench_api(url: str, batches: int) -> tuple[float, float | None]:
    """Events per second, and on SQLite the write lock's hold per batch (ms)."""
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "REQUIRE_HTTPS": False,
            "ENCRYPTION_KEY": ENCRYPTION_KEY,
            "ALLOWED_NETWORKS": "127.0.0.0/8",
        }
    )
    database: Database = app.extensions["hookcast.db"]
    with database.transaction() as session:
        workspace = accounts.create_workspace(session, "Bench")
        key = accounts.create_api_key(session, workspace_id=workspace.id, name="bench").key
    headers = {"Authorization": f"Bearer {key}"}
    client = app.test_client()
    _campaigns(client, headers)
    bodies = [{"events": _batch(n)} for n in range(batches + 1)]
    client.post("/api/v1/events", json=bodies[0], headers=headers)  # warm-up
    _analyze(database)
    clock = _WriteLockClock(database)
    started = time.perf_counter()
    for body in bodies[1:]:
        response = client.post("/api/v1/events", json=body, headers=headers)
        assert response.status_code == 202, response.get_json()
    elapsed = time.perf_counter() - started
    answer = response.get_json()["events"]
    assert all(len(e["notifications"]) == 1 for e in answer)
    database.dispose()
    held = None if database.is_postgres else clock.seconds * 1000 / batches
    return batches * BATCH / elapsed, held


def _analyze(database: Database) -> None:
    """Planner statistics, as autovacuum keeps them in a live database. Without them a
    table filled a moment ago looks empty, and after a few executions PostgreSQL settles
    on generic plans that scan instead of using the unique indexes (each batch's
    duplicate and contact lookups then take 100+ ms instead of a few)."""
    with database.transaction() as session:
        session.execute(text("ANALYZE"))


def bench_baseline(url: str, batches: int) -> float:
    database = Database(url)
    with database.transaction() as session:
        workspace = accounts.create_workspace(session, "Baseline")
        campaign = Campaign(
            workspace_id=workspace.id,
            name="c",
            signing_secret="whsec_x",  # noqa: S106
        )
        session.add(campaign)
        session.flush()
        workspace_id, campaign_id = workspace.id, campaign.id
    _analyze(database)
    started = time.perf_counter()
    for n in range(batches):
        now = utcnow()
        events = [
            {
                "id": new_id("evt"),
                "workspace_id": workspace_id,
                "client_id": f"x{n}-{i}",
                "name": "evt.created",
                "properties": {"amount": i, "currency": "EUR"},
                "occurred_at": now,
                "received_at": now,
            }
            for i in range(BATCH)
        ]
        notifications = [
            {
                "id": new_id("msg"),
                "workspace_id": workspace_id,
                "campaign_id": campaign_id,
                "event_id": e["id"],
                "status": "pending",
                "next_attempt_at": now,
                "request": {
                    "method": "POST",
                    "url": "http://127.0.0.1:9/",
                    "headers": [],
                    "body": '{"a": 1}',
                },
                "request_secrets": {"Authorization": "Bearer t0ken"},
                "created_at": now,
                "updated_at": now,
            }
            for e in events
        ]
        with database.transaction() as session:
            session.execute(insert(Event), events)
            session.execute(insert(Notification), notifications)
    elapsed = time.perf_counter() - started
    database.dispose()
    return batches * BATCH / elapsed


def run(label: str, batches: int) -> None:
    with scratch_database(label) as url:
        baseline = bench_baseline(url, batches)
    with scratch_database(label) as url:
        api, held = bench_api(url, batches)
    print(
        f"{label:10s} api {api:9,.0f} events/s | bare INSERT baseline "
        f"{baseline:9,.0f} events/s | api/baseline {api / baseline:.2f}"
        f" | target >= 5,000 events/s: {'met' if api >= 5000 else 'NOT met'}"
    )
    if held is not None:
        per_batch = BATCH / api * 1000
        print(f"{'':10s} write lock held {held:.0f} ms of each batch's {per_batch:.0f} ms")


def main() -> None:
    crypto.configure_encryption(ENCRYPTION_KEY)
    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"{batches} batches of {BATCH} events, {CAMPAIGNS} active campaigns")
    for kind in database_kinds():
        run(kind, batches)


if __name__ == "__main__":
    main()
