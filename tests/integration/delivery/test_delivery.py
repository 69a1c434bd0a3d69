"""Delivery end to end: real loopback receivers, a real worker, the database as the record."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from engine.delivery import signing
from engine.delivery.transport import Transport
from engine.delivery.worker import Worker
from engine.store import Database
from engine.store.models import Attempt, Campaign, Notification
from engine.store.types import utcnow
from tests.integration import factories
from tests.integration.loopback_receiver import ReceivedRequest, Reply

LOOPBACK = ("127.0.0.0/8",)


@contextmanager
def running_worker(db: Database, threads: int = 4) -> Iterator[Worker]:
    from engine.netguard import parse_networks

    transport = Transport(allowed_networks=parse_networks(",".join(LOOPBACK)))
    worker = Worker(db, transport, threads=threads, poll_interval=0.5)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop(grace_seconds=5)
        transport.close()


def wait_for(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def notification(db: Database, notification_id: str) -> Notification:
    with db.session() as session:
        return session.get(Notification, notification_id)


def attempts(db: Database, notification_id: str) -> list[Attempt]:
    with db.session() as session:
        return list(
            session.scalars(
                select(Attempt)
                .where(Attempt.notification_id == notification_id)
                .order_by(Attempt.number)
            )
        )


def status_is(db: Database, notification_id: str, *statuses: str) -> Callable[[], bool]:
    return lambda: notification(db, notification_id).status in statuses


def test_2xx_is_delivered_signed_and_recorded(db, workspace, receiver):
    receiver.respond = lambda _r: Reply(200, {"X-Reply": "yes"}, b'{"ok": true}')
    campaign_id, [nid] = factories.make_notifications(db, workspace.id, receiver.url(), 1)
    with running_worker(db):
        wait_for(status_is(db, nid, "delivered"))
    row = notification(db, nid)
    assert row.attempt_count == 1 and row.delivered_at is not None and row.leased_by is None
    [attempt] = attempts(db, nid)
    assert attempt.number == 1 and attempt.status_code == 200 and attempt.error_code is None
    assert attempt.response_body == '{"ok": true}' and not attempt.response_truncated
    assert attempt.response_headers["X-Reply"] == "yes"
    [request] = receiver.requests
    assert request.headers["webhook-id"] == nid
    assert request.headers["user-agent"].startswith("Hookcast/")
    with db.session() as session:
        secret = session.get(Campaign, campaign_id).signing_secret
    Webhook(secret).verify(request.body, request.headers)  # raises if the signature is wrong
    with db.session() as session:
        assert session.get(Campaign, campaign_id).consecutive_failures == 0


def test_both_secrets_sign_for_24_hours_after_rotation(db, workspace, receiver):
    old, new = signing.generate_secret(), signing.generate_secret()
    with db.transaction() as session:
        campaign = factories.make_campaign(
            session, workspace.id, receiver.url(), signing_secret=new
        )
        campaign.previous_signing_secret = old
        campaign.previous_secret_expires_at = utcnow() + timedelta(hours=23)
        contact = factories.make_contact(session, workspace.id)
        first = factories.make_notification(session, campaign, contact).id
    with running_worker(db):
        wait_for(status_is(db, first, "delivered"))
        with db.transaction() as session:
            campaign = session.get(Campaign, campaign.id)
            campaign.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
            contact = session.get(type(contact), contact.id)
            second = factories.make_notification(session, campaign, contact).id
        wait_for(status_is(db, second, "delivered"))
    during, after = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(old).verify(after.body, after.headers)


@pytest.mark.parametrize(
    ("status", "message_part"),
    [(302, "redirects are not followed"), (404, "404"), (500, "500")],
)
def test_failures_follow_the_retry_schedule_then_fail(
    db, workspace, receiver, status, message_part
):
    headers = {"Location": "http://127.0.0.1:1/elsewhere"} if status == 302 else {}
    receiver.respond = lambda _r: Reply(status, headers, b"nope")
    _, [nid] = factories.make_notifications(
        db, workspace.id, receiver.url(), 1, retry={"schedule": [1], "max_attempts": 3}
    )
    with running_worker(db):
        wait_for(status_is(db, nid, "failed"))
    row = notification(db, nid)
    assert row.attempt_count == 3 and row.error_code == "http_status"
    assert message_part in row.error_message and row.last_status_code == status
    tries = attempts(db, nid)
    assert [a.number for a in tries] == [1, 2, 3]
    assert all(a.status_code == status and a.error_code == "http_status" for a in tries)
    # Each retry waited at least the scheduled second after the previous attempt.
    for before, after in itertools.pairwise(tries):
        assert after.started_at - before.started_at >= timedelta(seconds=1)
    assert set(receiver.ids()) == {nid} and len(receiver.requests) == 3


def test_retry_succeeds_with_the_same_webhook_id(db, workspace, receiver):
    replies = iter([Reply(503, {}, b"busy"), Reply(200)])
    receiver.respond = lambda _r: next(replies)
    campaign_id, [nid] = factories.make_notifications(db, workspace.id, receiver.url(), 1)
    with running_worker(db):
        wait_for(status_is(db, nid, "delivered"))
    assert receiver.ids() == [nid, nid]
    assert [a.status_code for a in attempts(db, nid)] == [503, 200]
    with db.session() as session:
        assert session.get(Campaign, campaign_id).consecutive_failures == 0


def test_429_retry_after_is_honoured(db, workspace, receiver):
    receiver.respond = lambda _r: Reply(429, {"Retry-After": "3600"}, b"slow down")
    _, [nid] = factories.make_notifications(db, workspace.id, receiver.url(), 1)
    with running_worker(db):
        wait_for(status_is(db, nid, "retrying"))
    row = notification(db, nid)
    [attempt] = attempts(db, nid)
    assert attempt.status_code == 429
    wait = row.next_attempt_at - attempt.started_at
    assert timedelta(minutes=59) < wait <= timedelta(hours=1, minutes=1)


def test_slow_response_past_the_timeout(db, workspace, receiver):
    release = threading.Event()

    def stall(_request: ReceivedRequest) -> Reply:
        release.wait(10)
        return Reply()

    receiver.respond = stall
    _, [nid] = factories.make_notifications(
        db, workspace.id, receiver.url(), 1, timeout_seconds=1, retry={"policy": "none"}
    )
    try:
        with running_worker(db):
            wait_for(status_is(db, nid, "failed"))
    finally:
        release.set()
    [attempt] = attempts(db, nid)
    assert attempt.error_code == "timeout" and attempt.status_code is None


def test_connection_refused(db, workspace):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _, [nid] = factories.make_notifications(
        db, workspace.id, f"http://127.0.0.1:{port}/hook", 1, retry={"policy": "none"}
    )
    with running_worker(db):
        wait_for(status_is(db, nid, "failed"))
    [attempt] = attempts(db, nid)
    assert attempt.error_code == "connection_error" and attempt.status_code is None


@pytest.mark.parametrize("log_body", [True, False])
def test_huge_response_is_truncated_or_not_kept(db, workspace, receiver, log_body):
    receiver.respond = lambda _r: Reply(200, {}, b"x" * (1024 * 1024))
    _, [nid] = factories.make_notifications(
        db, workspace.id, receiver.url(), 1, log_response_body=log_body
    )
    with running_worker(db):
        wait_for(status_is(db, nid, "delivered"))
    [attempt] = attempts(db, nid)
    if log_body:
        assert len(attempt.response_body) == 65536 and attempt.response_truncated
    else:
        assert attempt.response_body is None and not attempt.response_truncated
    assert attempt.response_headers["Content-Length"] == str(1024 * 1024)
