"""Endpoint health, holding and release, host isolation, leases and claiming."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from engine.delivery.attempts import send_now
from engine.delivery.transport import Transport
from engine.delivery.worker import Worker
from engine.netguard import parse_networks
from engine.store import claims, outbox
from engine.store.models import Alert, Attempt, Campaign, Notification
from engine.store.types import utcnow
from tests.conftest import make_workspace
from tests.integration import factories
from tests.integration.delivery.test_delivery import (
    attempts,
    notification,
    running_worker,
    status_is,
    wait_for,
)
from tests.integration.loopback_receiver import ReceivedRequest, Receiver, Reply


def statuses(db, ids):
    with db.session() as session:
        rows = session.execute(
            select(Notification.status, func.count())
            .where(Notification.id.in_(ids))
            .group_by(Notification.status)
        )
        return dict(rows.all())


def test_auto_disable_alerts_hold_and_release(db, workspace, receiver, api):
    receiver.respond = lambda _r: Reply(500, {}, b"down")
    campaign_id, ids = factories.make_notifications(
        db, workspace.id, receiver.url(), 12, retry={"policy": "none"}, disable_after_failures=10
    )
    with running_worker(db, threads=1):
        wait_for(lambda: sum(statuses(db, ids).get(s, 0) for s in ("failed", "held")) == 12)
        with db.session() as session:
            campaign = session.get(Campaign, campaign_id)
            assert campaign.webhook_disabled and campaign.consecutive_failures == 10
            assert "10 consecutive failed attempts" in campaign.disabled_reason
            kinds = session.scalars(
                select(Alert.kind).where(Alert.campaign_id == campaign_id).order_by(Alert.id)
            ).all()
        assert kinds == ["failures_5", "disabled"]
        assert statuses(db, ids) == {"failed": 10, "held": 2}

        # New notifications while disabled are held, not sent.
        with db.transaction() as session:
            campaign = session.get(Campaign, campaign_id)
            contact = factories.make_contact(session, workspace.id, "lead-2")
            late = factories.make_notification(session, campaign, contact).id
        assert notification(db, late).status == "held"
        assert notification(db, late).reason == "webhook_disabled"

        listed = api.get("/alerts").get_json()
        assert [a["kind"] for a in listed["data"]] == ["disabled", "failures_5"]
        assert listed["data"][0]["campaign_id"] == campaign_id

        receiver.respond = lambda _r: Reply(200)
        answer = api.post(f"/campaigns/{campaign_id}/enable-webhook")
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert body["released_notifications"] == 3
        assert body["health"] == {
            "consecutive_failures": 0,
            "disabled": False,
            "disabled_reason": None,
            "disabled_at": None,
        }
        wait_for(lambda: statuses(db, [*ids, late]) == {"failed": 10, "delivered": 3})
    with db.session() as session:
        assert session.get(Campaign, campaign_id).consecutive_failures == 0


def test_enable_webhook_of_another_workspace_is_404(db, workspace, api, receiver):
    other = make_workspace(db, "Other", "owner@other.test")
    campaign_id, _ = factories.make_notifications(db, other.id, receiver.url(), 0)
    assert api.post(f"/campaigns/{campaign_id}/enable-webhook").status_code == 404
    assert api.get("/alerts").get_json() == {"data": [], "next_cursor": None}


def test_alerts_paginate(db, workspace, api, receiver):
    campaign_id, _ = factories.make_notifications(db, workspace.id, receiver.url(), 0)
    with db.transaction() as session:
        for n in range(3):
            session.add(
                Alert(workspace_id=workspace.id, campaign_id=campaign_id, kind="x", message=str(n))
            )
    first = api.get("/alerts?limit=2").get_json()
    assert [a["message"] for a in first["data"]] == ["2", "1"] and first["next_cursor"]
    rest = api.get(f"/alerts?limit=2&cursor={first['next_cursor']}").get_json()
    assert [a["message"] for a in rest["data"]] == ["0"] and rest["next_cursor"] is None


def test_work_due_at_start_is_claimed_without_waiting_for_a_poll(db, workspace, receiver):
    """A worker started with due notifications claims them at once: the periodic poll is a
    safety net, not what starts the work (here it would come only after an hour)."""
    _, ids = factories.make_notifications(db, workspace.id, receiver.url(), 3)
    transport = Transport(allowed_networks=parse_networks("127.0.0.0/8"))
    worker = Worker(db, transport, threads=2, poll_interval=3600)
    worker.start()
    try:
        wait_for(lambda: statuses(db, ids) == {"delivered": 3})
    finally:
        worker.stop(grace_seconds=5)
        transport.close()


def test_410_disables_at_once_and_holds(db, workspace, receiver):
    receiver.respond = lambda _r: Reply(410, {}, b"gone")
    campaign_id, [nid] = factories.make_notifications(db, workspace.id, receiver.url(), 1)
    with running_worker(db):
        wait_for(status_is(db, nid, "held"))
    with db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign.webhook_disabled and "410" in campaign.disabled_reason
        assert session.scalars(select(Alert.kind)).all() == ["disabled"]
    assert [a.status_code for a in attempts(db, nid)] == [410]


def test_stalled_host_cannot_take_every_thread(db, workspace):
    """With 4 threads, a host that never answers gets at most its cap; others keep flowing.

    (Caps are per host name: the stalled receiver listens on 127.0.0.2, still loopback.)
    """
    release = threading.Event()

    def stall(_request: ReceivedRequest) -> Reply:
        release.wait(30)
        return Reply()

    stalled, healthy = Receiver(stall, host="127.0.0.2"), Receiver()
    try:
        _, stuck = factories.make_notifications(
            db, workspace.id, stalled.url(), 10, timeout_seconds=30
        )
        _, fine = factories.make_notifications(db, workspace.id, healthy.url(), 20)
        with running_worker(db, threads=4) as worker:
            wait_for(lambda: statuses(db, fine) == {"delivered": 20})
            # Every healthy notification went out while the stalled host still held its
            # sends: at most half the threads.
            assert not release.is_set()
            assert len(stalled.requests) <= 2
            assert worker.in_flight <= 2
            release.set()
            wait_for(lambda: statuses(db, stuck) == {"delivered": 10})
    finally:
        release.set()
        stalled.close()
        healthy.close()


def test_claims_lease_and_expired_leases_are_taken_again(db, workspace, receiver):
    _, ids = factories.make_notifications(db, workspace.id, receiver.url(), 3)
    now = utcnow()
    with db.transaction() as session:
        first = claim_due(session, lease="a#1", now=now, limit=2)
    with db.transaction() as session:
        second = claim_due(session, lease="b#1", now=now, limit=5)
    assert len(first) == 2 and len(second) == 1
    assert {c.id for c in first} | {c.id for c in second} == set(ids)
    lease_end = first[0].lease_until
    assert lease_end == now + timedelta(seconds=5 + claims.LEASE_MARGIN_SECONDS)
    with db.transaction() as session:
        assert claim_due(session, lease="c#1", now=now, limit=5) == []
        # After the lease ends (a worker died), the same notifications are claimed again.
        again = claim_due(session, lease="c#2", now=lease_end, limit=5)
    assert {c.id for c in again} == set(ids)
    # The first worker's late result no longer counts.
    stale = factories_record(first[0], delivered=True)
    with db.transaction() as session:
        summary = outbox.record_attempts(session, [stale], utcnow())
    assert summary.stale == [first[0].id] and summary.recorded == 0
    assert notification(db, first[0].id).leased_by == "c#2"


def test_a_delivered_batch_counts_current_leases_once(db, workspace, receiver):
    """Settling delivered attempts checks each lease in the update itself: a late result
    of an ended lease, and a second record of one attempt, are stale; the others count."""
    _, ids = factories.make_notifications(db, workspace.id, receiver.url(), 3)
    now = utcnow()
    with db.transaction() as session:
        old = claim_due(session, lease="a#1", now=now, limit=1)
    later = old[0].lease_until
    with db.transaction() as session:
        current = claim_due(session, lease="b#1", now=later, limit=3)
    assert {c.id for c in current} == set(ids)
    retaken = next(c for c in current if c.id == old[0].id)
    others = [c for c in current if c is not retaken]
    batch = [factories_record(old[0], delivered=True)]  # its lease ended: b#1 owns it
    batch += [factories_record(c, delivered=True) for c in others]
    batch.append(factories_record(others[0], delivered=True))  # the same attempt twice
    with db.transaction() as session:
        summary = outbox.record_attempts(session, batch, utcnow())
    assert summary.recorded == 2
    assert sorted(summary.stale) == sorted([old[0].id, others[0].id])
    assert notification(db, retaken.id).status == "sending"
    for item in others:
        stored = notification(db, item.id)
        assert (stored.status, stored.attempt_count, stored.leased_by) == ("delivered", 1, None)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Attempt)) == 2


def claim_due(session, *, lease, now, limit):
    """What a worker's claim does without pacing: each due channel in turn, up to ``limit``."""
    claimed = []
    for channel in outbox.due_channels(session, now=now):
        claimed += outbox.claim_channel(
            session, channel.campaign, lease=lease, now=now, limit=limit - len(claimed)
        )
    return claimed


def factories_record(claimed, *, delivered):
    return claims.AttemptRecord(
        claimed=claimed,
        started_at=utcnow(),
        duration_ms=1,
        status_code=200 if delivered else 500,
        response_headers={},
        response_body=b"",
        response_truncated=False,
        error_code=None if delivered else "http_status",
        error_message=None,
        delivered=delivered,
        retry_at=None,
    )


def test_lease_recovery_and_release(db, workspace, receiver):
    _, ids = factories.make_notifications(db, workspace.id, receiver.url(), 2)
    now = utcnow()
    with db.transaction() as session:
        claimed = claim_due(session, lease="w#1", now=now, limit=2)
    with db.transaction() as session:
        released = outbox.release_leases(session, {claimed[0].id: "w#1"}, now)
        recovered = outbox.recover_expired_leases(session, claimed[1].lease_until)
    assert (released, recovered) == (1, 1)
    assert statuses(db, ids) == {"pending": 2}


def test_send_now_records_a_test_send(db, workspace, receiver):
    receiver.respond = lambda _r: Reply(201, {}, b"created")
    with db.transaction() as session:
        campaign = factories.make_campaign(session, workspace.id, receiver.url())
        contact = factories.make_contact(session, workspace.id)
        row = factories.make_notification(session, campaign, contact, test=True, announce=False)
        with Transport(allowed_networks=parse_networks("127.0.0.0/8")) as transport:
            request, outcome = send_now(session, row, campaign, transport, utcnow())
        assert outcome.status_code == 201 and row.status == "delivered"
        assert dict(request.headers)["webhook-id"] == row.id
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Attempt)) == 1
        assert session.get(Campaign, campaign.id).consecutive_failures == 0
