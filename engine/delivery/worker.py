"""The dispatcher loop and the sender threads of one worker process.

One dispatcher thread owns the outbox conversation: each cycle is one transaction that
settles finished attempts (in batches) and claims due notifications while there is room.
Claimed sends wait in a :class:`~engine.delivery.send_queue.SendQueue` that the sender
threads drain, so the threads keep sending while the dispatcher is in the database; the
queue's fair shares keep slow and dead endpoints from taking every thread. New work wakes
the dispatcher at once (``engine.store.wakeups.announce_new_notifications``, a PostgreSQL
listener, a retry timer); a periodic wake-up is only the safety net.

Claims go channel by channel (``outbox.due_channels``: each webhook channel with due work,
earliest first), and the worker's room is shared among them, so one channel's backlog never
holds back another's first notification. Each channel's take is bounded by this worker's
share of its ``max_concurrency`` (shared out among the live workers, who announce themselves
by heartbeat) and decided by ``engine.delivery.pacing`` (rate limit slots, 429 pauses, the
breaker's probe), whose state every worker shares through ``engine.store.channel_states``.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from engine import metrics
from engine.delivery import pacing
from engine.delivery.attempts import judge, send_claimed
from engine.delivery.send_queue import PREFETCH_PER_HOST, SendQueue
from engine.delivery.transport import Transport
from engine.store import Database, channel_states, outbox, wakeups, workers
from engine.store.availability import RateLimitedLog, describe, failure_class, is_unavailable_error
from engine.store.channel_states import IDLE, ChannelPace
from engine.store.claims import AttemptRecord, ClaimedNotification, SettleSummary
from engine.store.types import utcnow

logger = logging.getLogger(__name__)
#: While the database is away the loop retries twice a second: one line a kind a minute.
_unavailable_log = RateLimitedLog(60.0)

MAX_CLAIM_BATCH = 200
MAX_TRACKED_CHANNELS = 10_000
#: A worker announces itself this often, and learns who else is live; one silent for three
#: times as long is not counted when channels' max_concurrency is shared out.
HEARTBEAT_SECONDS = 1.0
LIVE_WITHIN = timedelta(seconds=3 * HEARTBEAT_SECONDS)
LOCKED_RETRY = timedelta(seconds=0.05)
#: A finished attempt waits at most this long for others to be settled with (one write
#: transaction for many: on a busy process each costs milliseconds of waiting for the GIL).
SETTLE_DELAY_SECONDS = 0.01
#: A queued send starts only while its lease outlasts its timeout by this much.
SEND_MARGIN_SECONDS = 1.0
#: In a process that also answers HTTP requests (``hookcast serve``), while requests are
#: being answered the dispatcher's cycles start at least this far apart: each then claims
#: and settles more at once, and the requests get the process in between. A delivery waits
#: up to this much longer while requests keep coming; with none, cycles run at once.
REQUESTS_FIRST_CYCLE_SECONDS = 0.05


def new_worker_id() -> str:
    """A name for this worker process, unique across hosts and restarts."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


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
        answering_requests: Callable[[], bool] | None = None,
    ) -> None:
        self.database = database
        self.transport = transport
        self.threads = threads
        self.worker_id = worker_id or new_worker_id()
        self.poll_interval = poll_interval
        self._wake_at = wake_at
        self._answering_requests = answering_requests
        self._last_cycle = 0.0
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
        self._refill = False  # a send ended while due work was left: claim when queue runs low
        self._lease_numbers = itertools.count(1)
        #: Channels whose stored pace was not idle when last seen: settling must read it.
        self._paced: dict[str, ChannelPace] = {}
        #: The endpoint hosts of each channel's last claim: a channel whose hosts are all at
        #: their cap is not queried (a dead endpoint's backlog costs no query per cycle).
        self._channel_hosts: dict[str, set[str | None]] = {}
        #: (this worker's rank, live workers) at the last heartbeat, and when that was.
        self._membership = (0, 1)
        self._last_beat = -HEARTBEAT_SECONDS
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
            refill = self._refill and self._queue.queued < self.threads
            claim = (self._announced or refill) and room > 0
            settle = bool(self._unsettled) and (
                claim
                or len(self._unsettled) >= self._queue.settle_batch
                or self._queue.blocked
                or time.monotonic() - self._unsettled_since >= SETTLE_DELAY_SECONDS
            )
            if claim or settle or self._unsent:
                self._give_requests_their_turn()
                self._last_cycle = time.monotonic()
                self._cycle(room if claim else 0)
        self._drain_on_stop()

    def _give_requests_their_turn(self) -> None:
        """See ``REQUESTS_FIRST_CYCLE_SECONDS``."""
        if self._answering_requests is None or not self._answering_requests():
            return
        wait = self._last_cycle + REQUESTS_FIRST_CYCLE_SECONDS - time.monotonic()
        if wait > 0:
            time.sleep(wait)

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
            self._refill = True  # room again for the work the last claim left behind

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
        lease = f"{self.worker_id}#{next(self._lease_numbers)}"
        claim = _Claim()
        try:
            with self.database.transaction(write=True) as session:
                if unsent:
                    outbox.release_leases(session, {c.id: c.lease for c in unsent}, now)
                summary = outbox.record_attempts(session, records, now) if records else None
                if records:
                    self._settle_paces(session, records, now)
                if time.monotonic() - self._last_beat >= HEARTBEAT_SECONDS:
                    self._beat(session, now)
                if room:
                    claim = self._claim(session, lease, now, room)
        except Exception as exc:
            if is_unavailable_error(exc):  # expected while the database is away: no traceback
                _unavailable_log(
                    logger,
                    logging.WARNING,
                    failure_class(exc),
                    f"database unavailable, settling and claiming wait: {describe(exc)}",
                )
            else:
                logger.exception("settling or claiming failed; retrying shortly")
            self._unsettled = records + self._unsettled
            self._unsent = unsent + self._unsent
            self._announced = self._announced or bool(room)
            self._separate_next = True
            time.sleep(0.5)
            return
        self._queue.settled(len(records))
        for item in unsent:
            self._claims.pop(item.id, None)
        for record in records:
            self._claims.pop(record.claimed.id, None)
        if summary is not None:
            self._after_settle(records, summary)
        if not room:
            return
        self._announced = self._refill = False
        for item in claim.items:
            self._claims[item.id] = item
        self._queue.put(claim.items)
        # Look again once a send finishes while due work was left; claim again at once when
        # the whole room was used; else wake when the next thing falls due (a pause or rate
        # slot ending, or a retry).
        self._more_due = claim.more
        if len(claim.items) >= room:
            self._announced = True
        elif claim.ready_at is not None:
            self._schedule_timer(claim.ready_at)

    def _claim(self, session: Session, lease: str, now: datetime, room: int) -> _Claim:
        """Claim from each channel with due work its fair part of ``room``."""
        claim = _Claim()
        channels = outbox.due_channels(session, now=now)
        if not channels:
            claim.ready_at = outbox.next_due_after(session, now)
            return claim
        rooms, new_host_room = self._queue.rooms(time.monotonic())
        full_hosts = [h for h, r in rooms.items() if h is not None and r == 0]
        wanted: dict[str, int] = {}
        for channel in channels:
            campaign = channel.campaign
            if campaign.webhook_disabled or not campaign.active:
                outbox.hold_due(session, campaign, now)
                continue
            self._remember_pace(campaign.id, channel.pace)
            cap = pacing.concurrency_share(
                pacing.max_concurrency(campaign.channel), *self._membership
            )
            wanted[campaign.id] = self._queue.channel_room(campaign.id, cap)
        shares = _fair_shares(wanted, room)
        saved: list[tuple[str, ChannelPace]] = []
        for channel in channels:
            campaign = channel.campaign
            share = shares.get(campaign.id, 0)
            if campaign.id not in wanted:
                continue
            hosts = self._channel_hosts.get(campaign.id)
            if hosts and all(rooms.get(host, new_host_room) <= 0 for host in hosts):
                claim.more = True  # its endpoint is at its cap here: no query until it frees
                continue
            interval = pacing.rate_interval(campaign.channel)
            pace = channel.pace
            if interval is not None or pacing.breaker_open(pace):
                locked = outbox.lock_channel(session, campaign.id)  # its state will change
                if locked is None:  # another worker is claiming it: look again shortly
                    claim.wait_until(now + LOCKED_RETRY)
                    continue
                pace = locked
            given = pacing.grant(
                pace,
                room=share,
                interval=interval,
                now=now,
                probe_seconds=outbox.lease_seconds(campaign),
            )
            if given.ready_at is not None:  # paused, or its next rate slot is ahead
                claim.wait_until(given.ready_at)
                continue
            # Due work seen: what is not taken now (no room here, a host at its cap) is
            # looked for again when a send ends.
            claim.more = True
            if not given.take:
                continue
            items = outbox.claim_channel(
                session,
                campaign,
                lease=lease,
                now=now,
                limit=given.take,
                not_before=given.slots,
                room_for_host=lambda host: rooms.get(host, new_host_room),
                full_hosts=full_hosts,
            )
            claim.items.extend(items)
            for item in items:  # later channels on the same host see what this one took
                rooms[item.endpoint_host] = rooms.get(item.endpoint_host, new_host_room) - 1
            if items:
                if len(self._channel_hosts) > MAX_TRACKED_CHANNELS:
                    self._channel_hosts.clear()
                self._channel_hosts[campaign.id] = {item.endpoint_host for item in items}
            updated = pacing.after_claim(pace, given, len(items))
            if updated is not None:
                saved.append((campaign.id, updated))
                self._remember_pace(campaign.id, updated)
            if given.slots and len(items) == given.take and updated and updated.rate_next_at:
                claim.wait_until(updated.rate_next_at - pacing.RATE_HORIZON)  # its next slots
        channel_states.save(session, saved, now)
        return claim

    def _beat(self, session: Session, now: datetime) -> None:
        """Tell the other workers this one is alive, and learn its rank among the live ones
        (the max_concurrency shares of the claims until the next beat)."""
        workers.beat(session, self.worker_id, now, live_within=LIVE_WITHIN)
        live = workers.live(session, now, live_within=LIVE_WITHIN)
        self._membership = (live.index(self.worker_id), len(live))
        self._last_beat = time.monotonic()

    def _remember_pace(self, campaign_id: str, pace: ChannelPace) -> None:
        if pace == IDLE:
            self._paced.pop(campaign_id, None)
        else:
            self._paced[campaign_id] = pace

    def _settle_paces(self, session: Session, records: list[AttemptRecord], now: datetime) -> None:
        """Apply finished attempts to their channels' shared pace (stalls, 429s, probes);
        channels with nothing to change are not touched."""
        outcomes: dict[str, list[pacing.Outcome]] = {}
        for record in records:
            if not record.claimed.test:
                outcomes.setdefault(record.claimed.campaign.id, []).append(
                    pacing.Outcome(record.error_code, record.status_code, record.retry_after)
                )
        touched = [
            cid
            for cid, found in outcomes.items()
            if pacing.needs_settling(self._paced.get(cid, IDLE), found)
        ]
        if not touched:
            return
        saved = []
        for cid, pace in channel_states.load(session, touched, for_update=True).items():
            updated = pacing.after_attempts(pace, outcomes[cid], now)
            self._remember_pace(cid, updated)
            if updated != pace:
                saved.append((cid, updated))
        channel_states.save(session, saved, now)

    def _after_settle(self, records: list[AttemptRecord], summary: SettleSummary) -> None:
        metrics.count_settled(records, summary.stale)
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
                logger.exception(
                    "sending notification %s failed unexpectedly",
                    claimed.id,
                    extra=_context(claimed),
                )
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
            except Exception as exc:
                _log_failure("releasing leases at shutdown failed; they expire on their own", exc)
        try:
            with self.database.transaction(write=True) as session:
                workers.forget(session, self.worker_id)
        except Exception as exc:  # its heartbeat goes stale on its own
            _log_failure("could not sign off at shutdown", exc)


def _log_failure(message: str, exc: Exception) -> None:
    """A warning: with the reason in one line while the database is away, else the trace."""
    if is_unavailable_error(exc):
        logger.warning("%s: %s", message, describe(exc))
    else:
        logger.warning(message, exc_info=exc)


def _context(claimed: ClaimedNotification) -> dict[str, str]:
    """The ids a structured log line carries (``LOG_FORMAT=json``)."""
    return {
        "workspace_id": claimed.campaign.workspace_id,
        "campaign_id": claimed.campaign.id,
        "notification_id": claimed.id,
    }


class _Claim:
    """What one claim took, and when to look again."""

    def __init__(self) -> None:
        self.items: list[ClaimedNotification] = []
        self.more = False
        self.ready_at: datetime | None = None

    def wait_until(self, when: datetime | None) -> None:
        if when is not None and (self.ready_at is None or when < self.ready_at):
            self.ready_at = when


def _fair_shares(wanted: dict[str, int], room: int) -> dict[str, int]:
    """Share ``room`` among channels wanting ``wanted[c]`` each: equal parts, what one
    channel leaves going to the others (water filling)."""
    shares: dict[str, int] = {}
    left = room
    pending = sorted(wanted.items(), key=lambda item: item[1])
    for index, (cid, want) in enumerate(pending):
        part = -(-left // (len(pending) - index))  # ceil: nothing is left over at the end
        shares[cid] = min(want, part, left)
        left -= shares[cid]
    return shares
