"""Prometheus metrics: counters the engine bumps as it works, gauges read at scrape time.

Counters are bumped where the engine already works in batches (an ingested batch after
its commit, a worker's settled attempts after each settling transaction), never per send
on a sender thread. Labels stay bounded: an outcome, never a contact, notification,
campaign or workspace id.

Several processes (``hookcast worker --processes N``, ``hookcast web --workers N``) use
prometheus_client's multiprocess mode: each process writes its counters to files in
``PROMETHEUS_MULTIPROC_DIR`` and a scrape of any of them adds them up. The directory must
be set before this module is first imported (``web.cli`` does that for the commands that
fork).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from engine.store import Database, outbox_stats
from engine.store.claims import AttemptRecord
from engine.store.types import utcnow

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
OUTCOMES = ("delivered", "failed", "retrying")

EVENTS_INGESTED = Counter(
    "hookcast_events_ingested",
    "Events accepted and stored (a repeated client id is not counted again).",
)
DELIVERIES = Counter(
    "hookcast_deliveries",
    "Finished delivery attempts by outcome: delivered (2xx), failed (no attempt left, "
    "or not retried) or retrying (another attempt is scheduled, or held by a disabled "
    "endpoint).",
    ["outcome"],
)
for _outcome in OUTCOMES:
    DELIVERIES.labels(_outcome)
ATTEMPT_DURATION = Histogram(
    "hookcast_attempt_duration_seconds",
    "How long delivery attempts took, from connecting to the response's headers.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def count_ingested(events: int) -> None:
    if events:
        EVENTS_INGESTED.inc(events)


def count_settled(records: Sequence[AttemptRecord], stale: Iterable[str] = ()) -> None:
    """Count a batch of settled attempts (those settled too late, ``stale``, are not)."""
    skip = set(stale)
    counts = dict.fromkeys(OUTCOMES, 0)
    for record in records:
        if record.claimed.id in skip:
            continue
        if record.delivered:
            counts["delivered"] += 1
        elif record.retry_at is None:
            counts["failed"] += 1
        else:
            counts["retrying"] += 1
        if record.duration_ms is not None:
            ATTEMPT_DURATION.observe(record.duration_ms / 1000)
    for outcome, count in counts.items():
        if count:
            DELIVERIES.labels(outcome).inc(count)


class DatabaseGauges:
    """Gauges read from the database at each scrape (every process sees the same)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def describe(self) -> list[Metric]:
        return list(self._families(None, None, None))

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        try:
            with self.database.session() as session:
                backlog = outbox_stats.outbox_backlog(session, now)
                disabled = outbox_stats.disabled_endpoints(session)
        except SQLAlchemyError as exc:
            logger.warning("metrics: the database did not answer (%s)", _first_line(exc))
            yield _gauge("hookcast_database_up", "Whether the database answered this scrape.", 0)
            return
        age = (now - backlog.oldest_due_at).total_seconds() if backlog.oldest_due_at else 0.0
        yield _gauge("hookcast_database_up", "Whether the database answered this scrape.", 1)
        yield from self._families(backlog.due, max(age, 0.0), disabled)

    @staticmethod
    def _families(due: int | None, age: float | None, disabled: int | None) -> Iterator[Metric]:
        yield _gauge(
            "hookcast_outbox_due",
            "Notifications due now and not yet being sent (pending, retrying, or leased by "
            "a worker that stopped).",
            due,
        )
        yield _gauge(
            "hookcast_outbox_oldest_due_age_seconds",
            "How long the earliest due notification has been waiting (0 when none is due).",
            age,
        )
        yield _gauge(
            "hookcast_endpoints_disabled",
            "Campaigns whose webhook is disabled after repeated failures (or a 410).",
            disabled,
        )


def _gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
    if value is None:
        return GaugeMetricFamily(name, documentation)
    return GaugeMetricFamily(name, documentation, value=value)


def _first_line(exc: BaseException) -> str:
    return (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0]


class _ThisProcess:
    """This process's own metrics (the default registry: counters, process, platform)."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()


def scrape_registry(database: Database) -> CollectorRegistry:
    """What ``/metrics`` answers: the counters of every process sharing the multiprocess
    directory (or of this process alone), and the database gauges."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseGauges(database))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    """Forget a stopped process's live gauges (its counters are kept in the sum)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
