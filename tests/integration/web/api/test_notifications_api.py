"""``/api/v1/notifications``: list with filters and cursor, detail, retry, cancel, bulk, stats."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from engine.campaigns.manual_retry import wait_for_background_jobs
from engine.store import channel_states
from engine.store.channel_states import ChannelPace
from engine.store.models import Notification
from engine.store.types import utcnow
from tests.conftest import ApiClient, make_workspace
from tests.integration.factories import make_campaign, make_recorded_notification

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def campaign(db, workspace):
    with db.transaction() as s:
        return make_campaign(s, workspace.id)


def _wait_for_job(api, job_id):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job = api.get(f"/notifications/jobs/{job_id}").get_json()
        if job["status"] == "done":
            wait_for_background_jobs()
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_list_filters_and_cursor(api, db, workspace, campaign):
    with db.transaction() as s:
        ids = [
            make_recorded_notification(
                s,
                campaign,
                status="failed" if i % 2 else "delivered",
                contact=f"lead-{i}",
                created_at=T0 + timedelta(minutes=i),
            ).id
            for i in range(7)
        ]
    first = api.get("/notifications?limit=3").get_json()
    assert [n["id"] for n in first["data"]] == ids[::-1][:3]
    assert first["next_cursor"]
    second = api.get(f"/notifications?limit=3&cursor={first['next_cursor']}").get_json()
    assert [n["id"] for n in second["data"]] == ids[::-1][3:6]
    failed = api.get(f"/notifications?status=failed&campaign_id={campaign.id}").get_json()
    assert [n["id"] for n in failed["data"]] == [ids[5], ids[3], ids[1]]
    assert failed["next_cursor"] is None
    ranged = api.get(
        "/notifications",
        query_string={
            "since": "2026-03-01T12:02:00Z",
            "until": "2026-03-01T12:04:00Z",
            "contact": "lead-3",
            "test": "false",
        },
    ).get_json()
    assert [n["id"] for n in ranged["data"]] == [ids[3]]
    row = ranged["data"][0]
    assert set(row) >= {
        "id",
        "campaign_id",
        "contact_external_id",
        "event_id",
        "event_name",
        "test",
        "status",
        "reason",
        "attempt_count",
        "next_attempt_at",
        "created_at",
        "delivered_at",
        "request",
        "error",
    }
    assert row["created_at"] == "2026-03-01T12:03:00.000Z"


@pytest.mark.parametrize(
    "query",
    [
        "status=lost",
        "test=maybe",
        "since=yesterday",
        "cursor=%%%",
        "limit=0",
        "since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z",
    ],
)
def test_bad_filters_are_refused_with_the_envelope(api, query):
    response = api.get(f"/notifications?{query}")
    assert response.status_code in (400, 422)
    assert set(response.get_json()["error"]) == {"code", "message", "details"}


def test_detail_has_masked_request_and_attempts(api, db, campaign):
    with db.transaction() as s:
        n = make_recorded_notification(
            s,
            campaign,
            status="failed",
            attempts=[
                {
                    "status_code": 401,
                    "duration_ms": 31,
                    "error_code": "http_status",
                    "error_message": "HTTP 401",
                    "response_headers": {"Content-Type": "text/plain"},
                    "response_body": "invalid api key",
                },
                {
                    "error_code": "timeout",
                    "error_message": "no response within 5 s",
                    "duration_ms": 5000,
                },
            ],
        )
    body = api.get(f"/notifications/{n.id}").get_json()
    assert body["request"]["headers"][1] == {"name": "Authorization", "value": "Bearer ****"}
    assert "old-token" not in str(body)
    assert [a["number"] for a in body["attempts"]] == [1, 2]
    first, second = body["attempts"]
    assert first["status_code"] == 401 and first["response_body"] == "invalid api key"
    assert first["response_headers"] == {"Content-Type": "text/plain"}
    assert first["error"] == {"code": "http_status", "message": "HTTP 401"}
    assert second["error"]["code"] == "timeout" and second["duration_ms"] == 5000


def test_other_workspace_is_404_everywhere(app, client, db, campaign):
    with db.transaction() as s:
        n = make_recorded_notification(s, campaign, status="failed")
    other = ApiClient(client, make_workspace(db, "Other", "other@acme.test"))
    assert other.get("/notifications").get_json()["data"] == []
    for method, path in [
        ("get", f"/notifications/{n.id}"),
        ("post", f"/notifications/{n.id}/retry"),
        ("post", f"/notifications/{n.id}/cancel"),
        ("get", f"/campaigns/{campaign.id}/stats"),
    ]:
        response = getattr(other, method)(path)
        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "not_found"
    job = other.post("/notifications/retry", json={}).get_json()
    assert job["count"] == 0
    assert _wait_for_job(other, job["job_id"])["done"] == 0
    with db.session() as s:
        assert s.get(Notification, n.id).status == "failed"


def test_retry_and_cancel(api, db, campaign):
    with db.transaction() as s:
        failed = make_recorded_notification(s, campaign, status="failed")
        delivered = make_recorded_notification(s, campaign, status="delivered")
        retrying = make_recorded_notification(
            s, campaign, status="retrying", next_attempt_at=utcnow()
        )
    response = api.post(f"/notifications/{failed.id}/retry")
    assert response.status_code == 200 and response.get_json()["status"] == "pending"
    assert api.post(f"/notifications/{failed.id}/retry").get_json()["status"] == "pending"
    conflict = api.post(f"/notifications/{delivered.id}/retry")
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["details"] == {"status": "delivered"}
    assert api.post(f"/notifications/{retrying.id}/cancel").get_json()["status"] == "cancelled"
    assert api.post(f"/notifications/{retrying.id}/cancel").status_code == 200
    assert api.post(f"/notifications/{delivered.id}/cancel").status_code == 409


def test_bulk_retry_runs_in_background_once(api, db, workspace, campaign):
    with db.transaction() as s:
        other_campaign = make_campaign(s, workspace.id, name="Other")
        for i in range(12):
            make_recorded_notification(
                s, campaign, status="failed", created_at=T0 + timedelta(seconds=i)
            )
        make_recorded_notification(s, other_campaign, status="failed")
    response = api.post("/notifications/retry", json={"filter": {"campaign_id": campaign.id}})
    assert response.status_code == 202
    started = response.get_json()
    assert started["count"] == 12 and started["created"] is True
    again = api.post("/notifications/retry", json={"campaign_id": campaign.id}).get_json()
    assert again["job_id"] == started["job_id"] and again["created"] is False
    job = _wait_for_job(api, started["job_id"])
    assert (job["done"], job["total"]) == (12, 12)
    listed = api.get(f"/notifications?campaign_id={campaign.id}&status=pending").get_json()
    assert len(listed["data"]) == 12
    assert len(api.get("/notifications?status=failed").get_json()["data"]) == 1
    assert api.get("/notifications/jobs/job_nope").status_code == 404
    bad = api.post("/notifications/retry", json={"filter": {"status": "lost"}})
    assert bad.status_code == 422


def test_retry_now_and_bulk_status_retrying(api, db, workspace, campaign):
    """A retrying notification can be retried now; a bulk retry filtered on ``retrying``
    moves only those, and the job says where they are; attempts carry their request."""
    with db.transaction() as s:
        waiting = [
            make_recorded_notification(
                s,
                campaign,
                status="retrying",
                next_attempt_at=utcnow() + timedelta(hours=6),
                created_at=T0 + timedelta(seconds=i),
                attempts=[{"status_code": 401}],
            ).id
            for i in range(3)
        ]
        failed = make_recorded_notification(s, campaign, status="failed").id
    one = api.post(f"/notifications/{waiting[0]}/retry")
    assert one.status_code == 200 and one.get_json()["status"] == "pending"
    detail = api.get(f"/notifications/{waiting[0]}").get_json()
    assert detail["attempts"][0]["request"]["url"] == detail["request"]["url"]
    started = api.post("/notifications/retry", json={"status": "retrying"}).get_json()
    assert started["count"] == 2
    job = _wait_for_job(api, started["job_id"])
    assert job["outcomes"] == {"pending": 2}
    statuses = {n["id"]: n["status"] for n in api.get("/notifications").get_json()["data"]}
    assert [statuses[i] for i in waiting] == ["pending"] * 3 and statuses[failed] == "failed"


def test_campaign_stats_json(api, db, campaign):
    now = utcnow()
    with db.transaction() as s:
        make_recorded_notification(
            s,
            campaign,
            status="delivered",
            created_at=now,
            attempts=[{"status_code": 200, "duration_ms": 42, "started_at": now}],
        )
        make_recorded_notification(s, campaign, status="failed", created_at=now)
    stats = api.get(f"/campaigns/{campaign.id}/stats").get_json()
    assert stats["window"] == "24h" and len(stats["buckets"]) == 24
    assert stats["totals"] == {"delivered": 1, "failed": 1, "retrying": 0}
    assert stats["latency_ms"] == {"p50": 42, "p90": 42, "p99": 42}
    week = api.get(f"/campaigns/{campaign.id}/stats?window=7d").get_json()
    assert len(week["buckets"]) == 7 and week["buckets"][-1]["delivered"] == 1
    assert api.get(f"/campaigns/{campaign.id}/stats?window=1y").status_code == 400


@pytest.mark.parametrize(
    ("pace", "reason", "words"),
    [
        (
            {"paused_until": True, "pause_reason": "retry_after", "throttles": 1},
            "retry_after",
            "429",
        ),
        ({"rate_next_at": True}, "rate_limit", "next free send slot"),
        ({"paused_until": True, "pause_reason": "breaker", "stalls": 3}, "breaker", "probe"),
    ],
)
def test_detail_says_why_a_due_notification_waits(api, db, campaign, pace, reason, words):
    """A due notification its channel holds back: why, until when, in words (SPEC §9)."""
    now = utcnow()
    until = (now + timedelta(seconds=90)).replace(microsecond=0)
    state = ChannelPace(**{k: until if v is True else v for k, v in pace.items()})
    with db.transaction() as s:
        due = make_recorded_notification(
            s, campaign, status="pending", next_attempt_at=now - timedelta(seconds=1)
        )
        channel_states.save(s, [(campaign.id, state)], now)
    waiting = api.get(f"/notifications/{due.id}").get_json()["waiting"]
    assert set(waiting) == {"reason", "until", "message"}
    assert waiting["reason"] == reason
    assert waiting["until"] == until.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert words in waiting["message"]
    assert until.strftime("%H:%M:%S UTC") in waiting["message"]
    # The list does not carry it: the detail does, with one more query.
    listed = api.get(f"/notifications?campaign_id={campaign.id}").get_json()["data"][0]
    assert "waiting" not in listed


def test_waiting_is_null_unless_due_and_held_back(api, db, campaign):
    now = utcnow()
    pause = ChannelPace(paused_until=now + timedelta(minutes=5), pause_reason="retry_after")
    with db.transaction() as s:
        later = make_recorded_notification(
            s, campaign, status="retrying", next_attempt_at=now + timedelta(minutes=1)
        )
        done = make_recorded_notification(s, campaign, status="delivered")
        channel_states.save(s, [(campaign.id, pause)], now)
        other = make_campaign(s, campaign.workspace_id, name="Unpaced")
        free = make_recorded_notification(
            s, other, status="pending", next_attempt_at=now - timedelta(seconds=1)
        )
        ended = make_campaign(s, campaign.workspace_id, name="Pause over")
        resumed = make_recorded_notification(
            s, ended, status="retrying", next_attempt_at=now - timedelta(seconds=1)
        )
        past = now - timedelta(seconds=5)
        channel_states.save(
            s, [(ended.id, ChannelPace(paused_until=past, pause_reason="retry_after"))], now
        )
    for notification in (later, done, free, resumed):
        body = api.get(f"/notifications/{notification.id}").get_json()
        assert "waiting" in body and body["waiting"] is None, notification.status
