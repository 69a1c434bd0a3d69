"""Chart numbers: hourly/daily counts by outcome and nearest-rank latency percentiles in SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.store.log_stats import campaign_stats
from tests.integration.factories import make_campaign, make_recorded_notification

NOW = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)


def test_hourly_counts_and_percentiles(db, workspace):
    with db.transaction() as s:
        c = make_campaign(s, workspace.id)
        other = make_campaign(s, workspace.id, name="Other")
        two_hours_ago = NOW - timedelta(hours=2)  # the 10:00 bucket
        for ms in range(1, 101):  # 100 delivered, durations 1..100 ms
            make_recorded_notification(
                s,
                c,
                status="delivered",
                created_at=two_hours_ago,
                attempts=[{"status_code": 200, "duration_ms": ms, "started_at": two_hours_ago}],
            )
        for _ in range(3):
            make_recorded_notification(s, c, status="failed", created_at=NOW - timedelta(minutes=5))
        make_recorded_notification(s, c, status="retrying", created_at=NOW - timedelta(minutes=5))
        make_recorded_notification(s, c, status="pending", created_at=NOW - timedelta(minutes=5))
        make_recorded_notification(s, c, status="delivered", created_at=NOW - timedelta(days=2))
        make_recorded_notification(s, c, status="delivered", created_at=NOW, test=True)
        make_recorded_notification(s, other, status="failed", created_at=NOW)
    with db.session() as s:
        stats = campaign_stats(s, workspace.id, c.id, now=NOW, window="24h")
    assert len(stats.buckets) == 24 and stats.bucket_seconds == 3600
    assert stats.buckets[-1].start == datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert stats.start == datetime(2026, 3, 1, 13, tzinfo=UTC)
    ten = stats.buckets[-3]
    assert (ten.start.hour, ten.delivered, ten.failed) == (10, 100, 0)
    assert (ten.p50, ten.p90, ten.p99) == (50, 90, 99)
    last = stats.buckets[-1]
    assert (last.delivered, last.failed, last.retrying) == (0, 3, 1)
    assert last.p50 is None
    assert stats.totals == {"delivered": 100, "failed": 3, "retrying": 1}
    assert stats.latency == {"p50": 50, "p90": 90, "p99": 99}
    data = stats.as_dict()
    assert data["buckets"][-3]["latency_ms"] == {"p50": 50, "p90": 90, "p99": 99}


def test_daily_window(db, workspace):
    with db.transaction() as s:
        c = make_campaign(s, workspace.id)
        for days in (0, 2, 2, 6, 8):
            make_recorded_notification(
                s,
                c,
                status="delivered",
                created_at=NOW - timedelta(days=days),
                attempts=[
                    {
                        "status_code": 200,
                        "duration_ms": 10 * (days + 1),
                        "started_at": NOW - timedelta(days=days),
                    }
                ],
            )
    with db.session() as s:
        stats = campaign_stats(s, workspace.id, c.id, now=NOW, window="7d")
    assert len(stats.buckets) == 7
    assert [b.delivered for b in stats.buckets] == [1, 0, 0, 0, 2, 0, 1]
    assert stats.buckets[4].p50 == 30
    assert stats.latency["p99"] == 70
