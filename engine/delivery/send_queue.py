"""Claimed sends waiting for a sender thread, and the fair shares that decide which goes next.

The dispatcher puts claimed sends in; sender threads take them out one at a time. Which
send may start is decided here, so that a slow or dead endpoint never holds up the rest:

- **Endpoints in turn**: hosts with waiting sends are served round robin, not in the order
  their sends were claimed, so one channel's backlog never queues ahead of another's first.
- **Per-host caps by what the host has shown**: a host not seen yet gets one send until it
  answers; a host whose last send was quick, three quarters; a slow one
  (answered after a second or more, or a quick host with a send in flight that long) up to
  all but the reserve; a failing one (its last send timed out or could not connect) one
  send at a time.
- **Shares**: hosts that have not shown themselves quick (new, slow, failing) together hold
  at most all threads but a quarter — the reserve stays for quick hosts; hosts that have
  not answered (new, failing) together at most half, so slow hosts that do answer keep
  threads too (a new host's first send may go beyond that half by an eighth of the
  threads, so a newcomer is not stuck behind dead hosts); failing hosts together at most
  a quarter. However many endpoints fail at once, endpoints that answer have threads.
- **Channels**: at most this worker's share of the channel's ``max_concurrency`` in flight
  here; with a rate limit, a send does not start before its slot (``not_before``), nor
  sooner than nine tenths of an interval after the channel's previous one from here (a
  send that was late for its slot does not bunch up with the next).
- **Settle before sending more**: sends in flight plus finished attempts not yet committed
  never exceed the thread count, so a worker killed at any moment has at most that many
  sends that went out without a record — the most that can be sent twice.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from engine.delivery.pacing import STALL_ERRORS, max_concurrency, rate_interval
from engine.store.claims import AttemptRecord, ClaimedNotification
from engine.store.types import utcnow

SLOW_AFTER_SECONDS = 1.0
#: Sends a quick host may have claimed ahead of the sender threads.
PREFETCH_PER_HOST = 256
#: Quick completions in a row before a host counts as quick enough to claim ahead for.
QUICK_STREAK = 8
#: Idle hosts whose record (streak, state) is kept between sends, at most.
MAX_TRACKED_HOSTS = 10_000
#: Finished attempts are settled after SETTLE_DELAY_SECONDS (worker), or at once when half
#: the threads' worth wait, or when senders wait for them to be committed.
#: How far down one host's queue a sender looks for a send whose channel has room.
SCAN_DEPTH = 32

NEW, QUICK, SLOW, FAILING = "new", "quick", "slow", "failing"


@dataclass
class _Host:
    queued: deque[ClaimedNotification] = field(default_factory=deque)
    in_flight: dict[str, tuple[float, str]] = field(default_factory=dict)  # id -> start, kind
    state: str = NEW
    quick_streak: int = 0


@dataclass
class _Channel:
    cap: int
    in_flight: int = 0
    outstanding: int = 0  # queued or in flight here
    quick_streak: int = 0
    last_paced_start: float = float("-inf")  # monotonic start of its last rate-limited send


@dataclass
class Finished:
    claimed: ClaimedNotification
    record: AttemptRecord | None  # None: not sent (``sent`` False) or the send crashed
    sent: bool


class SendQueue:
    """Claimed sends per endpoint host, the shares, and finished attempts.

    Shared by the dispatcher (put, rooms, collect, settled) and the sender threads (take,
    done); every method is thread-safe.
    """

    def __init__(self, threads: int, wake_dispatcher: Callable[[], None]) -> None:
        self.threads = threads
        self.reserve = max(1, threads // 4)
        self.unproven_share = max(1, threads - self.reserve)
        self.unanswered_share = max(1, threads // 2)
        self.failing_share = max(1, threads // 4)
        self.new_host_cap = 1
        self.first_sends = max(1, threads // 8)
        self.quick_host_cap = max(1, threads * 3 // 4)
        self.settle_batch = max(1, threads // 2)
        self._wake_dispatcher = wake_dispatcher
        self._cond = threading.Condition()
        self._hosts: dict[str | None, _Host] = {}
        self._turns: deque[str | None] = deque()  # hosts with queued sends, in serving order
        self._channels: dict[str, _Channel] = {}
        self._finished: list[Finished] = []
        self._queued = 0
        self._in_flight = 0
        self._unsettled = 0  # attempts finished here and not yet committed
        self._unproven = 0  # in flight to hosts not quick when they started
        self._unanswered = 0  # … to hosts new or failing when they started
        self._failing = 0
        self._closed = False

    # -- what the dispatcher asks ---------------------------------------------------------

    def _kind(self, state: _Host, now: float) -> str:
        """The host's standing: its last completed send, or a quick host whose sends now
        take over a second (slow). A new host keeps the new host's cap until one answers."""
        if state.state == QUICK and any(
            now - start > SLOW_AFTER_SECONDS for start, _ in state.in_flight.values()
        ):
            return SLOW
        return state.state

    def _host_cap(self, kind: str) -> int:
        return {
            NEW: self.new_host_cap,
            QUICK: self.quick_host_cap,
            SLOW: self.unproven_share,
            FAILING: 1,
        }[kind]

    def _prefetching(self, state: _Host) -> bool:
        return state.state == QUICK and state.quick_streak >= QUICK_STREAK

    def rooms(self, now: float) -> tuple[dict[str | None, int], int]:
        """How many more sends each known host may be claimed, and the room of a new host."""
        with self._cond:
            rooms = {}
            for host, state in self._hosts.items():
                cap = self._host_cap(self._kind(state, now))
                if self._prefetching(state) and cap > 1:
                    cap += PREFETCH_PER_HOST
                rooms[host] = max(0, cap - len(state.queued) - len(state.in_flight))
            return rooms, self.new_host_cap

    def channel_room(self, campaign_id: str, cap: int) -> int:
        """Set the channel's cap here (its ``max_concurrency`` less what other workers
        hold) and say how many more of its sends may be claimed."""
        with self._cond:
            channel = self._channels.get(campaign_id)
            if channel is None:
                if cap <= 0:
                    return 0
                channel = self._channels[campaign_id] = _Channel(cap)
            channel.cap = cap
            ahead = PREFETCH_PER_HOST if channel.quick_streak >= QUICK_STREAK else 0
            return max(0, cap + ahead - channel.outstanding) if cap > 0 else 0

    @property
    def outstanding(self) -> int:
        """Sends queued or in flight."""
        return self._queued + self._in_flight

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def blocked(self) -> bool:
        """Sends wait for finished attempts to be committed (settle now)."""
        return bool(self._queued) and self._in_flight + self._unsettled >= self.threads

    @property
    def queued(self) -> int:
        """Claimed sends not started yet."""
        return self._queued

    def put(self, items: list[ClaimedNotification]) -> None:
        with self._cond:
            for item in items:
                state = self._hosts.get(item.endpoint_host)
                if state is None:
                    state = self._hosts[item.endpoint_host] = _Host()
                if not state.queued:
                    self._turns.append(item.endpoint_host)
                state.queued.append(item)
                channel = self._channels.get(item.campaign.id)
                if channel is None:  # claimed without a cap set: the channel's own maximum
                    cap = max_concurrency(item.campaign.channel)
                    channel = self._channels[item.campaign.id] = _Channel(cap)
                channel.outstanding += 1
            self._queued += len(items)
            self._cond.notify(len(items))

    # -- sender threads -------------------------------------------------------------------

    def take(self) -> ClaimedNotification | None:
        """The next send a sender thread may start (blocks); None once closed."""
        with self._cond:
            while not self._closed:
                wait: float | None = None
                if self._in_flight + self._unsettled < self.threads:
                    item, wait = self._next()
                    if item is not None:
                        return item
                elif self._queued:
                    self._wake_dispatcher()  # sends wait for records to be committed
                self._cond.wait(wait)
            return None

    def _next(self) -> tuple[ClaimedNotification | None, float | None]:
        """Start the next eligible send, serving hosts in turn; else how long to wait for a
        rate-limit slot (None: until something changes)."""
        now = time.monotonic()
        clock: datetime | None = None
        soonest: float | None = None
        for _ in range(len(self._turns)):
            host = self._turns[0]
            self._turns.rotate(-1)
            state = self._hosts[host]
            kind = self._kind(state, now)
            if len(state.in_flight) >= self._host_cap(kind):
                continue
            if kind != QUICK and self._unproven >= self.unproven_share:
                continue
            if kind in (NEW, FAILING) and self._unanswered >= self._unanswered_room(
                first=kind == NEW and not state.in_flight
            ):
                continue
            if kind == FAILING and self._failing >= self.failing_share:
                continue
            for index, item in enumerate(state.queued):
                if index >= SCAN_DEPTH:
                    break
                channel = self._channels[item.campaign.id]
                if channel.in_flight >= channel.cap:
                    continue
                if item.not_before is not None:
                    clock = clock or utcnow()
                    early = max(
                        (item.not_before - clock).total_seconds(),
                        # a send late for its slot does not bunch up with the next one
                        channel.last_paced_start + _spacing(item) - now,
                    )
                    if early > 0:
                        soonest = early if soonest is None else min(soonest, early)
                        continue
                    channel.last_paced_start = now
                del state.queued[index]
                if not state.queued:
                    self._turns.remove(host)
                state.in_flight[item.id] = (now, kind)
                channel.in_flight += 1
                self._queued -= 1
                self._in_flight += 1
                self._count(kind, 1)
                return item, None
        return None, soonest

    def _unanswered_room(self, *, first: bool) -> int:
        """How many sends hosts that have not answered may hold: half the threads, and an
        eighth more for a new host's first send."""
        return self.unanswered_share + (self.first_sends if first else 0)

    def _count(self, kind: str, change: int) -> None:
        if kind != QUICK:
            self._unproven += change
        if kind in (NEW, FAILING):
            self._unanswered += change
        if kind == FAILING:
            self._failing += change

    def done(self, item: ClaimedNotification, record: AttemptRecord | None, sent: bool) -> None:
        """A sender thread finished ``item``: free its slot and hand the result over.

        Only sender threads call this, each calling :meth:`take` next."""
        with self._cond:
            state = self._hosts.get(item.endpoint_host)
            started = state.in_flight.pop(item.id, None) if state is not None else None
            if state is not None and started is not None:
                self._in_flight -= 1
                kind = started[1]
                self._count(kind, -1)
                channel = self._channels.get(item.campaign.id)
                if channel is not None:
                    channel.in_flight -= 1
                    channel.outstanding -= 1
                    if sent:
                        quick = record is not None and not _slow(record)
                        channel.quick_streak = channel.quick_streak + 1 if quick else 0
                    if channel.outstanding <= 0 and not channel.quick_streak:
                        del self._channels[item.campaign.id]
                if sent:
                    self._learn(state, record)
                if not (state.queued or state.in_flight) and state.state == NEW:
                    del self._hosts[item.endpoint_host]  # nothing worth remembering
                elif len(self._hosts) > MAX_TRACKED_HOSTS:
                    self._forget_idle_hosts()
                if kind != QUICK and self._queued:
                    # a share for hosts that are not quick grew: another sender may start
                    self._cond.notify()
            if record is not None:
                self._unsettled += 1
            self._finished.append(Finished(item, record, sent))
            count = len(self._finished)
            starving = self._queued == 0
        if count == 1 or count >= self.settle_batch or starving:
            self._wake_dispatcher()

    def _learn(self, state: _Host, record: AttemptRecord | None) -> None:
        if record is None or record.error_code in STALL_ERRORS:
            state.state, state.quick_streak = FAILING, 0
        elif _slow(record):
            state.state, state.quick_streak = SLOW, 0
        else:
            state.state, state.quick_streak = QUICK, state.quick_streak + 1

    def _forget_idle_hosts(self) -> None:
        """Drop what is known of idle quick hosts (bounded memory); hosts that are slow or
        failing are kept, so they stay capped."""
        idle = [
            h
            for h, s in self._hosts.items()
            if not (s.queued or s.in_flight) and s.state in (NEW, QUICK)
        ]
        for host in idle:
            del self._hosts[host]

    # -- finished attempts ----------------------------------------------------------------

    def collect(self) -> list[Finished]:
        with self._cond:
            finished, self._finished = self._finished, []
            return finished

    def settled(self, count: int) -> None:
        """``count`` finished attempts are committed: that many more sends may start."""
        if count:
            with self._cond:
                self._unsettled -= count
                self._cond.notify(count)

    def drop_queued(self) -> list[ClaimedNotification]:
        """Take every send not started yet out of the queue (shutdown)."""
        with self._cond:
            dropped = [item for state in self._hosts.values() for item in state.queued]
            for state in self._hosts.values():
                state.queued.clear()
            self._turns.clear()
            for item in dropped:
                channel = self._channels.get(item.campaign.id)
                if channel is not None:
                    channel.outstanding -= 1
            self._queued = 0
            return dropped

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _spacing(item: ClaimedNotification) -> float:
    """The least time between two of this channel's rate-limited sends from this process."""
    return (rate_interval(item.campaign.channel) or 0.0) * 0.9


def _slow(record: AttemptRecord) -> bool:
    return (record.duration_ms or 0) > SLOW_AFTER_SECONDS * 1000
