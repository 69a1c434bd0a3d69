"""SendQueue: per-host caps, the quick-host prefetch, and what it remembers of idle hosts."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from engine.delivery import worker
from engine.delivery.worker import PREFETCH_PER_HOST, QUICK_STREAK, SendQueue
from engine.store.claims import AttemptRecord, CampaignDelivery, ClaimedNotification

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CAMPAIGN = CampaignDelivery(
    id="cmp_1",
    workspace_id="ws_1",
    name="c",
    channel={},
    signing_secret="whsec_x",
    previous_signing_secret=None,
    previous_secret_expires_at=None,
    webhook_disabled=False,
)
_ids = itertools.count()


def claimed(host: str) -> ClaimedNotification:
    return ClaimedNotification(
        id=f"msg_{next(_ids)}",
        lease="l",
        lease_until=NOW,
        endpoint_host=host,
        attempt_count=0,
        test=False,
        request={},
        request_secrets={},
        campaign=CAMPAIGN,
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


def room(queue: SendQueue, host: str) -> int:
    rooms, new_host = queue.rooms(time.monotonic())
    return rooms.get(host, new_host)


def test_a_new_host_gets_half_the_threads() -> None:
    queue = SendQueue(4, lambda: None)
    assert room(queue, "a.example") == 2


def test_a_host_that_drains_between_sends_still_becomes_quick() -> None:
    """Sent one at a time (the host idle in between), a fast host earns the prefetch: its
    streak is remembered while it is idle, so a few threads still claim in batches."""
    queue = SendQueue(4, lambda: None)
    for _ in range(QUICK_STREAK):
        send_one(queue, "a.example")
    assert room(queue, "a.example") == queue.quick_host_cap + PREFETCH_PER_HOST


def test_a_slow_answer_ends_the_streak_and_caps_the_host() -> None:
    queue = SendQueue(16, lambda: None)
    for _ in range(QUICK_STREAK):
        send_one(queue, "a.example")
    send_one(queue, "a.example", error="timeout")
    assert room(queue, "a.example") == queue.slow_host_cap == 2


def test_idle_hosts_are_forgotten_past_the_bound_but_slow_ones_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker, "MAX_TRACKED_HOSTS", 5)
    queue = SendQueue(16, lambda: None)
    send_one(queue, "stalled.example", error="timeout")
    for n in range(10):
        send_one(queue, f"h{n}.example")
    rooms, _ = queue.rooms(time.monotonic())
    assert len(rooms) <= 6
    assert rooms["stalled.example"] == queue.slow_host_cap


def test_idle_senders_wake_when_a_long_send_ends_and_the_host_cap_grows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A send in flight for over SLOW_AFTER_SECONDS shrinks its host's cap; when it ends
    with a quick answer the cap grows back, and waiting senders are woken to use it (not
    only the sender that finished)."""
    monkeypatch.setattr(worker, "SLOW_AFTER_SECONDS", 0.2)
    queue = SendQueue(16, lambda: None)
    queue.put([claimed("a.example")])
    long_send = queue.take()
    assert long_send is not None
    time.sleep(0.3)  # in flight past SLOW_AFTER_SECONDS: the host now looks stalled
    queue.put([claimed("a.example") for _ in range(10)])
    taken: list[ClaimedNotification] = []
    lock = threading.Lock()

    def sender() -> None:
        item = queue.take()
        if item is not None:
            with lock:
                taken.append(item)

    senders = [threading.Thread(target=sender, daemon=True) for _ in range(8)]
    for thread in senders:
        thread.start()
    _wait_until(lambda: len(taken) == queue.slow_host_cap - 1)
    time.sleep(0.1)
    assert len(taken) == queue.slow_host_cap - 1  # capped: the others wait
    queue.done(long_send, finished(long_send), sent=True)
    assert queue.take() is not None  # as a sender does after done(): the freed slot is its
    _wait_until(lambda: len(taken) == queue.host_cap - 1)  # and the waiting ones fill the rest
    assert queue.in_flight == queue.host_cap
    queue.close()


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
