"""The log pages: table and filters, the detail sheet per error, actions by role, bulk retry,
alerts in the navigation, campaign health with re-enable and charts."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from engine.campaigns.manual_retry import wait_for_background_jobs
from engine.store import accounts, channel_states
from engine.store.channel_states import ChannelPace
from engine.store.models import Alert, Campaign, Notification
from engine.store.types import utcnow
from tests.conftest import TEST_PASSWORD, csrf_token, login, make_workspace
from tests.integration.factories import (
    make_campaign,
    make_contact,
    make_event,
    make_recorded_notification,
)
from web.auth import hash_password

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_campaign_in(db, workspace_id):
    with db.transaction() as s:
        return make_campaign(s, workspace_id, name="Quiet").id


def add_member(db, workspace, email, role):
    with db.transaction() as s:
        user = accounts.create_user(s, email=email, password_hash=hash_password(TEST_PASSWORD))
        accounts.set_membership(s, user_id=user.id, workspace_id=workspace.id, role=role)


@pytest.fixture
def campaign(db, workspace):
    with db.transaction() as s:
        return make_campaign(s, workspace.id, name="Lead <sync>")


def text(response):
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_table_filters_and_older_link(logged_in, db, campaign):
    with db.transaction() as s:
        ids = [
            make_recorded_notification(
                s,
                campaign,
                status="failed" if i % 2 else "delivered",
                contact=f"lead-{i}",
                created_at=T0 + timedelta(seconds=i),
            ).id
            for i in range(55)
        ]
    page = text(logged_in.get("/notifications"))
    assert page.count('<tr data-id="') == 50
    assert "Lead &lt;sync&gt;" in page and "Lead <sync>" not in page
    older = re.search(r'href="([^"]+)">Older</a>', page).group(1).replace("&amp;", "&")
    second = text(logged_in.get(older))
    assert second.count('<tr data-id="') == 5 and ids[0] in second
    newer = re.search(r'href="([^"]+)">Newer</a>', second).group(1).replace("&amp;", "&")
    back = text(logged_in.get(newer))  # the newest page again: a full one, no "Newer"
    assert re.findall(r'<tr data-id="([^"]+)"', back) == ids[:4:-1]
    assert ">Newer</a>" not in back and ">Older</a>" in back
    past_the_end = text(logged_in.get(f"/notifications?before={ids[0]}"))
    assert "No older notifications match." in past_the_end
    assert 'href="/notifications">Newest</a>' in past_the_end  # not a dead end
    filtered = text(
        logged_in.get(
            f"/notifications?status=failed&contact=lead-3&test=false&campaign_id={campaign.id}"
        )
    )
    assert re.findall(r'<tr data-id="([^"]+)"', filtered) == [ids[3]]
    assert 'value="lead-3"' in filtered  # the filters stay in the form
    bad = text(logged_in.get("/notifications?status=lost"))
    assert "filter ignored" in bad


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        (
            {"status_code": 401, "error_code": "http_status", "response_body": "invalid api key"},
            [
                "HTTP 401",
                "the receiver refused the credentials",
                "check the auth settings of this campaign",
                "invalid api key",
            ],
        ),
        (
            {"error_code": "ssrf_blocked", "error_message": "10.0.0.5 is private"},
            ["this address is on a private network", "10.0.0.5 is private"],
        ),
        ({"error_code": "timeout"}, ["the receiver did not answer in time"]),
        ({"error_code": "connection_error"}, ["the connection to the receiver failed"]),
        ({"error_code": "dns_error"}, ["host name could not be found"]),
        ({"error_code": "tls_error"}, ["secure (HTTPS) connection"]),
        (
            {"error_code": "render_error", "error_message": "url: contact.plan is missing"},
            ["could not be built", "contact.plan is missing"],
        ),
        ({"error_code": "response_too_large"}, ["answer was too large"]),
        ({"status_code": 500, "error_code": "http_status"}, ["internal error (500)"]),
        ({"status_code": 302, "error_code": "http_status"}, ["redirects are not followed"]),
        ({"status_code": 429, "error_code": "http_status"}, ["rate limiting"]),
        ({"status_code": 410, "error_code": "http_status"}, ["gone for good"]),
    ],
)
def test_detail_explains_each_error(logged_in, db, campaign, attempt, expected):
    with db.transaction() as s:
        n = make_recorded_notification(s, campaign, status="failed", attempts=[dict(attempt)])
    page = text(logged_in.get(f"/notifications/{n.id}"))
    for fragment in expected:
        assert fragment in page, fragment
    assert "Bearer ****" in page and "old-token" not in page
    assert "&#34;event&#34;: &#34;lead.create&#34;" in page  # the body, pretty-printed


def test_detail_bodies_not_logged_truncated_next_retry_and_reasons(logged_in, db, workspace):
    with db.transaction() as s:
        quiet = make_campaign(s, workspace.id, channel_overrides={"log_response_body": False})
        loud = make_campaign(s, workspace.id)
        a = make_recorded_notification(
            s,
            quiet,
            status="retrying",
            next_attempt_at=T0,
            attempts=[{"status_code": 503, "error_code": "http_status"}],
        )
        b = make_recorded_notification(
            s,
            loud,
            status="delivered",
            attempts=[
                {
                    "status_code": 200,
                    "response_body": "x" * 100,
                    "response_truncated": True,
                    "response_headers": {"X-Trace": "abc"},
                }
            ],
        )
        held = make_recorded_notification(s, loud, status="held", reason="webhook_disabled")
        skipped = make_recorded_notification(s, loud, status="skipped", reason="frequency_capped")
    page_a = text(logged_in.get(f"/notifications/{a.id}"))
    assert "not logged" in page_a and "Next retry" in page_a and "2026-03-01 12:00:00" in page_a
    page_b = text(logged_in.get(f"/notifications/{b.id}"))
    assert "truncated at 64 KiB" in page_b and "X-Trace" in page_b
    assert "re-enable it on the campaign" in text(logged_in.get(f"/notifications/{held.id}"))
    assert "frequency cap" in text(logged_in.get(f"/notifications/{skipped.id}"))


def test_other_workspace_pages_are_404(client, db, campaign):
    with db.transaction() as s:
        n = make_recorded_notification(s, campaign, status="failed")
    other = make_workspace(db, "Other", "other@acme.test")
    login(client, other.owner_email)
    assert client.get(f"/notifications/{n.id}").status_code == 404
    assert client.get(f"/campaigns/{campaign.id}/health").status_code == 404
    token = csrf_token(client, "/notifications")
    assert (
        client.post(f"/notifications/{n.id}/retry", data={"csrf_token": token}).status_code == 404
    )
    assert n.id not in text(client.get("/notifications"))


def test_retry_and_cancel_need_editor_and_csrf(client, db, workspace, campaign):
    with db.transaction() as s:
        n = make_recorded_notification(s, campaign, status="failed")
    add_member(db, workspace, "viewer@acme.test", "viewer")
    login(client, "viewer@acme.test")
    page = text(client.get(f"/notifications/{n.id}"))
    assert "Retry now" not in page
    token = csrf_token(client, "/notifications")
    assert (
        client.post(f"/notifications/{n.id}/retry", data={"csrf_token": token}).status_code == 403
    )
    assert client.post("/notifications/bulk-retry", data={"csrf_token": token}).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    add_member(db, workspace, "editor@acme.test", "editor")
    login(client, "editor@acme.test")
    assert client.post(f"/notifications/{n.id}/retry").status_code == 400  # no CSRF token
    token = csrf_token(client, f"/notifications/{n.id}")
    response = client.post(
        f"/notifications/{n.id}/retry", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Queued for sending now." in text(response)
    response = client.post(
        f"/notifications/{n.id}/cancel", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Retrying stopped" in text(response)
    with db.session() as s:
        assert s.get(Notification, n.id).status == "cancelled"


def test_bulk_retry_confirm_progress_and_twice(logged_in, db, workspace, campaign):
    with db.transaction() as s:
        for i in range(4):
            make_recorded_notification(
                s, campaign, status="failed", created_at=T0 + timedelta(seconds=i)
            )
        make_recorded_notification(s, campaign, status="delivered")
    confirm = text(logged_in.get(f"/notifications/bulk-retry?campaign_id={campaign.id}"))
    assert "<strong>4 notifications</strong> match these filters: 4 failed." in confirm
    assert confirm.count('<tr data-id="msg_') == 4
    token = csrf_token(logged_in, "/notifications")
    first = logged_in.post(
        "/notifications/bulk-retry", data={"csrf_token": token, "campaign_id": campaign.id}
    )
    assert first.status_code == 302
    job_url = first.headers["Location"]
    second = logged_in.post(
        "/notifications/bulk-retry", data={"csrf_token": token, "campaign_id": campaign.id}
    )
    assert second.headers["Location"] == job_url
    deadline = time.monotonic() + 20
    while logged_in.get(job_url + ".json").get_json()["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    wait_for_background_jobs()
    assert logged_in.get(job_url + ".json").get_json()["done"] == 4
    assert 'id="bulk-progress"' in text(logged_in.get(job_url))
    with db.session() as s:
        from sqlalchemy import func, select

        assert (
            s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.status == "pending")
            )
            == 4
        )


def test_fix_and_retry_a_retrying_notification_from_its_detail(logged_in, db, workspace):
    """Retry now and Stop retrying on a retrying notification; a link to the editor; after
    the retry, the earlier attempt still shows the request it sent."""
    with db.transaction() as s:
        c = make_campaign(s, workspace.id, url="http://127.0.0.1:9/typo")
        contact = make_contact(s, workspace.id)
        event = make_event(s, workspace.id, contact)
        n = make_recorded_notification(
            s,
            c,
            status="retrying",
            contact=contact,
            event=event,
            next_attempt_at=utcnow() + timedelta(hours=6),
            attempts=[{"status_code": 404, "error_code": "http_status"}],
        )
    page = text(logged_in.get(f"/notifications/{n.id}"))
    assert 'id="retry-now"' in page and ">Stop retrying</button>" in page
    assert f'href="/campaigns/{c.id}"' in page
    with db.transaction() as s:
        campaign = s.get(Campaign, c.id)
        campaign.channel = {**campaign.channel, "url": "http://127.0.0.1:9/fixed"}
    token = csrf_token(logged_in, f"/notifications/{n.id}")
    page = text(
        logged_in.post(
            f"/notifications/{n.id}/retry", data={"csrf_token": token}, follow_redirects=True
        )
    )
    assert "Queued for sending now." in page
    assert "http://127.0.0.1:9/fixed" in page  # the request now
    attempt = page[page.index('id="attempt-1"') :]
    assert "before the recipe changed" in attempt and "http://127.0.0.1:9/typo" in attempt


def test_bulk_retry_covers_retrying_and_the_job_says_how_they_ended(logged_in, db, workspace):
    with db.transaction() as s:
        c = make_campaign(s, workspace.id)
        for i, status in enumerate(["retrying", "failed", "cancelled"]):
            make_recorded_notification(s, c, status=status, created_at=T0 + timedelta(seconds=i))
    confirm = text(logged_in.get("/notifications/bulk-retry"))
    assert "<strong>2 notifications</strong> match these filters: 1 failed, 1 retrying." in confirm
    assert confirm.count('<tr data-id="msg_') == 2 and "Retry 2 notifications" in confirm
    one = text(logged_in.get("/notifications/bulk-retry?status=cancelled"))
    assert "<strong>1 notification</strong> matches these filters." in one
    assert "Retry 1 notification<" in one
    none = text(logged_in.get("/notifications/bulk-retry?status=held"))
    assert "Only failed, retrying or cancelled notifications can be retried" in none
    assert 'id="bulk-confirm"' not in none
    token = csrf_token(logged_in, "/notifications")
    job_url = logged_in.post(
        "/notifications/bulk-retry", data={"csrf_token": token, "status": "retrying"}
    ).headers["Location"]
    deadline = time.monotonic() + 20
    while logged_in.get(job_url + ".json").get_json()["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    wait_for_background_jobs()
    with db.transaction() as s:  # the worker's turn: it got through
        for row in s.query(Notification).filter_by(status="pending"):
            row.status = "delivered"
    job = logged_in.get(job_url + ".json").get_json()
    assert job["outcomes"] == {"delivered": 1} and job["settled"] is True
    assert "Since the retry: 1 delivered." in text(logged_in.get(job_url))
    log = text(logged_in.get("/notifications"))
    recent = log[log.index('data-testid="recent-retries"') :].split("</section>")[0]
    assert "all campaigns · retrying · 1 retried" in recent
    assert "Since the retry: 1 delivered." in recent


def test_alerts_in_nav_for_owners_until_acknowledged(client, db, workspace, campaign):
    with db.transaction() as s:
        s.add(
            Alert(
                workspace_id=workspace.id,
                campaign_id=campaign.id,
                kind="failures_5",
                message="5 consecutive failures",
                consecutive_failures=5,
            )
        )
    add_member(db, workspace, "viewer@acme.test", "viewer")
    login(client, "viewer@acme.test")
    assert 'id="nav-alerts"' not in text(client.get("/notifications"))
    client.post("/logout", data={"csrf_token": csrf_token(client, "/notifications")})
    login(client, workspace.owner_email)
    page = text(client.get("/notifications"))
    assert 'id="nav-alerts"' in page
    alerts = text(client.get("/alerts"))
    assert "5 consecutive failures" in alerts and "5 failures in a row</span>" in alerts
    assert "failures_5" not in alerts
    client.post("/alerts/acknowledge", data={"csrf_token": csrf_token(client, "/alerts")})
    assert 'id="nav-alerts"' not in text(client.get("/notifications"))


def test_health_page_charts_and_reenable(logged_in, db, workspace):
    now = utcnow()
    with db.transaction() as s:
        c = make_campaign(
            s,
            workspace.id,
            webhook_disabled=True,
            consecutive_failures=20,
            disabled_reason="20 consecutive failures",
            disabled_at=now,
        )
        make_recorded_notification(
            s,
            c,
            status="delivered",
            created_at=now,
            attempts=[{"status_code": 200, "duration_ms": 40, "started_at": now}],
        )
        held = make_recorded_notification(s, c, status="held", reason="webhook_disabled")
    page = text(logged_in.get(f"/campaigns/{c.id}/health"))
    assert "disabled" in page and "<strong>20</strong> consecutive" in page
    assert page.count("<svg") == 4 and "p50 40 ms" in page
    quiet = make_campaign_in(db, workspace.id)
    assert "response time: no deliveries yet" in text(logged_in.get(f"/campaigns/{quiet}/health"))
    token = csrf_token(logged_in, f"/campaigns/{c.id}/health")
    response = logged_in.post(
        f"/campaigns/{c.id}/health/enable", data={"csrf_token": token}, follow_redirects=True
    )
    assert "1 held notification released" in text(response)
    with db.session() as s:
        assert s.get(Notification, held.id).status == "pending"
        assert s.get(Campaign, c.id).webhook_disabled is False


def test_detail_and_list_say_why_a_due_notification_waits(logged_in, db, workspace):
    now = utcnow()
    resume = (now + timedelta(minutes=2)).replace(microsecond=0)
    slot = (now + timedelta(seconds=20)).replace(microsecond=0)
    with db.transaction() as s:
        throttled = make_campaign(s, workspace.id, name="Throttled")
        paced = make_campaign(s, workspace.id, name="Paced")
        calm = make_campaign(s, workspace.id, name="Calm")
        due = now - timedelta(seconds=1)
        told_429 = make_recorded_notification(s, throttled, status="retrying", next_attempt_at=due)
        limited = make_recorded_notification(s, paced, status="pending", next_attempt_at=due)
        free = make_recorded_notification(s, calm, status="pending", next_attempt_at=due)
        channel_states.save(
            s,
            [
                (throttled.id, ChannelPace(paused_until=resume, pause_reason="retry_after")),
                (paced.id, ChannelPace(rate_next_at=slot)),
            ],
            now,
        )
    page = text(logged_in.get(f"/notifications/{told_429.id}"))
    assert 'id="waiting"' in page
    assert "the endpoint answered 429 (too many requests)" in page
    assert f"sends to it resume at {_clock(resume, now)}" in page
    page = text(logged_in.get(f"/notifications/{limited.id}"))
    assert "rate limit — the channel&#39;s next free send slot is at " + _clock(slot, now) in page
    assert "never fail or use up an attempt" in page
    assert 'id="waiting"' not in text(logged_in.get(f"/notifications/{free.id}"))

    listing = text(logged_in.get("/notifications"))
    rows = dict(re.findall(r'<tr data-id="([^"]+)">(.*?)</tr>', listing, re.S))
    assert ">waiting</span>" in rows[told_429.id] and ">waiting</span>" in rows[limited.id]
    assert ">waiting</span>" not in rows[free.id]


def _clock(moment, now):
    """How the page writes a time: the clock alone on today's date, else with the date."""
    same_day = moment.date() == now.date()
    return moment.strftime("%H:%M:%S UTC" if same_day else "%Y-%m-%d %H:%M:%S UTC")
