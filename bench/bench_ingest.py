"""Event ingestion through the HTTP API: batches with 50 active campaigns, and single events.

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

Single events (``--single``, also part of the default run): 8 keep-alive client threads
post one event per request for ``--seconds`` to a real server process, against one active
campaign matching every event (its webhook delivered to a loopback receiver at the same
time), side by side with a bare Flask app on waitress that parses the same JSON and answers
202. Measured for ``hookcast serve`` (web and worker in one process) and for ``hookcast
web`` + ``hookcast worker``; target: >= 0.5x the bare endpoint, p99 <= 50 ms. Each line
also says how much of the load's webhooks were delivered when it ended, and how long the
rest took (``serve`` lets requests go first, so its worker falls behind during the load).
Run: ``.venv/bin/python bench/bench_ingest.py [batches] [--single-only] [--seconds S]``.
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import http_load  # bench/http_load.py
from scratch import database_kinds, scratch_database  # bench/scratch.py
from sqlalchemy import event, func, insert, select, text

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


def _bench_app(url: str) -> tuple[Any, Database, dict[str, str]]:
    """The app on ``url``, its database, and the headers of a new workspace's API key."""
    app = create_app(_app_config(url))
    database: Database = app.extensions["hookcast.db"]
    with database.transaction() as session:
        workspace = accounts.create_workspace(session, "Bench")
        key = accounts.create_api_key(session, workspace_id=workspace.id, name="bench").key
    return app, database, {"Authorization": f"Bearer {key}"}


def bench_api(url: str, batches: int) -> tuple[float, float | None]:
    """Events per second, and on SQLite the write lock's hold per batch (ms)."""
    app, database, headers = _bench_app(url)
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


# -- single events over HTTP -------------------------------------------------------------------

CLIENTS = 8


def _single_setup(url: str, hook_url: str) -> str:
    """A workspace with one active campaign matching every event; its API key."""
    app, database, headers = _bench_app(url)
    client = app.test_client()
    body = {
        "name": "Every event",
        "trigger": {"type": "event", "events": ["**"]},
        "webhook": {**CHANNEL, "url": hook_url},
    }
    created = client.post("/api/v1/campaigns", json=body, headers=headers)
    assert created.status_code == 201, created.get_json()
    campaign_id = created.get_json()["id"]
    activated = client.post(f"/api/v1/campaigns/{campaign_id}/activate", headers=headers)
    assert activated.status_code == 200, activated.get_json()
    database.dispose()
    return headers["Authorization"].removeprefix("Bearer ")


def _app_config(url: str) -> dict[str, Any]:
    return {
        "DATABASE_URL": url,
        "SECRET_KEY": "bench",
        "REQUIRE_HTTPS": False,
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "ALLOWED_NETWORKS": "127.0.0.0/8",
    }


def _single_event(prefix: str) -> Any:
    def body(client: int, n: int) -> dict[str, Any]:
        return {
            "name": "lead.created",
            "id": f"{prefix}-{client}-{n}",
            "contact": {
                "external_id": f"contact-{client}-{n % 500}",
                "attributes": {"plan": "pro"},
            },
            "properties": {"amount": n, "currency": "EUR", "source": "bench"},
        }

    return body


def _hookcast(url: str, mode: str, key: str, seconds: float) -> tuple[http_load.Load, float, float]:
    """Single-event load against ``hookcast serve`` or ``hookcast web`` + ``worker``; and
    how far delivery kept up (see ``_delivery_backlog``)."""
    port = http_load.free_port()
    hookcast = str(Path(sys.executable).parent / "hookcast")
    env = {f"HOOKCAST_{name}": str(value) for name, value in _app_config(url).items()}
    env["HOOKCAST_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="hookcast-bench-instance-")
    env["HOOKCAST_REQUIRE_HTTPS"] = "false"
    web_command = "serve" if mode == "serve" else "web"
    up = f"http://127.0.0.1:{port}/healthz"
    processes = [http_load.start([hookcast, web_command, "--port", str(port)], env, up)]
    if mode != "serve":
        processes.append(http_load.start([hookcast, "worker"], env, None))
    try:
        result = http_load.load(
            f"http://127.0.0.1:{port}/api/v1/events",
            {"Authorization": f"Bearer {key}"},
            _single_event(f"{mode}-{time.monotonic_ns()}"),
            clients=CLIENTS,
            seconds=seconds,
        )
        return result, *_delivery_backlog(url)
    finally:
        for process in processes:
            http_load.stop(process)


def _delivery_backlog(url: str) -> tuple[float, float]:
    """At the end of the load: the share of its notifications already delivered, and the
    seconds until the rest were (the worker's backlog)."""
    database = Database(url)
    started = time.perf_counter()

    def delivered_share() -> float:
        with database.session() as session:
            total = session.scalar(select(func.count()).select_from(Notification))
            done = session.scalar(
                select(func.count()).select_from(Notification).filter_by(status="delivered")
            )
        return done / total if total else 1.0

    try:
        share = delivered_share()
        while delivered_share() < 1.0 and time.perf_counter() - started < 120:
            time.sleep(0.1)
        return share, time.perf_counter() - started
    finally:
        database.dispose()


def _bare(seconds: float) -> http_load.Load:
    port = http_load.free_port()
    process = http_load.start_bare_flask(port, threads=CLIENTS)
    try:
        return http_load.load(
            f"http://127.0.0.1:{port}/api/v1/events",
            {},
            _single_event("bare"),
            clients=CLIENTS,
            seconds=seconds,
        )
    finally:
        http_load.stop(process)


def run_single(label: str, seconds: float, hook_url: str) -> list[str]:
    lines = []
    for mode in ("serve", "web+worker"):
        with scratch_database(label) as url:
            key = _single_setup(url, hook_url)
            bare = _bare(seconds)
            ours, delivered, drained = _hookcast(url, mode, key, seconds)
            database = Database(url)
            with database.session() as session:
                stored = session.scalar(select(func.count()).select_from(Event))
            database.dispose()
        accepted = ours.requests - ours.failures
        assert stored >= accepted, f"{accepted} events answered 202, {stored} stored"
        ratio = ours.rate / bare.rate
        lines.append(
            f"{label:10s} {mode:10s} {ours.rate:8,.0f}/s  p50 {ours.p50:5.1f} ms  "
            f"p99 {ours.pct(0.99):5.1f} ms | bare Flask {bare.rate:7,.0f}/s  "
            f"p99 {bare.pct(0.99):5.1f} ms | ratio {ratio:.2f}"
            f"{'' if not ours.failures else f' | {ours.failures} failed'}"
            f" | delivered by the end {delivered:.0%}, the rest {drained:.1f} s later"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    crypto.configure_encryption(ENCRYPTION_KEY)
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    seconds = 8.0
    if "--seconds" in sys.argv:
        seconds = float(sys.argv[sys.argv.index("--seconds") + 1])
        args.remove(sys.argv[sys.argv.index("--seconds") + 1])
    batches = int(args[0]) if args else 10
    if "--single-only" not in sys.argv:
        print(f"{batches} batches of {BATCH} events, {CAMPAIGNS} active campaigns")
        for kind in database_kinds():
            run(kind, batches)
    from bench_delivery import _receiver_main  # the loopback receiver of the webhooks

    ports: multiprocessing.Queue = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=_receiver_main, args=(ports,), daemon=True)
    receiver.start()
    port, _ = ports.get(timeout=10)
    print(
        f"\nSingle events: {CLIENTS} keep-alive clients, {seconds:.0f} s each, one campaign "
        "matching every event (target: ratio >= 0.5, p99 <= 50 ms)"
    )
    for kind in database_kinds():
        run_single(kind, seconds, f"http://127.0.0.1:{port}/hook")
    receiver.terminate()


if __name__ == "__main__":
    main()
