"""The log's store: filters, keyset pagination (stable while rows arrive), actions, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from engine.campaigns.manual_retry import retry_notification, run_bulk_retry
from engine.netguard import parse_networks
from engine.store import Database, log_bulk
from engine.store import log as log_store
from engine.store.log import LogActionError, LogFilter
from engine.store.models import Attempt, BulkJob, Campaign, Notification
from engine.store.types import utcnow
from engine.templating.request import RenderSettings
from tests.conftest import make_workspace
from tests.integration.factories import (
    make_campaign,
    make_contact,
    make_event,
    make_recorded_notification,
)

SETTINGS = RenderSettings(require_https=False, allowed_networks=parse_networks("127.0.0.0/8"))
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def seeded(db: Database, workspace):
    """Two campaigns with a spread of statuses, contacts, events and times; and a stranger."""
    other = make_workspace(db, "Other", "other@acme.test")
    with db.transaction() as s:
        a = make_campaign(s, workspace.id, name="A")
        b = make_campaign(s, workspace.id, name="B")
        rows = []
        for i in range(30):
            rows.append(
                make_recorded_notification(
                    s,
                    a if i % 2 else b,
                    status=("delivered", "failed", "retrying")[i % 3],
                    contact=f"lead-{i % 5}",
                    event="lead.create" if i % 4 else "lead.update",
                    test=(i == 7),
                    created_at=T0 + timedelta(minutes=i),
                )
            )
        oc = make_campaign(s, other.id, name="Theirs")
        make_recorded_notification(s, oc, status="failed", created_at=T0 + timedelta(minutes=3))
    return {"a": a.id, "b": b.id, "ids": [r.id for r in rows], "other": other}


def _ids(db, workspace_id, filters=None, **kw):
    with db.session() as s:
        rows = log_store.list_notifications(s, workspace_id, filters or LogFilter(), **kw)
        return [n.id for n in rows]


def test_newest_first_and_isolated(db, workspace, seeded):
    ids = _ids(db, workspace.id, limit=100)
    assert ids == list(reversed(seeded["ids"]))


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (lambda s: LogFilter(campaign_id=s["a"]), lambda i: i % 2 == 1),
        (lambda s: LogFilter(status="failed"), lambda i: i % 3 == 1),
        (lambda s: LogFilter(contact="lead-2"), lambda i: i % 5 == 2),
        (lambda s: LogFilter(event="lead.update"), lambda i: i % 4 == 0),
        (lambda s: LogFilter(test=True), lambda i: i == 7),
        (lambda s: LogFilter(test=False), lambda i: i != 7),
        (lambda s: LogFilter(since=T0 + timedelta(minutes=10)), lambda i: i >= 10),
        (lambda s: LogFilter(until=T0 + timedelta(minutes=10)), lambda i: i <= 10),
        (
            lambda s: LogFilter(
                campaign_id=s["b"],
                status="delivered",
                since=T0 + timedelta(minutes=5),
                until=T0 + timedelta(minutes=20),
            ),
            lambda i: i % 2 == 0 and i % 3 == 0 and 5 <= i <= 20,
        ),
    ],
)
def test_filters(db, workspace, seeded, filters, expected):
    got = _ids(db, workspace.id, filters(seeded), limit=100)
    want = [nid for i, nid in reversed(list(enumerate(seeded["ids"]))) if expected(i)]
    assert got == want


def test_the_test_sends_filter_reads_its_partial_index(db, workspace, seeded):
    """Test sends are rare, so "test only" must not scan the workspace's log: the query
    spells the condition as the partial index's predicate, and the planner uses it."""
    assert _ids(db, workspace.id, LogFilter(test=True)) == [seeded["ids"][7]]
    with db.session() as s:
        query = log_store.apply_filter(
            select(Notification.id), workspace.id, LogFilter(test=True)
        ).order_by(Notification.id.desc())
        if db.is_postgres:
            s.execute(text("SET LOCAL enable_seqscan = off"))  # a 31-row table: scan is cheaper
            plan = s.execute(text("EXPLAIN " + _literal_sql(db, query))).scalars().all()
        else:
            plan = [r[-1] for r in s.execute(text("EXPLAIN QUERY PLAN " + _literal_sql(db, query)))]
    assert any("ix_notifications_log_test" in line for line in plan), plan


def _literal_sql(db: Database, query) -> str:
    return str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))


def test_unknown_status_is_refused():
    with pytest.raises(ValueError):
        LogFilter(status="lost")


def test_pagination_is_stable_while_new_rows_arrive(db, workspace, seeded):
    first = _ids(db, workspace.id, limit=10)
    with db.transaction() as s:  # new notifications arrive between page loads
        campaign = s.get(Campaign, seeded["a"])
        for _ in range(5):
            make_recorded_notification(s, campaign, status="pending")
    second = _ids(db, workspace.id, limit=10, before_id=first[-1])
    third = _ids(db, workspace.id, limit=20, before_id=second[-1])
    assert first + second + third == list(reversed(seeded["ids"]))
    # Stepping back newer from a page gives the one before it, filters applied, newest first.
    assert _ids(db, workspace.id, limit=10, after_id=third[0]) == second
    failed = [i for n, i in enumerate(seeded["ids"]) if n % 3 == 1]
    assert _ids(db, workspace.id, LogFilter(status="failed"), limit=2, after_id=failed[3]) == [
        failed[5],
        failed[4],
    ]


def test_detail_has_attempts_in_order(db, workspace):
    with db.transaction() as s:
        c = make_campaign(s, workspace.id)
        n = make_recorded_notification(
            s,
            c,
            status="failed",
            attempts=[
                {"status_code": 500, "duration_ms": 12, "error_code": "http_status"},
                {
                    "status_code": 401,
                    "duration_ms": 9,
                    "error_code": "http_status",
                    "response_body": "bad key",
                },
            ],
        )
    other = make_workspace(db, "Other", "other@acme.test")
    with db.session() as s:
        detail = log_store.get_notification_detail(s, workspace.id, n.id)
        assert [a.number for a in detail.attempts] == [1, 2]
        assert detail.attempts[1].response_body == "bad key"
        assert detail.campaign.id == c.id
        assert log_store.get_notification_detail(s, other.id, n.id) is None


def test_retry_requeues_and_second_call_is_noop(db, workspace):
    with db.transaction() as s:
        c = make_campaign(s, workspace.id)
        failed = make_recorded_notification(s, c, status="failed", attempts=[{"status_code": 500}])
        delivered = make_recorded_notification(s, c, status="delivered")
    now = utcnow()
    with db.transaction() as s:
        n = retry_notification(s, workspace.id, failed.id, SETTINGS, now)
        assert n.status == "pending" and n.next_attempt_at == now
    with db.transaction() as s:  # twice: still one queued notification, nothing else
        n = retry_notification(s, workspace.id, failed.id, SETTINGS, now + timedelta(seconds=1))
        assert n.status == "pending" and n.next_attempt_at == now
        assert n.attempt_count == 1
    with db.transaction() as s, pytest.raises(LogActionError):
        retry_notification(s, workspace.id, delivered.id, SETTINGS, now)
    other = make_workspace(db, "Other", "other@acme.test")
    with db.transaction() as s:
        assert retry_notification(s, other.id, failed.id, SETTINGS, now) is None


def test_retry_renders_again_with_the_current_recipe(db, workspace):
    with db.transaction() as s:
        c = make_campaign(
            s,
            workspace.id,
            url="http://127.0.0.1:9/old",
            channel_overrides={"auth": {"type": "bearer"}},
            secrets={"token": "old"},
        )
        contact = make_contact(s, workspace.id)
        event = make_event(s, workspace.id, contact)
        n = make_recorded_notification(s, c, status="failed", contact=contact, event=event)
    with db.transaction() as s:  # the marketer fixes the URL and the token
        campaign = s.get(Campaign, c.id)
        campaign.channel = {**campaign.channel, "url": "http://127.0.0.1:9/new"}
        campaign.channel_secrets = {"token": "fresh"}
    with db.transaction() as s:
        retry_notification(s, workspace.id, n.id, SETTINGS)
    with db.session() as s:
        row = s.get(Notification, n.id)
        assert row.request["url"] == "http://127.0.0.1:9/new"
        assert row.request_secrets == {"Authorization": "Bearer fresh"}
        assert {"name": "Authorization", "value": "Bearer ****"} in row.request["headers"]
        assert '"lead-1@example.com"' in row.request["body"]


def test_retry_while_disabled_holds(db, workspace):
    with db.transaction() as s:
        c = make_campaign(s, workspace.id, webhook_disabled=True)
        n = make_recorded_notification(s, c, status="failed")
    with db.transaction() as s:
        row = retry_notification(s, workspace.id, n.id, SETTINGS)
        assert (row.status, row.reason, row.next_attempt_at) == ("held", "webhook_disabled", None)


def test_retry_with_a_broken_recipe_fails_with_render_error(db, workspace):
    with db.transaction() as s:
        c = make_campaign(s, workspace.id, url="http://127.0.0.1:9/{{ contact.missing }}")
        contact = make_contact(s, workspace.id)
        n = make_recorded_notification(
            s, c, status="failed", contact=contact, event=None, attempts=[{"status_code": 500}]
        )
    with db.transaction() as s:
        row = retry_notification(s, workspace.id, n.id, SETTINGS)
        assert row.status == "failed" and row.error_code == "render_error"
    with db.session() as s:
        attempts = log_store.list_attempts(s, n.id)
        assert [a.error_code for a in attempts] == [None, "render_error"]


def test_cancel(db, workspace):
    with db.transaction() as s:
        c = make_campaign(s, workspace.id)
        pending = make_recorded_notification(s, c, status="retrying", next_attempt_at=utcnow())
        delivered = make_recorded_notification(s, c, status="delivered")
    with db.transaction() as s:
        row = log_store.cancel_notification(s, workspace.id, pending.id, utcnow())
        assert (row.status, row.next_attempt_at) == ("cancelled", None)
    with db.transaction() as s:  # twice is fine
        assert log_store.cancel_notification(s, workspace.id, pending.id, utcnow()).status == (
            "cancelled"
        )
    with db.transaction() as s, pytest.raises(LogActionError):
        log_store.cancel_notification(s, workspace.id, delivered.id, utcnow())
    with db.transaction() as s:  # a cancelled notification can be retried
        assert retry_notification(s, workspace.id, pending.id, SETTINGS).status == "pending"


def test_bulk_retry_is_idempotent_and_counts_progress(db, workspace):
    with db.transaction() as s:
        a = make_campaign(s, workspace.id, name="A")
        b = make_campaign(s, workspace.id, name="B")
        for i in range(7):
            make_recorded_notification(s, a, status="failed", created_at=T0 + timedelta(seconds=i))
        make_recorded_notification(s, b, status="failed")
        make_recorded_notification(s, a, status="delivered")
    filters = LogFilter(campaign_id=a.id)
    now = utcnow()
    with db.transaction() as s:
        assert log_bulk.count_retryable(s, workspace.id, filters) == 7
        job, created = log_bulk.start_bulk_retry(s, workspace.id, filters, now)
        assert created and job.total == 7
    with db.transaction() as s:  # the second click returns the same job
        again, created = log_bulk.start_bulk_retry(s, workspace.id, filters, now)
        assert not created and again.id == job.id
    run_bulk_retry(db, SETTINGS, job.id, batch_size=3)
    run_bulk_retry(db, SETTINGS, job.id, batch_size=3)  # a finished job does nothing
    with db.session() as s:
        finished = s.get(BulkJob, job.id)
        assert (finished.status, finished.done, finished.total) == ("done", 7, 7)
        statuses = [n.status for n in log_store.list_notifications(s, workspace.id, filters)]
        assert statuses.count("pending") == 7
        assert (
            log_store.list_notifications(s, workspace.id, LogFilter(campaign_id=b.id))[0].status
            == "failed"
        )
    with db.transaction() as s:  # same filter inside the window: still the same job
        again, created = log_bulk.start_bulk_retry(s, workspace.id, filters, now)
        assert not created and again.id == job.id
    with db.transaction() as s:  # later: a new job, with nothing left to retry
        later, created = log_bulk.start_bulk_retry(
            s, workspace.id, filters, now + timedelta(minutes=5)
        )
        assert created and later.total == 0


def test_a_retrying_notification_is_sent_now_from_the_fixed_recipe(db, workspace):
    """Retry now on one waiting for its next retry: rendered again, due now, and the
    earlier attempts keep the request they sent."""
    later = utcnow() + timedelta(hours=6)
    with db.transaction() as s:
        c = make_campaign(s, workspace.id, url="http://127.0.0.1:9/old")
        contact = make_contact(s, workspace.id)
        event = make_event(s, workspace.id, contact)
        n = make_recorded_notification(
            s,
            c,
            status="retrying",
            contact=contact,
            event=event,
            next_attempt_at=later,
            attempts=[{"status_code": 401}, {"status_code": 401}],
        )
        old_request = dict(n.request)
    with db.transaction() as s:
        campaign = s.get(Campaign, c.id)
        campaign.channel = {**campaign.channel, "url": "http://127.0.0.1:9/fixed"}
    now = utcnow()
    with db.transaction() as s:
        row = retry_notification(s, workspace.id, n.id, SETTINGS, now)
        assert (row.status, row.next_attempt_at) == ("pending", now)
        assert row.request["url"] == "http://127.0.0.1:9/fixed"
        assert row.attempt_count == 2  # numbering carries on; the id (webhook-id) is kept
    with db.session() as s:
        attempts = log_store.list_attempts(s, n.id)
        assert [a.request["url"] for a in attempts] == [old_request["url"]] * 2
    with db.transaction() as s:  # a second retry keeps the first two as they were
        s.get(Notification, n.id).status = "retrying"
        s.add(Attempt(notification_id=n.id, number=3, started_at=now, status_code=500))
        s.get(Notification, n.id).attempt_count = 3
    with db.transaction() as s:
        campaign = s.get(Campaign, c.id)
        campaign.channel = {**campaign.channel, "url": "http://127.0.0.1:9/third"}
    with db.transaction() as s:
        retry_notification(s, workspace.id, n.id, SETTINGS)
    with db.session() as s:
        urls = [a.request["url"] for a in log_store.list_attempts(s, n.id)]
        assert urls == [old_request["url"], old_request["url"], "http://127.0.0.1:9/fixed"]


def test_bulk_retry_takes_failed_and_retrying_and_cancelled_when_asked(db, workspace):
    with db.transaction() as s:
        c = make_campaign(s, workspace.id)
        ids = {}
        for i, status in enumerate(["failed", "retrying", "retrying", "cancelled", "delivered"]):
            row = make_recorded_notification(
                s, c, status=status, created_at=T0 + timedelta(seconds=i)
            )
            ids.setdefault(status, []).append(row.id)
    with db.session() as s:
        assert log_bulk.count_retryable_by_status(s, workspace.id, LogFilter()) == {
            "failed": 1,
            "retrying": 2,
        }
        assert log_bulk.count_retryable(s, workspace.id, LogFilter(status="cancelled")) == 1
        assert log_bulk.count_retryable(s, workspace.id, LogFilter(status="retrying")) == 2
        assert log_bulk.count_retryable(s, workspace.id, LogFilter(status="delivered")) == 0
        preview = log_bulk.preview_retryable(s, workspace.id, LogFilter(), limit=2)
        assert [n.id for n in preview] == ids["retrying"][::-1]
    with db.transaction() as s:
        job, _ = log_bulk.start_bulk_retry(s, workspace.id, LogFilter(), utcnow())
    run_bulk_retry(db, SETTINGS, job.id, batch_size=2)
    with db.session() as s:
        assert s.get(BulkJob, job.id).done == 3
        assert log_bulk.job_outcomes(s, job.id) == {"pending": 3}
        assert s.get(Notification, ids["cancelled"][0]).status == "cancelled"
    with db.transaction() as s:  # the worker delivers two, one fails again
        outcomes = ["delivered", "delivered", "retrying"]
        for nid, status in zip(ids["retrying"] + ids["failed"], outcomes, strict=True):
            s.get(Notification, nid).status = status
    with db.session() as s:
        assert log_bulk.job_outcomes(s, job.id) == {"delivered": 2, "retrying": 1}


def test_purge_expired_keeps_recent_and_open(db, workspace):
    now = utcnow()
    old = now - timedelta(days=40)
    with db.transaction() as s:
        c = make_campaign(s, workspace.id)
        expired = [
            make_recorded_notification(
                s,
                c,
                status=st,
                created_at=old + timedelta(seconds=i),
                attempts=[{"status_code": 200}],
            )
            for i, st in enumerate(["delivered", "failed", "cancelled", "skipped"] * 3)
        ]
        held = make_recorded_notification(s, c, status="held", created_at=old)
        fresh = make_recorded_notification(
            s, c, status="delivered", created_at=now, attempts=[{"status_code": 200}]
        )
    with db.session() as s:
        deleted = log_store.purge_expired(s, now - timedelta(days=30), batch_size=5)
    assert deleted == len(expired)
    with db.session() as s:
        remaining = {n.id for n in log_store.list_notifications(s, workspace.id, limit=100)}
        assert remaining == {held.id, fresh.id}
        assert s.scalar(select(func.count()).select_from(Attempt)) == 1
