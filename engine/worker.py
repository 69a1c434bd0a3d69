"""The dispatcher loop and the sender thread pool of one worker process.

One dispatcher thread owns the outbox conversation: it settles finished attempts (in
batches, one transaction each) and claims due notifications while sender threads are free.
Sender threads only build the signed request and call the transport. New work wakes the
dispatcher at once (``engine.store.outbox.announce_new_notifications``, a PostgreSQL
listener, a retry timer); a periodic wake-up is only the safety net.

Isolation: each endpoint host may hold at most ``host_cap`` sends in flight, and a host
that looks stalled (a send in flight for over a second, or a last attempt that timed out
or was slow) only ``slow_host_cap``; hosts at their cap are left out of claims, so other
endpoints keep flowing however many requests a dead host swallows.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from engine.delivery import judge, send_claimed
from engine.store import Database, outbox
from engine.store.outbox import AttemptRecord, ClaimedNotification
from engine.store.types import utcnow
from engine.transport import Transport

logger = logging.getLogger(__name__)

SLOW_AFTER_SECONDS = 1.0
MAX_CLAIM_BATCH = 100


def new_worker_id() -> str:
    """A name for this worker process, unique across hosts and restarts."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class _HostState:
    in_flight: dict[str, float]  # notification id -> monotonic start
    slow: bool = False


class HostLimits:
    """Per-endpoint-host in-flight accounting and caps (dispatcher thread only)."""

    def __init__(self, threads: int) -> None:
        self.host_cap = max(1, threads // 2)
        self.slow_host_cap = max(1, threads // 8)
        self._hosts: dict[str | None, _HostState] = {}

    def cap(self, host: str | None, now: float) -> int:
        state = self._hosts.get(host)
        if state is None:
            return self.host_cap
        stalled = any(now - started > SLOW_AFTER_SECONDS for started in state.in_flight.values())
        return self.slow_host_cap if state.slow or stalled else self.host_cap

    def room(self, host: str | None, now: float) -> int:
        state = self._hosts.get(host)
        used = len(state.in_flight) if state else 0
        return max(0, self.cap(host, now) - used)

    def full_hosts(self, now: float) -> list[str]:
        return [h for h in self._hosts if h is not None and self.room(h, now) == 0]

    def started(self, host: str | None, notification_id: str, now: float) -> None:
        self._hosts.setdefault(host, _HostState({})).in_flight[notification_id] = now

    def finished(
        self, host: str | None, notification_id: str, error_code: str | None, duration_ms: int
    ) -> None:
        state = self._hosts.get(host)
        if state is None:
            return
        state.in_flight.pop(notification_id, None)
        state.slow = error_code in ("timeout", "connection_error") or (
            duration_ms > SLOW_AFTER_SECONDS * 1000
        )
        if not state.in_flight and not state.slow:
            del self._hosts[host]


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
        self._finished: queue.SimpleQueue[tuple[ClaimedNotification, AttemptRecord | None]] = (
            queue.SimpleQueue()
        )
        self._in_flight: dict[str, ClaimedNotification] = {}
        self._limits = HostLimits(threads)
        self._unsettled: list[AttemptRecord] = []
        self._lease_numbers = itertools.count(1)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="hookcast-sender")
        self._thread = threading.Thread(target=self._run, name="hookcast-dispatcher", daemon=True)
        self._next_timer: datetime | None = None
        self.stop_grace_seconds = 10.0

    # -- control ------------------------------------------------------------------------------

    def start(self) -> None:
        outbox.add_wake_callback(self.wake)
        self._thread.start()

    def wake(self) -> None:
        """There may be new due work: claim now (thread-safe, cheap)."""
        self._announced = True
        self._event.set()

    def stop(self, grace_seconds: float | None = None) -> None:
        """Stop claiming; let in-flight sends finish within the grace, release the rest."""
        if grace_seconds is not None:
            self.stop_grace_seconds = grace_seconds
        outbox.remove_wake_callback(self.wake)
        self._stopping = True
        self._event.set()
        if self._thread.is_alive():
            self._thread.join()
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # -- the dispatcher loop ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            if not self._event.wait(self._idle_timeout()):
                self._announced = True  # the safety-net poll, or a retry timer fell due
            self._event.clear()
            if self._next_timer is not None and self._next_timer <= utcnow():
                self._next_timer = None
                self._announced = True
            self._collect_finished()
            self._settle()
            if self._stopping:
                break
            if self._announced and self.threads - len(self._in_flight) > 0:
                self._announced = False
                try:
                    self._claim()
                except Exception:
                    logger.exception("claiming due notifications failed; retrying shortly")
                    self._announced = True
                    time.sleep(0.5)
        self._drain_on_stop()

    def _idle_timeout(self) -> float:
        timeout = self.poll_interval
        if self._wake_at is None and self._next_timer is not None:
            until = (self._next_timer - utcnow()).total_seconds()
            timeout = min(timeout, max(until, 0.0))
        if self._unsettled:
            timeout = min(timeout, 0.5)
        return timeout

    def _claim(self) -> None:
        now = utcnow()
        clock = time.monotonic()
        room = min(self.threads - len(self._in_flight), MAX_CLAIM_BATCH)
        lease = f"{self.worker_id}#{next(self._lease_numbers)}"
        with self.database.transaction(write=True) as session:
            claimed = outbox.claim_due_notifications(
                session,
                lease=lease,
                now=now,
                limit=room,
                room_for_host=lambda host: self._limits.room(host, clock),
                full_hosts=self._limits.full_hosts(clock),
            )
            next_due = None if len(claimed) >= room else outbox.next_due_at(session)
        for item in claimed:
            self._in_flight[item.id] = item
            self._limits.started(item.endpoint_host, item.id, clock)
            self._pool.submit(self._send, item)
        if len(claimed) >= room or (next_due is not None and next_due <= now):
            self._announced = True  # more is due than we had room for: claim again when free
        elif next_due is not None:
            self._schedule_timer(next_due)

    def _schedule_timer(self, when: datetime) -> None:
        current = self._next_timer
        if current is not None and utcnow() < current <= when:
            return  # an earlier wake-up is already set
        self._next_timer = when
        if self._wake_at is not None:
            self._wake_at(when)

    def _send(self, claimed: ClaimedNotification) -> None:
        record: AttemptRecord | None = None
        try:
            outcome = send_claimed(self.transport, claimed, utcnow())
            record = judge(claimed, outcome, utcnow())
        except Exception:  # a bug or a closed transport: the lease brings it back later
            logger.exception("sending notification %s failed unexpectedly", claimed.id)
        self._finished.put((claimed, record))
        self._event.set()

    def _collect_finished(self) -> None:
        while True:
            try:
                claimed, record = self._finished.get_nowait()
            except queue.Empty:
                return
            self._in_flight.pop(claimed.id, None)
            if record is not None:
                self._unsettled.append(record)
                self._limits.finished(
                    claimed.endpoint_host, claimed.id, record.error_code, record.duration_ms or 0
                )
            else:
                self._limits.finished(claimed.endpoint_host, claimed.id, "connection_error", 0)
            self._announced = True  # a thread is free again

    def _settle(self) -> None:
        if not self._unsettled:
            return
        records, self._unsettled = self._unsettled, []
        try:
            with self.database.transaction(write=True) as session:
                summary = outbox.record_attempts(session, records, utcnow())
        except Exception:
            logger.exception("recording %d attempts failed; retrying shortly", len(records))
            self._unsettled = records + self._unsettled
            return
        if summary.stale:
            logger.warning(
                "%d attempts finished after their lease ended; another claim owns them",
                len(summary.stale),
            )
        if any(r.retry_at is not None for r in records):
            earliest = min(r.retry_at for r in records if r.retry_at is not None)
            self._schedule_timer(earliest)

    def _drain_on_stop(self) -> None:
        deadline = time.monotonic() + self.stop_grace_seconds
        while self._in_flight and time.monotonic() < deadline:
            self._event.wait(min(0.2, max(deadline - time.monotonic(), 0.0)))
            self._event.clear()
            self._collect_finished()
        self._collect_finished()
        for _ in range(3):
            self._settle()
            if not self._unsettled:
                break
            time.sleep(0.2)
        if self._in_flight:
            leases = {nid: item.lease for nid, item in self._in_flight.items()}
            try:
                with self.database.transaction(write=True) as session:
                    released = outbox.release_leases(session, leases, utcnow())
                logger.info("released %d unfinished sends at shutdown", released)
            except Exception:
                logger.exception("releasing leases at shutdown failed; they expire on their own")
