"""Delivery numbers for a campaign's charts, computed in SQL on SQLite and PostgreSQL.

Counts: notifications created in each bucket (an hour, or a day) by outcome so far —
delivered, failed, retrying. Latency: nearest-rank p50/p90/p99 of ``attempts.duration_ms``
per bucket and over the whole window, with window functions both databases share.
Test sends are left out. The notification scan is an id range on the
``(workspace_id, campaign_id, id)`` index (ids are ULIDs, so time is an id bound).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, case, cast, func, literal, select
from sqlalchemy.orm import Session

from engine.store.log import id_floor
from engine.store.models import Attempt, Notification

COUNTED_STATUSES = ("delivered", "failed", "retrying")
PERCENTILES = (50, 90, 99)
WINDOWS = {"24h": (timedelta(hours=24), 3600), "7d": (timedelta(days=7), 86400)}


@dataclass
class StatsBucket:
    start: datetime
    delivered: int = 0
    failed: int = 0
    retrying: int = 0
    p50: int | None = None
    p90: int | None = None
    p99: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "delivered": self.delivered,
            "failed": self.failed,
            "retrying": self.retrying,
            "latency_ms": {"p50": self.p50, "p90": self.p90, "p99": self.p99},
        }


@dataclass
class CampaignStats:
    window: str
    bucket_seconds: int
    start: datetime
    end: datetime
    buckets: list[StatsBucket] = field(default_factory=list)
    latency: dict[str, int | None] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        return {name: sum(getattr(b, name) for b in self.buckets) for name in COUNTED_STATUSES}

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "bucket_seconds": self.bucket_seconds,
            "start": self.start,
            "end": self.end,
            "totals": self.totals,
            "latency_ms": self.latency,
            "buckets": [bucket.as_dict() for bucket in self.buckets],
        }


def _bucket_index(session: Session, column: Any, seconds: int) -> Any:
    """Whole ``seconds``-long periods since the Unix epoch, for a naive-UTC datetime column.

    Integer division on both databases: SQLAlchemy renders ``/`` as true division, which
    would make every second its own bucket.
    """
    if session.get_bind().dialect.name == "postgresql":
        epoch = cast(func.floor(func.extract("epoch", column)), BigInteger)
    else:
        epoch = cast(func.strftime("%s", column), Integer)
    return epoch // literal(seconds, BigInteger)


def _percentile_query(session: Session, base: Any) -> Any:
    """Nearest-rank percentiles per ``bucket`` over a subquery of ``(bucket, ms)`` rows."""
    ranked = select(
        base.c.bucket,
        base.c.ms,
        func.row_number().over(partition_by=base.c.bucket, order_by=base.c.ms).label("rn"),
        func.count().over(partition_by=base.c.bucket).label("n"),
    ).subquery()
    # rank >= ceil(p * n)  <=>  rank * 100 >= p * n, in whole numbers on both databases
    columns = [
        func.min(case((ranked.c.rn * 100 >= ranked.c.n * p, ranked.c.ms))).label(f"p{p}")
        for p in PERCENTILES
    ]
    return select(ranked.c.bucket, *columns).group_by(ranked.c.bucket)


def campaign_stats(
    session: Session,
    workspace_id: str,
    campaign_id: str,
    *,
    now: datetime,
    window: str = "24h",
) -> CampaignStats:
    """Per-bucket counts and latency percentiles for the last 24 h (hourly) or 7 d (daily)."""
    span, seconds = WINDOWS[window]
    now = now.astimezone(UTC)
    end_index = int(now.timestamp()) // seconds
    count = int(span.total_seconds()) // seconds
    first_index = end_index - count + 1
    start = datetime.fromtimestamp(first_index * seconds, UTC)
    buckets = {
        first_index + i: StatsBucket(start=start + timedelta(seconds=i * seconds))
        for i in range(count)
    }
    scope = (
        Notification.workspace_id == workspace_id,
        Notification.campaign_id == campaign_id,
        Notification.id >= id_floor(start),
        Notification.test.is_(False),
    )

    bucket = _bucket_index(session, Notification.created_at, seconds).label("bucket")
    rows = session.execute(
        select(bucket, Notification.status, func.count())
        .where(*scope, Notification.status.in_(COUNTED_STATUSES))
        .group_by(bucket, Notification.status)
    )
    for index, status, number in rows:
        target = buckets.get(int(index))
        if target is not None:  # one row per bucket and status; added all the same
            setattr(target, status, getattr(target, status) + int(number))

    attempts = (
        select(Attempt.started_at, Attempt.duration_ms.label("ms"))
        .join(Notification, Notification.id == Attempt.notification_id)
        .where(*scope, Attempt.duration_ms.is_not(None), Attempt.started_at >= start)
        .subquery()
    )
    per_bucket = select(
        _bucket_index(session, attempts.c.started_at, seconds).label("bucket"), attempts.c.ms
    ).subquery()
    for index, *values in session.execute(_percentile_query(session, per_bucket)):
        target = buckets.get(int(index))
        if target is not None:
            target.p50, target.p90, target.p99 = (_int(v) for v in values)

    overall = select(literal(0).label("bucket"), attempts.c.ms).subquery()
    latency: dict[str, int | None] = {f"p{p}": None for p in PERCENTILES}
    for _, *values in session.execute(_percentile_query(session, overall)):
        latency = {f"p{p}": _int(v) for p, v in zip(PERCENTILES, values, strict=True)}

    return CampaignStats(
        window=window,
        bucket_seconds=seconds,
        start=start,
        end=start + timedelta(seconds=count * seconds),
        buckets=[buckets[i] for i in sorted(buckets)],
        latency=latency,
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
