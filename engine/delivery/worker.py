"""The dispatcher loop and the sender threads of one worker process.

One dispatcher thread owns the outbox conversation: each cycle is one transaction that
settles finished attempts (in batches) and claims due notifications while there is room.
Claimed sends wait in a small per-host queue (:class:`SendQueue`) that the sender threads
drain, so the threads keep sending while the dispatcher is in the database. Sender
threads only build the signed request and call the transport. New work wakes the
dispatcher at once (``engine.store.wakeups.announce_new_notifications``, a PostgreSQL
listener, a retry timer); a periodic wake-up is only the safety net.

Isolation: each endpoint host may occupy at most a few sender threads at once — half of
them for a host not seen yet, three quarters for one whose recent sends were all quick,
an eighth for a host that looks stalled (a send in flight for over a second, or a last
attempt that timed out or was slow). Only quick hosts get sends claimed ahead (prefetch);
hosts at their limit are left out of claims, so other endpoints keep flowing however many
requests a dead host swallows. A queued send whose lease would end before its timeout is
given back instead of sent.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.delivery.attempts import judge, send_claimed
from engine.delivery.transport import Transport
from engine.store import Database, outbox, wakeups
from engine.store.claims import AttemptRecord, ClaimedNotification, SettleSummary
from engine.store.types import utcnow

logger = logging.getLogger(__name__)

SLOW_AFTER_SECONDS = 1.0
MAX_CLAIM_BATCH = 200
#: Sends a quick host may have claimed ahead of the sender threads.
PREFETCH_PER_HOST = 256
#: Quick completions in a row before a host counts as quick.
QUICK_STREAK = 8
#: Idle hosts whose record (streak, slowness) is kept between sends, at most.
MAX_TRACKED_HOSTS = 10_000
#: Finished attempts are settled when the dispatcher is free, or at once when this many wait.
SETTLE_BATCH = 64
SETTLE_DELAY_SECONDS = 0.0
#: A queued send starts only while its lease outlasts its timeout by this much.
SEND_MARGIN_SECONDS = 1.0


def new_worker_id() -> str:
    """A name for this worker process, unique across hosts and restarts."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class _Host:
    queued: deque[ClaimedNotification] = field(default_factory=deque)
    in_flight: dict[str, float] = field(default_factory=dict)  # id -> monotonic start
    slow: bool = False
    quick_streak: int = 0


@dataclass
class _Finished:
    claimed: ClaimedNotification
    record: AttemptRecord | None  # None: not sent (``sent`` False) or the send crashed
    sent: bool


class SendQueue:
    """Claimed sends per endpoint host, the per-host caps, and finished attempts.

    Shared by the dispatcher (claims, collects) and the sender threads (take, done);
    every method is thread-safe.
    """

    def __init__(self, threads: int, wake_dispatcher: Callable[[], None]) -> None:
        self.host_cap = max(1, threads // 2)
        self.quick_host_cap = max(self.host_cap, threads * 3 // 4)
        self.slow_host_cap = max(1, threads // 8)
        self._wake_dispatcher = wake_dispatcher
        self._cond = threading.Condition()
        self._hosts: dict[str | None, _Host] = {}
        self._finished: list[_Finished] = []
        self._queued = 0
        self._in_flight = 0
        self._closed = False

    def _quick(self, state: _Host) -> bool:
        return not state.slow and state.quick_streak >= QUICK_STREAK

    def _cap(self, state: _Host, now: float) -> int:
        """How many of this host's sends may run at once."""
        if state.slow or any(now - t > SLOW_AFTER_SECONDS for t in state.in_flight.values()):
            return self.slow_host_cap
        return self.quick_host_cap if self._quick(state) else self.host_cap

    def rooms(self, now: float) -> tuple[dict[str | None, int], int]:
        """How many more sends each known host may be claimed, and the room of a new host."""
        with self._cond:
            rooms = {}
            for host, state in self._hosts.items():
                cap = self._cap(state, now)
                limit = cap + PREFETCH_PER_HOST if self._quick(state) and cap > 1 else cap
                rooms[host] = max(0, limit - len(state.queued) - len(state.in_flight))
            return rooms, self.host_cap

    @property
    def outstanding(self) -> int:
        """Sends queued or in flight."""
        return self._queued + self._in_flight

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def put(self, items: list[ClaimedNotification]) -> None:
        with self._cond:
            for item in items:
                self._hosts.setdefault(item.endpoint_host, _Host()).queued.append(item)
            self._queued += len(items)
            self._cond.notify(len(items))

    def take(self) -> ClaimedNotification | None:
        """The next send a sender thread may start (blocks); None once closed."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                for state in self._hosts.values():
                    if state.queued and len(state.in_flight) < self._cap(state, now):
                        item = state.queued.popleft()
                        state.in_flight[item.id] = now
                        self._queued -= 1
                        self._in_flight += 1
                        return item
                self._cond.wait()
            return None

    def done(self, item: ClaimedNotification, record: AttemptRecord | None, sent: bool) -> None:
        """A sender thread finished ``item``: free its slot and hand the result over.

        Only sender threads call this, each calling :meth:`take` next."""
        with self._cond:
            state = self._hosts.get(item.endpoint_host)
            now = time.monotonic()
            cap_before = self._cap(state, now) if state is not None else 0
            if state is not None and state.in_flight.pop(item.id, None) is not None:
                self._in_flight -= 1
                if sent:
                    slow = record is None or (
                        record.error_code in ("timeout", "connection_error")
                        or (record.duration_ms or 0) > SLOW_AFTER_SECONDS * 1000
                    )
                    state.slow = slow
                    state.quick_streak = 0 if slow else state.quick_streak + 1
                if not (state.queued or state.in_flight or state.slow or state.quick_streak):
                    del self._hosts[item.endpoint_host]  # nothing worth remembering
                elif len(self._hosts) > MAX_TRACKED_HOSTS:
                    self._forget_idle_hosts()
                grown = self._cap(state, now) - cap_before
                if grown > 0 and state.queued:
                    self._cond.notify(grown)  # its cap grew: that many more sends may start
                # The slot freed here needs no wake-up: the calling sender takes next.
            self._finished.append(_Finished(item, record, sent))
            count = len(self._finished)
            starving = self._queued == 0
        if count == 1 or count >= SETTLE_BATCH or starving:
            self._wake_dispatcher()

    def _forget_idle_hosts(self) -> None:
        """Drop what is known of hosts with nothing queued or in flight (bounded memory);
        slow ones are kept, so a stalled endpoint stays capped."""
        idle = [h for h, s in self._hosts.items() if not (s.queued or s.in_flight or s.slow)]
        for host in idle:
            del self._hosts[host]

    def collect(self) -> list[_Finished]:
        with self._cond:
            finished, self._finished = self._finished, []
            return finished

    def drop_queued(self) -> list[ClaimedNotification]:
        """Take every send not started yet out of the queue (shutdown)."""
        with self._cond:
            dropped = [item for state in self._hosts.values() for item in state.queued]
            for state in self._hosts.values():
                state.queued.clear()
            self._queued = 0
            return dropped

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Worker:
    """Claims due notifications and sends them on ``threads`` sender threads."""

    def __init__(
        self,
        database: Database,
        transport: Transport,
        *,
        threads: int = 16,
        worker_id: str | None = None,
        poll_interval: float = 5.0,
        wake_at: Callable[[datetime], None] | None = None,
    ) -> None:
        self.database = database
        self.transport = transport
        self.threads = threads
        self.worker_id = worker_id or new_worker_id()
        self.poll_interval = poll_interval
        self._wake_at = wake_at
        self._event = threading.Event()
        self._announced = True  # look for work once at start
        self._stopping = False
        self._queue = SendQueue(threads, self._event.set)
        self._max_outstanding = threads + 2 * PREFETCH_PER_HOST
        self._claims: dict[str, ClaimedNotification] = {}  # claimed, not yet settled
        self._unsettled: list[AttemptRecord] = []
        self._unsettled_since = 0.0
        self._unsent: list[ClaimedNotification] = []
        self._separate_next = False
        self._more_due = False  # the last claim left due work behind (no room for it)
        self._lease_numbers = itertools.count(1)
        self._senders = [
            threading.Thread(target=self._sender, name=f"hookcast-sender-{n}", daemon=True)
            for n in range(threads)
        ]
        self._thread = threading.Thread(target=self._run, name="hookcast-dispatcher", daemon=True)
        self._next_timer: datetime | None = None
        self.stop_grace_seconds = 10.0

    # -- control ------------------------------------------------------------------------------

    def start(self) -> None:
        wakeups.add_wake_callback(self.wake)
        for sender in self._senders:
            sender.start()
        self._event.set()  # look for due work at once, not after the first poll interval
        self._thread.start()

    def wake(self) -> None:
        """There may be new due work: claim now (thread-safe, cheap)."""
        self._announced = True
        self._event.set()

    def stop(self, grace_seconds: float | None = None) -> None:
        """Stop claiming; let in-flight sends finish within the grace, release the rest."""
        if grace_seconds is not None:
            self.stop_grace_seconds = grace_seconds
        wakeups.remove_wake_callback(self.wake)
        self._stopping = True
        self._event.set()
        if self._thread.is_alive():
            self._thread.join()
        self._queue.close()

    @property
    def in_flight(self) -> int:
        """Sends running right now (claimed sends still queued are not counted)."""
        return self._queue.in_flight

    # -- the dispatcher loop ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            if not self._event.wait(self._idle_timeout()) and not self._unsettled:
                self._announced = True  # the safety-net poll, or a retry timer fell due
            self._event.clear()
            if self._next_timer is not None and self._next_timer <= utcnow():
                self._next_timer = None
                self._announced = True
            self._collect_finished()
            if self._stopping:
                break
            room = min(self._max_outstanding - self._queue.outstanding, MAX_CLAIM_BATCH)
            claim = self._announced and room > 0
            settle = bool(self._unsettled) and (
                claim
                or len(self._unsettled) >= SETTLE_BATCH
                or time.monotonic() - self._unsettled_since >= SETTLE_DELAY_SECONDS
            )
            if claim or settle or self._unsent:
                self._cycle(room if claim else 0)
        self._drain_on_stop()

    def _idle_timeout(self) -> float:
        timeout = self.poll_interval
        if self._wake_at is None and self._next_timer is not None:
            until = (self._next_timer - utcnow()).total_seconds()
            timeout = min(timeout, max(until, 0.0))
        if self._unsettled:
            due = self._unsettled_since + SETTLE_DELAY_SECONDS - time.monotonic()
            timeout = min(timeout, max(due, 0.0))
        return timeout

    def _collect_finished(self) -> None:
        finished = self._queue.collect()
        if finished and not self._unsettled:
            self._unsettled_since = time.monotonic()
        for done in finished:
            if done.record is not None:
                self._unsettled.append(done.record)
            elif not done.sent:
                self._unsent.append(done.claimed)
            else:  # the send crashed: its lease brings it back later
                self._claims.pop(done.claimed.id, None)
        if finished and self._more_due:
            self._announced = True  # room again for the work the last claim left behind

    def _cycle(self, room: int) -> None:
        """One transaction: give back unsent claims, settle finished attempts, claim more."""
        if not (room or self._unsettled or self._unsent):
            return
        if self._separate_next and room and (self._unsettled or self._unsent):
            self._separate_next = False
            self._cycle(0)  # the last combined cycle failed: settle on its own first
        records, self._unsettled = self._unsettled, []
        unsent, self._unsent = self._unsent, []
        now = utcnow()
        clock = time.monotonic()
        rooms, new_host_room = self._queue.rooms(clock)
        lease = f"{self.worker_id}#{next(self._lease_numbers)}"
        claimed: list[ClaimedNotification] = []
        next_due = None
        try:
            with self.database.transaction(write=True) as session:
                if unsent:
                    outbox.release_leases(session, {c.id: c.lease for c in unsent}, now)
                summary = outbox.record_attempts(session, records, now) if records else None
                if room:
                    claimed = outbox.claim_due_notifications(
                        session,
                        lease=lease,
                        now=now,
                        limit=room,
                        room_for_host=lambda host: rooms.get(host, new_host_room),
                        full_hosts=[h for h, r in rooms.items() if h is not None and r == 0],
                    )
                    if not claimed:  # idle: when is the next thing due?
                        next_due = outbox.next_due_at(session)
        except Exception:
            logger.exception("settling or claiming failed; retrying shortly")
            self._unsettled = records + self._unsettled
            self._unsent = unsent + self._unsent
            self._announced = self._announced or bool(room)
            self._separate_next = True
            time.sleep(0.5)
            return
        for item in unsent:
            self._claims.pop(item.id, None)
        for record in records:
            self._claims.pop(record.claimed.id, None)
        if summary is not None:
            self._after_settle(records, summary)
        if not room:
            return
        self._announced = False
        for item in claimed:
            self._claims[item.id] = item
        self._queue.put(claimed)
        # After a claim that found work, look again once a send finishes (more may wait for
        # a busy host); an empty claim read ``next_due``, which says whether rows still wait.
        full = len(claimed) >= room or (next_due is not None and next_due <= now)
        self._more_due = full or bool(claimed)
        if full:
            self._announced = True  # more is due than we had room for: claim again when free
        elif next_due is not None:
            self._schedule_timer(next_due)

    def _after_settle(self, records: list[AttemptRecord], summary: SettleSummary) -> None:
        if summary.stale:
            logger.warning(
                "%d attempts finished after their lease ended; another claim owns them",
                len(summary.stale),
            )
        retries = [r.retry_at for r in records if r.retry_at is not None]
        if retries:
            self._schedule_timer(min(retries))

    def _schedule_timer(self, when: datetime) -> None:
        current = self._next_timer
        if current is not None and utcnow() < current <= when:
            return  # an earlier wake-up is already set
        self._next_timer = when
        if self._wake_at is not None:
            self._wake_at(when)

    # -- sender threads -----------------------------------------------------------------------

    def _sender(self) -> None:
        while True:
            claimed = self._queue.take()
            if claimed is None:
                return
            record: AttemptRecord | None = None
            sent = True
            try:
                now = utcnow()
                margin = timedelta(seconds=claimed.campaign.timeout_seconds + SEND_MARGIN_SECONDS)
                if now + margin > claimed.lease_until:
                    sent = False  # waited too long in the queue: give it back, claim again
                else:
                    outcome = send_claimed(self.transport, claimed, now)
                    record = judge(claimed, outcome, utcnow())
            except Exception:  # a bug or a closed transport: the lease brings it back later
                logger.exception("sending notification %s failed unexpectedly", claimed.id)
            self._queue.done(claimed, record, sent)

    # -- shutdown -----------------------------------------------------------------------------

    def _drain_on_stop(self) -> None:
        self._unsent.extend(self._queue.drop_queued())
        deadline = time.monotonic() + self.stop_grace_seconds
        while self._queue.in_flight and time.monotonic() < deadline:
            self._event.wait(min(0.2, max(deadline - time.monotonic(), 0.0)))
            self._event.clear()
            self._collect_finished()
        self._collect_finished()
        for _ in range(3):
            self._cycle(0)
            if not self._unsettled and not self._unsent:
                break
        if self._claims:  # still in flight after the grace: give them back
            leases = {nid: item.lease for nid, item in self._claims.items()}
            try:
                with self.database.transaction(write=True) as session:
                    released = outbox.release_leases(session, leases, utcnow())
                logger.info("released %d unfinished sends at shutdown", released)
            except Exception:
                logger.exception("releasing leases at shutdown failed; they expire on their own")
