"""Channel delivery control against real loopback receivers: max_concurrency, rate limits,
429 holding back the whole channel, the breaker's single probe, fair shares among endpoints.

Workers run in this process against the test database (SQLite, and PostgreSQL where set);
"two workers" are two ``Worker`` objects with their own ids, each claiming on its own, as
two processes would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy import select

from engine.delivery import pacing
from engine.delivery.transport import Transport
from engine.delivery.worker import Worker
from engine.netguard import parse_networks
from engine.store import Database, channel_states
from engine.store.models import Notification
from engine.store.types import utcnow
from tests.integration import factories
from tests.integration.delivery.test_delivery import wait_for
from tests.integration.loopback_receiver import Blackhole, ReceivedRequest, Receiver, Reply


@contextmanager
def workers(db: Database, count: int = 1, threads: int = 16) -> Iterator[list[Worker]]:
    with ExitStack() as stack:
        running = []
        for _ in range(count):
            transport = Transport(allowed_networks=parse_networks("127.0.0.0/8"))
            worker = Worker(db, transport, threads=threads, poll_interval=0.2)
            worker.start()
            stack.callback(transport.close)
            stack.callback(worker.stop, 5)
            running.append(worker)
        yield running


class Tracking:
    """A receiver's responder that records arrival times and requests in flight at once."""

    def __init__(self, seconds: float = 0.0, reply: Reply | None = None) -> None:
        self.seconds = seconds
        self.reply = reply or Reply()
        self.times: list[float] = []
        self.ids: list[str] = []
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self.times.append(time.monotonic())
            self.ids.append(request.headers.get("webhook-id", ""))
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(self.seconds)
        with self._lock:
            self.in_flight -= 1
        return self.reply


def statuses(db: Database, ids: list[str]) -> dict[str, int]:
    with db.session() as session:
        rows = session.scalars(select(Notification.status).where(Notification.id.in_(ids))).all()
    counts: dict[str, int] = {}
    for status in rows:
        counts[status] = counts.get(status, 0) + 1
    return counts


def attempt_counts(db: Database, ids: list[str]) -> list[int]:
    with db.session() as session:
        return list(
            session.scalars(select(Notification.attempt_count).where(Notification.id.in_(ids)))
        )


def most_in_any_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.fixture
def tracked() -> Iterator[tuple[Receiver, Tracking]]:
    tracking = Tracking(seconds=0.25)
    server = Receiver(tracking)
    yield server, tracking
    server.close()


def test_max_concurrency_caps_requests_in_flight(db, workspace, tracked):
    server, tracking = tracked
    _, ids = factories.make_notifications(db, workspace.id, server.url(), 8, max_concurrency=2)
    with workers(db):
        wait_for(lambda: statuses(db, ids) == {"delivered": 8})
    assert tracking.peak == 2


def test_max_concurrency_holds_across_workers(db, workspace, tracked):
    """Two workers share a channel's max_concurrency out (3: two and one) once each has
    heard of the other (a heartbeat: shares follow a worker joining within a second)."""
    server, tracking = tracked
    with workers(db, count=2):
        time.sleep(1.5)
        _, ids = factories.make_notifications(db, workspace.id, server.url(), 12, max_concurrency=3)
        wait_for(lambda: statuses(db, ids) == {"delivered": 12})
    assert tracking.peak <= 3
    assert tracking.peak >= 2  # and it is used, not starved


@pytest.mark.parametrize("count", [1, 2])
def test_rate_limit_spaces_requests_across_workers_and_spends_no_attempts(
    db, workspace, receiver, count
):
    tracking = Tracking()
    receiver.respond = tracking
    limit = {"requests": 5, "per": "second"}
    campaign_id, ids = factories.make_notifications(
        db, workspace.id, receiver.url(), 15, rate_limit=limit
    )
    seen_waiting = []
    with workers(db, count=count):

        def done() -> bool:
            with db.session() as session:
                wait = channel_states.waits(session, [campaign_id], utcnow()).get(campaign_id)
            if wait is not None:
                seen_waiting.append(wait.reason)
            return statuses(db, ids) == {"delivered": 15}

        wait_for(done)
    offsets = [round(moment - tracking.times[0], 3) for moment in tracking.times]
    assert most_in_any_window(tracking.times, 1.0) <= 6, offsets
    assert tracking.times[-1] - tracking.times[0] >= 2.5  # 15 at 5/s: about 2.8 s
    assert attempt_counts(db, ids) == [1] * 15  # waiting for a slot spent no attempt
    assert "rate_limit" in seen_waiting


def test_a_429_holds_back_the_whole_channel_until_retry_after(db, workspace, receiver):
    answered_429 = threading.Event()
    times: list[tuple[float, int]] = []

    def respond(_request: ReceivedRequest) -> Reply:
        if not answered_429.is_set():
            answered_429.set()
            times.append((time.monotonic(), 429))
            return Reply(429, {"Retry-After": "2"})
        times.append((time.monotonic(), 200))
        return Reply()

    receiver.respond = respond
    campaign_id, ids = factories.make_notifications(
        db, workspace.id, receiver.url(), 4, max_concurrency=1, retry={"schedule": [1]}
    )
    waits = []
    with workers(db):
        wait_for(lambda: answered_429.is_set())

        def all_delivered() -> bool:
            with db.session() as session:
                waits.extend(channel_states.waits(session, [campaign_id], utcnow()).values())
            return statuses(db, ids) == {"delivered": 4}

        wait_for(all_delivered)
    first_429 = times[0][0]
    assert times[0][1] == 429
    assert all(moment - first_429 >= 1.9 for moment, _ in times[1:])  # nobody hit the wall
    assert sorted(attempt_counts(db, ids)) == [1, 1, 1, 2]  # only the 429'd one tried twice
    assert waits and waits[0].reason == "retry_after"


def test_the_breaker_sends_one_probe_at_a_time_and_closes_when_answered(db, workspace, monkeypatch):
    monkeypatch.setattr(pacing, "BREAKER_COOLDOWN_SECONDS", 0.5)
    dead = Blackhole("127.0.0.42")
    try:
        campaign_id, ids = factories.make_notifications(
            db,
            workspace.id,
            dead.url(),
            12,
            timeout_seconds=1,
            max_concurrency=10,
            retry={"schedule": [1], "max_attempts": 50},
        )
        with workers(db):
            # stalls open the breaker; after that, one connection at a time
            wait_for(lambda: _pace(db, campaign_id).stalls >= pacing.BREAKER_AFTER_STALLS)
            opened_at = dead.accepted
            dead.peak = dead.open
            time.sleep(3.5)
            assert dead.peak <= 1
            probes = dead.accepted - opened_at
            assert 1 <= probes <= 4  # a probe per timeout + cooldown, not the whole backlog
            with db.session() as session:
                wait = channel_states.waits(session, [campaign_id], utcnow()).get(campaign_id)
            assert wait is not None and wait.reason == "breaker"
            # waiting spent nothing: every attempt is a connection (one may be in flight)
            assert dead.accepted - 1 <= sum(attempt_counts(db, ids)) <= dead.accepted
            assert attempt_counts(db, ids).count(0) >= 5
            dead.answer()  # the endpoint comes back: the next probe closes the breaker
            wait_for(lambda: statuses(db, ids) == {"delivered": 12}, timeout=30)
        assert _pace(db, campaign_id).stalls == 0
    finally:
        dead.close()


def _pace(db: Database, campaign_id: str) -> channel_states.ChannelPace:
    with db.session() as session:
        return channel_states.load(session, [campaign_id])[campaign_id]


def test_dead_endpoints_never_take_the_healthy_ones_threads(db, workspace, receiver):
    """Six endpoints that accept and never answer, ten sends each, against 16 threads: the
    healthy endpoint's notifications all arrive while every dead send is still hanging."""
    dead = [Blackhole(f"127.0.0.{41 + n}") for n in range(6)]
    try:
        with workers(db, threads=16):
            _, warm = factories.make_notifications(db, workspace.id, receiver.url(), 10)
            wait_for(lambda: statuses(db, warm) == {"delivered": 10})
            hanging = []
            for hole in dead:
                hanging += factories.make_notifications(
                    db, workspace.id, hole.url(), 10, timeout_seconds=20
                )[1]
            wait_for(lambda: sum(hole.open for hole in dead) >= 6)
            _, healthy = factories.make_notifications(db, workspace.id, receiver.url(), 30)
            wait_for(lambda: statuses(db, healthy) == {"delivered": 30})
            assert statuses(db, hanging).get("delivered", 0) == 0
            assert set(attempt_counts(db, hanging)) == {0}  # still hanging: none settled yet
            assert sum(hole.open for hole in dead) <= 8  # hosts that never answered: half
    finally:
        for hole in dead:
            hole.close()


def test_one_channels_backlog_does_not_hold_back_anothers_first_notification(
    db, workspace, tracked
):
    server, tracking = tracked
    tracking.seconds = 0.05
    _, backlog = factories.make_notifications(
        db, workspace.id, server.url(), 200, max_concurrency=2
    )
    with workers(db):
        wait_for(lambda: len(tracking.ids) >= 4)
        _, (first,) = factories.make_notifications(db, workspace.id, server.url("/other"), 1)
        wait_for(lambda: statuses(db, [first]) == {"delivered": 1})
        assert statuses(db, backlog).get("delivered", 0) < 150
