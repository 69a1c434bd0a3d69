"""The outbox: notifications as rows that workers claim, send and settle.

Every query of the delivery path lives here: claiming due notifications under leases,
recording attempts and scheduling retries. Endpoint health (failure streaks, alerts,
disabling, holding and releasing) is :mod:`engine.store.health`, which settling calls;
announcing new work is :mod:`engine.store.wakeups`.

Leases: a claim sets ``status='sending'``, ``leased_by`` to a token unique to that claim
and ``next_attempt_at`` to the lease's end (the channel's timeout plus a margin). A worker
that dies leaves the row due again once the lease ends, and the next claim takes it; the
``webhook-id`` stays the notification id. A settlement only counts when the row still
carries the claim's token, so a late worker cannot overwrite a newer claim's result.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Text, bindparam, cast, func, select, text, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from engine import crypto
from engine.store import channel_states
from engine.store.bulk import COPY_FROM_ROWS, fetch_rows, insert_rows, is_in
from engine.store.channel_states import ChannelPace
from engine.store.claims import (
    AttemptRecord,
    CampaignDelivery,
    ClaimedNotification,
    SettleSummary,
    lease_seconds,
)
from engine.store.health import (
    hold,
    hold_notifications,
    status_after_release,
    update_health,
)
from engine.store.models import Attempt, Campaign, Notification
from engine.store.pipeline import one_round_trip
from engine.store.types import UTCDateTime
from engine.store.wakeups import announce_new_notifications

MAX_STORED_BODY_BYTES = 65536


# Written out literally so PostgreSQL matches the partial indexes on open notifications.
_DUE_STATUSES_SQL = text("notifications.status IN ('pending', 'retrying', 'sending')")

# -- claiming ---------------------------------------------------------------------------------


_N = Notification.__table__
_C = Campaign.__table__
_A = Attempt.__table__
_RAW_SECRETS = type_coerce(_N.c.request_secrets, Text()).label("secrets_token")
# The stored request as JSON text: a claim reads more candidates than it takes (hosts at
# their cap are skipped), and only the ones taken are worth decoding.
_RAW_REQUEST = cast(_N.c.request, Text()).label("request_json")
_CAMPAIGN_MAX_AGE_SECONDS = 60.0


class CampaignCache:
    """Campaigns' delivery settings (secrets decrypted), reused while ``updated_at`` holds.

    Every claim still reads each campaign's ``updated_at`` and ``webhook_disabled`` (cheap,
    no decryption); a campaign is loaded again when either changed, or after a minute.
    Thread-safe; one per process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[datetime, bool, float, CampaignDelivery]] = {}

    def load(
        self,
        session: Session,
        ids: Collection[str],
        versions: Iterable[tuple[str, datetime, bool]] | None = None,
    ) -> dict[str, CampaignDelivery]:
        """The delivery settings of the campaigns ``ids`` that still exist.

        ``versions`` (id, updated_at, webhook_disabled), when the caller already read them,
        saves the query that checks them.
        """
        clock = time.monotonic()
        found: dict[str, CampaignDelivery] = {}
        stale: list[str] = []
        rows = versions
        if rows is None:
            rows = session.execute(
                select(_C.c.id, _C.c.updated_at, _C.c.webhook_disabled).where(
                    is_in(session, _C.c.id, ids)
                )
            ).all()
        with self._lock:
            for cid, updated_at, disabled in rows:
                entry = self._entries.get(cid)
                if (
                    entry is not None
                    and entry[0] == updated_at
                    and entry[1] == bool(disabled)
                    and clock - entry[2] < _CAMPAIGN_MAX_AGE_SECONDS
                ):
                    found[cid] = entry[3]
                else:
                    stale.append(cid)
        if stale:
            for campaign in session.scalars(select(Campaign).where(Campaign.id.in_(stale))):
                delivery = CampaignDelivery.from_row(campaign)
                found[campaign.id] = delivery
                with self._lock:
                    self._entries[campaign.id] = (
                        campaign.updated_at,
                        delivery.webhook_disabled,
                        clock,
                        delivery,
                    )
        return found


class _SecretsCache:
    """Decrypted ``request_secrets`` by stored token (a batch of notifications shares one)."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._values: dict[str, Mapping[str, str]] = {}

    def open(self, token: str | None) -> Mapping[str, str]:
        if not token:
            return {}
        with self._lock:
            value = self._values.get(token)
        if value is None:
            value = json.loads(crypto.decrypt(token)) or {}
            with self._lock:
                if len(self._values) >= self._size:
                    self._values.clear()
                self._values[token] = value
        return value


campaign_cache = CampaignCache()
_secrets = _SecretsCache()


@dataclass(frozen=True)
class DueChannel:
    """A channel with notifications due now: its delivery settings, earliest due time and
    stored pacing state (as read, unlocked: see :func:`lock_channel`)."""

    campaign: CampaignDelivery
    due_at: datetime
    pace: ChannelPace


# Channels with open notifications, found by skipping through ix_notifications_open_by_campaign
# (one index seek per channel however many rows each has), each with its earliest due time
# and its pacing state.
_DUE_CHANNELS_SQL = """
WITH RECURSIVE open_channels(cid) AS (
    SELECT min(campaign_id) FROM notifications
    WHERE status IN ('pending', 'retrying', 'sending')
    UNION ALL
    SELECT (SELECT min(n.campaign_id) FROM notifications n
            WHERE n.status IN ('pending', 'retrying', 'sending') AND n.campaign_id > o.cid)
    FROM open_channels o WHERE o.cid IS NOT NULL
),
due AS (
    SELECT o.cid AS cid,
           (SELECT min(n.next_attempt_at) FROM notifications n
            WHERE n.campaign_id = o.cid
              AND n.status IN ('pending', 'retrying', 'sending')) AS due_at
    FROM open_channels o WHERE o.cid IS NOT NULL
)
SELECT c.id, c.updated_at, c.webhook_disabled, due.due_at,
       cs.rate_next_at, cs.paused_until, cs.pause_reason, cs.stalls, cs.throttles
FROM due
JOIN campaigns c ON c.id = due.cid
LEFT JOIN channel_states cs ON cs.campaign_id = c.id
WHERE due.due_at <= :now
"""


#: Built once: every dispatcher cycle that claims runs it.
_DUE_CHANNELS = (
    text(_DUE_CHANNELS_SQL)
    .bindparams(bindparam("now", type_=UTCDateTime()))
    .columns(
        updated_at=UTCDateTime(),
        due_at=UTCDateTime(),
        rate_next_at=UTCDateTime(),
        paused_until=UTCDateTime(),
    )
)


def due_channels(session: Session, *, now: datetime) -> list[DueChannel]:
    """Channels with notifications due at ``now``, earliest due first.

    The caller claims from them with :func:`claim_channel` (after :func:`lock_channel` for
    a channel whose pacing state it will change) and commits."""
    rows = session.execute(_DUE_CHANNELS, {"now": now}).all()
    if not rows:
        return []
    campaigns = campaign_cache.load(
        session,
        [row.id for row in rows],
        [(r.id, r.updated_at, bool(r.webhook_disabled)) for r in rows],
    )
    due = []
    for row in rows:
        campaign = campaigns.get(row.id)
        if campaign is None:
            continue
        pace = ChannelPace(
            row.rate_next_at,
            row.paused_until,
            row.pause_reason,
            row.stalls or 0,
            row.throttles or 0,
        )
        due.append(DueChannel(campaign, row.due_at, pace))
    due.sort(key=lambda channel: channel.due_at)
    return due


def lock_channel(session: Session, campaign_id: str) -> ChannelPace | None:
    """Lock a channel for a claim that changes its pacing state (a rate slot, a probe) and
    read that state afresh; None when another worker holds it right now (PostgreSQL: it is
    skipped, not waited for). Settling locks the same row, so the two never interleave."""
    if session.get_bind().dialect.name == "postgresql":
        locked = session.execute(
            select(_C.c.id)
            .where(_C.c.id == campaign_id)
            .with_for_update(key_share=True, skip_locked=True, of=_C)
        ).first()
        if locked is None:
            return None
    return channel_states.load(session, [campaign_id])[campaign_id]


def hold_due(session: Session, campaign: CampaignDelivery, now: datetime) -> int:
    """Hold the due notifications of a disabled or inactive webhook instead of sending them."""
    reason = "webhook_disabled" if campaign.webhook_disabled else "webhook_inactive"
    where = (_N.c.campaign_id == campaign.id) & _DUE_STATUSES_SQL & (_N.c.next_attempt_at <= now)
    return hold(session, where, reason, now)


def claim_channel(
    session: Session,
    campaign: CampaignDelivery,
    *,
    lease: str,
    now: datetime,
    limit: int,
    not_before: Sequence[datetime] = (),
    room_for_host: Callable[[str | None], int] | None = None,
    full_hosts: Collection[str] = (),
) -> list[ClaimedNotification]:
    """Lease up to ``limit`` of one channel's due notifications, earliest due first.

    Correct with any number of workers: on PostgreSQL the rows are locked with ``FOR UPDATE
    SKIP LOCKED`` (concurrent claimers take different rows); on SQLite the session is a
    write transaction, so claimers take turns. ``not_before``: the rate limit's slot of each
    send, in claim order (the lease lasts until the last slot's send can end).
    ``full_hosts`` are left out; ``room_for_host`` says how many more sends each other host
    may take. The caller commits.
    """
    if limit < 1:
        return []
    query = (
        select(
            _N.c.id, _N.c.endpoint_host, _N.c.attempt_count, _N.c.test, _RAW_REQUEST, _RAW_SECRETS
        )
        .where(_N.c.campaign_id == campaign.id, _DUE_STATUSES_SQL, _N.c.next_attempt_at <= now)
        .order_by(_N.c.next_attempt_at)
        .limit(limit + min(limit, 50) if room_for_host is not None else limit)
        .with_for_update(skip_locked=True, of=_N)
    )
    if full_hosts:
        query = query.where(
            _N.c.endpoint_host.is_(None) | _N.c.endpoint_host.not_in(list(full_hosts))
        )
    start = not_before[-1] if not_before else now
    lease_until = start + timedelta(seconds=lease_seconds(campaign))
    taken: dict[str | None, int] = {}
    rooms: dict[str | None, int] = {}
    claimed: list[ClaimedNotification] = []
    for nid, host, attempt_count, test, request_json, secrets_token in fetch_rows(session, query):
        if len(claimed) >= limit:
            break
        if room_for_host is not None:
            if host not in rooms:
                rooms[host] = room_for_host(host)
            if taken.get(host, 0) >= rooms[host]:
                continue
        taken[host] = taken.get(host, 0) + 1
        claimed.append(
            ClaimedNotification(
                id=nid,
                lease=lease,
                lease_until=lease_until,
                endpoint_host=host,
                attempt_count=attempt_count,
                test=bool(test),
                request=json.loads(request_json) if request_json else {},
                request_secrets=_secrets.open(secrets_token),
                campaign=campaign,
                not_before=not_before[len(claimed)] if not_before else None,
            )
        )
    if claimed:
        session.execute(
            update(_N)
            .where(is_in(session, _N.c.id, [item.id for item in claimed]))
            .values(status="sending", leased_by=lease, next_attempt_at=lease_until, updated_at=now)
        )
    return claimed


def next_due_after(session: Session, now: datetime) -> datetime | None:
    """When the earliest open notification (or lease) that is not due yet falls due."""
    return session.scalar(
        select(func.min(_N.c.next_attempt_at)).where(_DUE_STATUSES_SQL, _N.c.next_attempt_at > now)
    )


def release_leases(session: Session, leases: Mapping[str, str], now: datetime) -> int:
    """Give back leased notifications (id → lease token) unsent, due now. The caller commits."""
    released = 0
    for lease in set(leases.values()):
        ids = [nid for nid, token in leases.items() if token == lease]
        result = session.execute(
            update(Notification)
            .where(
                is_in(session, Notification.id, ids),
                Notification.leased_by == lease,
                Notification.status == "sending",
            )
            .values(status=status_after_release(), leased_by=None, next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        released += result.rowcount or 0
    if released:
        announce_new_notifications(session)
    return released


def recover_expired_leases(session: Session, now: datetime) -> int:
    """Turn sends whose lease ended (a worker died) back into due work. The caller commits.

    Claims take such rows anyway; this keeps the log honest (``retrying``, not ``sending``)
    and announces them, so another worker picks them up at once.
    """
    result = session.execute(
        update(Notification)
        .where(Notification.status == "sending", Notification.next_attempt_at <= now)
        .values(status=status_after_release(), leased_by=None)
        .execution_options(synchronize_session=False)
    )
    recovered = result.rowcount or 0
    if recovered:
        announce_new_notifications(session)
    return recovered


# -- settling ---------------------------------------------------------------------------------


def _stored_body(record: AttemptRecord) -> tuple[str | None, bool]:
    if record.response_body is None or not record.claimed.campaign.log_response_body:
        return None, False
    body = record.response_body[:MAX_STORED_BODY_BYTES]
    truncated = record.response_truncated or len(record.response_body) > MAX_STORED_BODY_BYTES
    return body.decode("utf-8", errors="replace"), truncated


def record_attempts(
    session: Session, records: Sequence[AttemptRecord], now: datetime
) -> SettleSummary:
    """Store finished attempts, move their notifications on, and update endpoint health.

    Only attempts whose notification still carries their lease count (others are reported
    in ``stale``: the lease ended and someone else took the notification over). Endpoint
    health counts consecutive failed attempts per campaign (test sends excluded): alerts
    at 5, 10 and 15, and the webhook disabled at ``disable_after_failures`` or on a 410;
    while disabled, open notifications are ``held``. The caller commits.
    """
    summary = SettleSummary()
    if not records:
        return summary
    # The common batch, every attempt delivered, checks its leases in the very update that
    # settles them (one round trip less on the dispatcher's hot path). Any other batch locks
    # and checks them first: its rows' next states depend on the health update. So does one
    # holding two leases of a notification (RETURNING cannot say which of them counted).
    delivered_only = all(record.delivered for record in records) and len(
        {r.claimed.id for r in records}
    ) == len({(r.claimed.id, r.claimed.lease) for r in records})
    if delivered_only:
        valid = _settle_delivered(session, records, now)
    else:
        valid = _leased(session, records)
    counted = {id(record) for record in valid}
    summary.stale.extend(r.claimed.id for r in records if id(r) not in counted)
    if not valid:
        return summary
    # A few deliveries: the health reset and the attempt rows go in one round trip (neither
    # answer is read; a failure's health update is, and many rows go by COPY).
    few = delivered_only and len(valid) <= COPY_FROM_ROWS
    with one_round_trip(session) if few else nullcontext():
        _record_valid(session, valid, now, summary, delivered_only)
    for campaign_id in summary.disabled_campaigns:
        hold_notifications(session, campaign_id, "webhook_disabled", now)
    summary.recorded = len(valid)
    return summary


def _record_valid(
    session: Session,
    valid: list[AttemptRecord],
    now: datetime,
    summary: SettleSummary,
    delivered_only: bool,
) -> None:
    """The attempt rows, health and next states of the records whose lease held."""
    disabled = update_health(session, valid, now, summary)

    attempts: list[dict[str, Any]] = []
    delivered: dict[int | None, list[str]] = {}
    changes: list[dict[str, Any]] = []
    for record in valid:
        claimed = record.claimed
        number = claimed.attempt_count + 1
        body, truncated = _stored_body(record)
        headers = record.response_headers
        attempts.append(
            {
                "notification_id": claimed.id,
                "number": number,
                "started_at": record.started_at,
                "duration_ms": record.duration_ms,
                "status_code": record.status_code,
                "response_headers": dict(headers) if headers is not None else None,
                "response_body": body,
                "response_truncated": truncated,
                "error_code": record.error_code,
                "error_message": record.error_message,
            }
        )
        if record.delivered:
            delivered.setdefault(record.status_code, []).append(claimed.id)
            continue
        if record.retry_at is None:
            status, reason, next_at = "failed", None, None
        elif claimed.campaign.id in disabled and not claimed.test:
            status, reason, next_at = "held", "webhook_disabled", None
        else:
            status, reason, next_at = "retrying", None, record.retry_at
        changes.append(
            {
                "b_id": claimed.id,
                "b_status": status,
                "b_reason": reason,
                "b_next": next_at,
                "b_count": number,
                "b_code": record.status_code,
                "b_error": record.error_code,
                "b_message": record.error_message,
            }
        )
    insert_rows(session.connection(), _A, attempts)
    if not delivered_only:
        for status_code, delivered_ids in delivered.items():
            session.execute(
                _MARK_DELIVERED.where(is_in(session, _N.c.id, delivered_ids)),
                {"b_now": now, "b_code": status_code},
            )
    if changes:
        session.execute(_SETTLE_FAILED.values(updated_at=now), changes)


def _leased(session: Session, records: Sequence[AttemptRecord]) -> list[AttemptRecord]:
    """The records whose notification still carries their lease, its row locked (in id
    order on PostgreSQL); a duplicate record of one attempt counts once."""
    ids = sorted({r.claimed.id for r in records})
    query = select(_N.c.id, _N.c.leased_by).where(
        is_in(session, _N.c.id, ids), _N.c.status == "sending"
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.order_by(_N.c.id).with_for_update()
    leases = dict(fetch_rows(session, query))
    valid = []
    for record in records:
        if leases.get(record.claimed.id) == record.claimed.lease:
            valid.append(record)
            leases.pop(record.claimed.id)
    return valid


def _settle_delivered(
    session: Session, records: Sequence[AttemptRecord], now: datetime
) -> list[AttemptRecord]:
    """Mark delivered, in one update per status code, the notifications of ``records`` that
    still carry their lease; the records that counted (a duplicate counts once)."""
    by_code: dict[int | None, dict[str, AttemptRecord]] = {}
    for record in records:
        by_code.setdefault(record.status_code, {}).setdefault(record.claimed.id, record)
    postgres = session.get_bind().dialect.name == "postgresql"
    statement = _settle_delivered_statement(postgres)
    valid = []
    for status_code, by_id in by_code.items():
        ids = sorted(by_id)
        keys = [f"{nid}:{record.claimed.lease}" for nid, record in by_id.items()]
        params: dict[str, Any] = {"b_code": status_code, "b_now": now}
        if postgres:  # one JSON parameter each: the same SQL text whatever the count
            params.update(b_ids=json.dumps(ids), b_keys=json.dumps(keys))
        else:
            params.update(b_ids=ids, b_keys=keys)
        settled = session.scalars(statement, params)
        valid.extend(by_id[nid] for nid in settled)
    return valid


@functools.cache
def _settle_delivered_statement(postgres: bool) -> Any:
    """``_settle_delivered``'s update, built once per kind of database: it runs on every
    settle of a delivery."""
    if postgres:

        def among(column: Any, name: str) -> Any:
            listed = func.jsonb_array_elements_text(cast(bindparam(name, type_=Text), JSONB))
            return column.in_(select(listed.table_valued("value").c.value))
    else:

        def among(column: Any, name: str) -> Any:
            return column.in_(bindparam(name, expanding=True))

    leased = select(_N.c.id).where(
        among(_N.c.id, "b_ids"),
        _N.c.status == "sending",
        among(_N.c.id + ":" + _N.c.leased_by, "b_keys"),
    )
    if postgres:
        leased = leased.order_by(_N.c.id).with_for_update()  # the order every settle locks in
    return _MARK_DELIVERED.where(_N.c.id.in_(leased.scalar_subquery())).returning(_N.c.id)


#: Parameters ``b_now`` and ``b_code`` (the response's status code).
_MARK_DELIVERED = update(_N).values(
    status="delivered",
    reason=None,
    next_attempt_at=None,
    delivered_at=bindparam("b_now", type_=UTCDateTime()),
    error_code=None,
    error_message=None,
    attempt_count=_N.c.attempt_count + 1,
    leased_by=None,
    last_status_code=bindparam("b_code", type_=Integer()),
    updated_at=bindparam("b_now", type_=UTCDateTime()),
)


_SETTLE_FAILED = (
    update(_N)
    .where(_N.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        reason=bindparam("b_reason"),
        next_attempt_at=bindparam("b_next"),
        attempt_count=bindparam("b_count"),
        leased_by=None,
        last_status_code=bindparam("b_code"),
        error_code=bindparam("b_error"),
        error_message=bindparam("b_message"),
    )
)
