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


def test_counts_add_up_over_seconds_and_across_an_hour_boundary(db, workspace):
    """Deliveries seconds apart land in their hour and are added, not overwritten."""
    boundary = datetime(2026, 3, 2, 11, tzinfo=UTC)
    with db.transaction() as s:
        c = make_campaign(s, workspace.id)
        for offset in range(-4, 3):  # 10:59:56 … 11:00:02, one a second
            moment = boundary + timedelta(seconds=offset, milliseconds=250)
            make_recorded_notification(
                s,
                c,
                status="delivered" if offset % 2 == 0 else "failed",
                created_at=moment,
                attempts=[{"status_code": 200, "duration_ms": 10 + offset, "started_at": moment}],
            )
        for minutes in (1, 17, 59):  # more in the 10:00 hour, minutes apart
            make_recorded_notification(
                s, c, status="delivered", created_at=boundary - timedelta(minutes=minutes)
            )
    with db.session() as s:
        hourly = campaign_stats(s, workspace.id, c.id, now=NOW, window="24h")
        daily = campaign_stats(s, workspace.id, c.id, now=NOW, window="7d")
    by_hour = {b.start.hour: b for b in hourly.buckets}
    # 10:59:56, :58 delivered; :57, :59 failed; plus three more delivered in the hour
    assert (by_hour[10].delivered, by_hour[10].failed) == (2 + 3, 2)
    # 11:00:00, :02 delivered; :01 failed
    assert (by_hour[11].delivered, by_hour[11].failed) == (2, 1)
    assert (by_hour[10].p50, by_hour[10].p99) == (7, 9)  # durations 6, 7, 8, 9
    assert (by_hour[11].p50, by_hour[11].p99) == (11, 12)  # durations 10, 11, 12
    assert hourly.totals == {"delivered": 7, "failed": 3, "retrying": 0}
    assert daily.totals == hourly.totals and daily.buckets[-1].delivered == 7
    assert daily.buckets[-1].p50 == 9
