"""The notifications log with 1,000,000 notifications: first page and filtered pages.

Seeds one workspace (20 campaigns, 5,000 contacts, statuses mostly delivered, 30 days of
ULID ids) with a bulk insert (``executemany`` on SQLite, ``COPY`` on PostgreSQL), then times
``engine.store.log.list_notifications`` pages against a baseline measured in the same run:
a bare ``SELECT id FROM notifications ORDER BY id DESC LIMIT 50``. Prints each query plan
(EXPLAIN) so the index used is visible. Target: each page ≤ 50 ms.

Run: ``.venv/bin/python bench/bench_log.py [--rows N] [--sqlite-only]``; PostgreSQL runs
where ``HOOKCAST_BENCH_POSTGRES_URL`` or ``HOOKCAST_TEST_POSTGRES_URL`` is set. Each run
uses a scratch database (bench/scratch.py), dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from scratch import database_kinds, scratch_database  # bench/scratch.py
from sqlalchemy import event, text

from engine import crypto
from engine.ids import ulid_floor
from engine.store import Database, accounts
from engine.store.log import LogFilter, list_notifications
from engine.store.log_stats import campaign_stats
from engine.store.models import Campaign

STATUSES = ["delivered"] * 90 + ["failed"] * 5 + ["retrying"] * 3 + ["pending"] * 2
EVENTS = ["lead.create", "lead.update", "lead.status.update", "campaign.email.open"]
COLUMNS = (
    "id", "workspace_id", "campaign_id", "contact_external_id", "event_name", "test",
    "status", "attempt_count", "endpoint_host", "request", "created_at", "updated_at",
)  # fmt: skip
REPEATS = 30
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _random_tail(rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(16))


def generate_rows(
    workspace_id: str, campaign_ids: list[str], count: int, now: datetime
) -> list[tuple]:
    """``count`` notification rows, oldest first, spread over the last 30 days."""
    rng = random.Random(7)
    start_ms = int((now - timedelta(days=30)).timestamp() * 1000)
    step = (30 * 86400 * 1000) // count
    request = json.dumps(
        {"method": "POST", "url": "https://api.example.com/hook", "headers": [], "body": "{}"}
    )
    rows = []
    for index in range(count):
        ms = start_ms + index * step
        created = datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)
        rows.append(
            (
                "msg_" + ulid_floor(ms)[:10] + _random_tail(rng),
                workspace_id,
                campaign_ids[index % len(campaign_ids)],
                f"lead-{rng.randrange(5000)}",
                EVENTS[index % len(EVENTS)],
                index % 1000 == 0,
                STATUSES[rng.randrange(100)],
                1,
                "api.example.com",
                request,
                created,
                created,
            )
        )
    return rows


def seed(database: Database, count: int) -> tuple[str, list[str]]:
    with database.transaction() as session:
        workspace = accounts.create_workspace(session, "Bench")
        campaigns = [
            Campaign(
                workspace_id=workspace.id,
                name=f"Campaign {i}",
                status="active",
                channel={"url": "https://api.example.com/hook"},
                signing_secret="whsec_" + "A" * 43 + "=",
            )
            for i in range(20)
        ]
        session.add_all(campaigns)
        session.flush()
        workspace_id, campaign_ids = workspace.id, [c.id for c in campaigns]
    rows = generate_rows(workspace_id, campaign_ids, count, datetime.now(UTC))
    started = time.perf_counter()
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if database.is_postgres:
            with cursor.copy(f"COPY notifications ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.execute("BEGIN")
            marks = ", ".join("?" for _ in COLUMNS)
            cursor.executemany(
                f"INSERT INTO notifications ({', '.join(COLUMNS)}) VALUES ({marks})",  # noqa: S608
                [(*r[:10], r[10].isoformat(" "), r[11].isoformat(" ")) for r in rows],
            )
        raw.commit()
        cursor.execute("ANALYZE" if not database.is_postgres else "ANALYZE notifications")
        raw.commit()
    finally:
        raw.close()
    print(f"  seeded {count:,} notifications in {time.perf_counter() - started:.1f} s")
    return workspace_id, campaign_ids


def timed(action: Callable[[], Any]) -> float:
    """Median milliseconds of ``REPEATS`` runs (after one warm-up)."""
    action()
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def explain(database: Database, action: Callable[[Any], Any]) -> str:
    """The plan of the (last) statement ``action`` runs."""
    captured: dict[str, Any] = {}

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        captured["statement"], captured["params"] = statement, params

    event.listen(database.engine, "before_cursor_execute", capture)
    try:
        with database.session() as session:
            action(session)
    finally:
        event.remove(database.engine, "before_cursor_execute", capture)
    prefix = "EXPLAIN " if database.is_postgres else "EXPLAIN QUERY PLAN "
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(prefix + captured["statement"], captured["params"])
        lines = [" ".join(str(part) for part in row[-1:]) for row in cursor.fetchall()]
    finally:
        raw.close()
    return "\n".join("      " + line for line in lines)


def run(label: str, url: str, count: int) -> None:
    print(f"\n== {label}")
    database = Database(url)
    workspace_id, campaign_ids = seed(database, count)
    with database.session() as session:
        middle = (
            list_notifications(session, workspace_id, limit=count // 2)[-1].id
            if count <= 20_000
            else None
        )
    if middle is None:  # a cursor half-way down, picked without reading half the table
        with database.session() as session:
            rows = session.execute(
                text("SELECT id FROM notifications WHERE id < :bound ORDER BY id DESC LIMIT 1"),
                {
                    "bound": "msg_"
                    + ulid_floor(int((datetime.now(UTC) - timedelta(days=15)).timestamp() * 1000))
                },
            ).all()
            middle = rows[0].id
    cases: list[tuple[str, LogFilter, str | None]] = [
        ("first page", LogFilter(), None),
        ("page at 15 days (cursor)", LogFilter(), middle),
        ("status=failed", LogFilter(status="failed"), None),
        ("status=failed & campaign", LogFilter(status="failed", campaign_id=campaign_ids[3]), None),
        ("contact=lead-42", LogFilter(contact="lead-42"), None),
        ("test sends only (0.1%)", LogFilter(test=True), None),
        (
            "event & last 24 h",
            LogFilter(event="lead.update", since=datetime.now(UTC) - timedelta(hours=24)),
            None,
        ),
    ]

    def baseline() -> None:
        with database.session() as session:
            session.execute(text("SELECT id FROM notifications ORDER BY id DESC LIMIT 50")).all()

    base_ms = timed(baseline)
    print(f"  baseline  bare SELECT id ... ORDER BY id DESC LIMIT 50: {base_ms:7.2f} ms")
    for name, filters, before in cases:

        def page(filters: LogFilter = filters, before: str | None = before) -> None:
            with database.session() as session:
                list_notifications(session, workspace_id, filters, limit=51, before_id=before)

        ms = timed(page)
        verdict = "ok" if ms <= 50 else "OVER 50 ms"
        print(f"  {name:<28} {ms:7.2f} ms  ({ms / base_ms:5.1f}x baseline)  {verdict}")
        print(
            explain(
                database,
                lambda s, f=filters, b=before: list_notifications(
                    s, workspace_id, f, limit=51, before_id=b
                ),
            )
        )

    def stats() -> None:
        with database.session() as session:
            campaign_stats(session, workspace_id, campaign_ids[0], now=datetime.now(UTC))

    print(f"  campaign stats (24 h, one campaign): {timed(stats):7.2f} ms")
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    crypto.configure_encryption(crypto.generate_key())
    labels = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    for kind in database_kinds():
        if kind == "postgresql" and args.sqlite_only:
            continue
        with scratch_database(kind) as url:
            run(labels[kind], url, args.rows)


if __name__ == "__main__":
    main()
