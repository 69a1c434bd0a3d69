"""SendQueue: per-host caps, shares for unproven and failing hosts, hosts in turn, channel caps,
rate slots, and the bound on sends without a committed record."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from engine.delivery import send_queue
from engine.delivery.send_queue import PREFETCH_PER_HOST, QUICK_STREAK, SendQueue
from engine.store.claims import AttemptRecord, CampaignDelivery, ClaimedNotification

NOW = datetime(2026, 1, 1, tzinfo=UTC)
_ids = itertools.count()


def campaign(cid: str = "cmp_1", **channel: object) -> CampaignDelivery:
    return CampaignDelivery(
        id=cid,
        workspace_id="ws_1",
        name=cid,
        channel=channel,
        signing_secret="whsec_x",
        previous_signing_secret=None,
        previous_secret_expires_at=None,
        webhook_disabled=False,
    )


def claimed(
    host: str, owner: CampaignDelivery | None = None, not_before: datetime | None = None
) -> ClaimedNotification:
    """A claimed send to ``host``, of ``owner`` or else a channel of the host's own."""
    return ClaimedNotification(
        id=f"msg_{next(_ids)}",
        lease="l",
        lease_until=NOW,
        endpoint_host=host,
        attempt_count=0,
        test=False,
        request={},
        request_secrets={},
        campaign=owner or campaign(f"cmp_{host}"),
        not_before=not_before,
    )


def finished(item: ClaimedNotification, *, ms: int = 5, error: str | None = None) -> AttemptRecord:
    return AttemptRecord(
        claimed=item,
        started_at=NOW,
        duration_ms=ms,
        status_code=None if error else 200,
        response_headers={},
        response_body=b"",
        response_truncated=False,
        error_code=error,
        error_message=None,
        delivered=error is None,
        retry_at=None,
    )


def send_one(queue: SendQueue, host: str, **outcome: object) -> None:
    queue.put([claimed(host)])
    item = queue.take()
    assert item is not None
    queue.done(item, finished(item, **outcome), sent=True)  # type: ignore[arg-type]
    queue.settled(1)


def room(queue: SendQueue, host: str) -> int:
    rooms, new_host = queue.rooms(time.monotonic())
    return rooms.get(host, new_host)


def take_now(queue: SendQueue) -> ClaimedNotification | None:
    """What a sender would start right now (None: it would wait)."""
    with queue._cond:
        item, _wait = queue._next()
        return item


def test_a_new_host_gets_one_send_until_it_answers() -> None:
    queue = SendQueue(32, lambda: None)
    assert room(queue, "a.example") == 1


def test_a_host_that_drains_between_sends_still_becomes_quick() -> None:
    """Sent one at a time (the host idle in between), a fast host earns the prefetch: its
    streak is remembered while it is idle, so a few threads still claim in batches."""
    queue = SendQueue(4, lambda: None)
    for _ in range(QUICK_STREAK):
        send_one(queue, "a.example")
    assert room(queue, "a.example") == queue.quick_host_cap + PREFETCH_PER_HOST


def test_a_timeout_makes_the_host_failing_one_send_at_a_time() -> None:
    queue = SendQueue(16, lambda: None)
    for _ in range(QUICK_STREAK):
        send_one(queue, "a.example")
    send_one(queue, "a.example", error="timeout")
    assert room(queue, "a.example") == 1


def test_a_slow_answer_keeps_the_host_sending_but_within_the_unproven_share() -> None:
    queue = SendQueue(32, lambda: None)
    send_one(queue, "slow.example", ms=1500)
    assert room(queue, "slow.example") == queue.unproven_share == 24


def test_failing_hosts_together_hold_at_most_a_quarter_and_quick_hosts_keep_a_reserve() -> None:
    queue = SendQueue(16, lambda: None)
    dead = [f"dead{n}.example" for n in range(10)]
    for host in dead:
        send_one(queue, host, error="connection_error")
    for _ in range(QUICK_STREAK):
        send_one(queue, "quick.example")
    queue.put([claimed(host) for host in dead for _ in range(3)])
    started = []
    while (item := take_now(queue)) is not None:
        started.append(item)
    assert len(started) == queue.failing_share == 4  # not one per dead host
    assert len({item.endpoint_host for item in started}) == 4
    queue.put([claimed("quick.example") for _ in range(20)])
    while (item := take_now(queue)) is not None:
        started.append(item)
    quick = [item for item in started if item.endpoint_host == "quick.example"]
    assert len(quick) == 10  # its channel's max_concurrency: failing hosts took none of them


def test_hosts_that_have_not_answered_leave_threads_to_those_that_do() -> None:
    """New hosts together take at most half the threads; a slow host that answers still
    gets threads beside them (up to all but the quick hosts' reserve), and quick hosts
    keep the reserve."""
    queue = SendQueue(16, lambda: None)
    for _ in range(QUICK_STREAK):
        send_one(queue, "quick.example")
    send_one(queue, "slow.example", ms=1500)
    queue.put([claimed(f"new{n}.example") for n in range(20) for _ in range(2)])
    started = []
    while (item := take_now(queue)) is not None:
        started.append(item)
    # one send per new host: half the threads, and an eighth more for hosts' first sends
    assert len(started) == queue.unanswered_share + queue.first_sends == 10
    assert len({item.endpoint_host for item in started}) == 10
    queue.put([claimed("slow.example") for _ in range(10)])
    slow = sum(take_now(queue) is not None for _ in range(10))
    assert slow == queue.unproven_share - len(started) == 2
    queue.put([claimed("quick.example") for _ in range(4)])
    assert sum(take_now(queue) is not None for _ in range(4)) == 4  # the reserve


def test_hosts_are_served_in_turn_not_in_claim_order() -> None:
    queue = SendQueue(32, lambda: None)
    for host in ("a.example", "b.example"):
        for _ in range(QUICK_STREAK):
            send_one(queue, host)
    queue.put([claimed("a.example") for _ in range(10)] + [claimed("b.example")])
    first_two = {take_now(queue).endpoint_host, take_now(queue).endpoint_host}  # type: ignore[union-attr]
    assert first_two == {"a.example", "b.example"}


def test_a_channel_never_has_more_than_its_cap_in_flight() -> None:
    queue = SendQueue(32, lambda: None)
    for _ in range(QUICK_STREAK):
        send_one(queue, "h0.example")
    owner = campaign("cmp_cap", max_concurrency=3)
    assert queue.channel_room(owner.id, 3) == 3
    queue.put([claimed("h0.example", owner) for _ in range(6)])
    started = [take_now(queue) for _ in range(6)]
    assert sum(item is not None for item in started) == 3
    other = campaign("cmp_other")
    queue.put([claimed("h0.example", other)])
    assert take_now(queue) is not None  # another channel's send on the same host is not held


def test_a_cap_of_zero_claims_nothing() -> None:
    queue = SendQueue(32, lambda: None)
    assert queue.channel_room("cmp_busy_elsewhere", 0) == 0


def test_a_send_waits_for_its_rate_slot() -> None:
    queue = SendQueue(8, lambda: None)
    later = datetime.now(UTC) + timedelta(seconds=0.3)
    queue.put([claimed("a.example", not_before=later)])
    with queue._cond:
        item, wait = queue._next()
    assert item is None and 0 < wait <= 0.3
    started = time.monotonic()
    assert queue.take() is not None
    assert time.monotonic() - started >= 0.2


def test_sends_in_flight_plus_unsettled_records_never_exceed_the_threads() -> None:
    """Bounded re-sends after a crash: finished attempts must be committed before more
    sends start than there are threads."""
    queue = SendQueue(4, lambda: None)
    queue.put([claimed("a.example") for _ in range(10)])
    for _ in range(4):
        item = take_now(queue)
        assert item is not None
        queue.done(item, finished(item), sent=True)
    assert take_now(queue) is not None or True  # _next does not check the bound itself
    blocked = threading.Event()
    result: list[ClaimedNotification | None] = []

    def sender() -> None:
        blocked.set()
        result.append(queue.take())

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    blocked.wait()
    time.sleep(0.2)
    assert result == []  # four records not committed yet: no fifth send
    queue.settled(4)
    thread.join(2)
    assert result and result[0] is not None
    queue.close()


def test_idle_hosts_are_forgotten_past_the_bound_but_failing_ones_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(send_queue, "MAX_TRACKED_HOSTS", 5)
    queue = SendQueue(16, lambda: None)
    send_one(queue, "stalled.example", error="timeout")
    for n in range(10):
        send_one(queue, f"h{n}.example")
    rooms, _ = queue.rooms(time.monotonic())
    assert len(rooms) <= 6
    assert rooms["stalled.example"] == 1


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
