"""Each webhook channel's shared pacing state: rate limit slot, pause, stall and 429 streaks.

Rows of ``channel_states`` (see :class:`engine.store.models.ChannelState`); a channel that
never needed pacing has none, which reads as :data:`IDLE`. What the numbers mean and how
they move is decided in ``engine.delivery.pacing``; this module only reads and writes them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store.bulk import is_in
from engine.store.models import Campaign, ChannelState

_S = ChannelState.__table__
_C = Campaign.__table__
_FIELDS = ("rate_next_at", "paused_until", "pause_reason", "stalls", "throttles")


@dataclass(frozen=True)
class ChannelPace:
    """One channel's pacing state as plain values."""

    rate_next_at: datetime | None = None
    paused_until: datetime | None = None
    pause_reason: str | None = None
    stalls: int = 0
    throttles: int = 0


IDLE = ChannelPace()


@dataclass(frozen=True)
class ChannelWait:
    """Why a channel's due notifications are not being sent, and until when.

    ``reason``: ``rate_limit`` (the next free slot of the channel's rate limit),
    ``retry_after`` (the receiver answered 429), ``breaker`` (the endpoint keeps timing out
    or refusing connections: one probe at a time until one gets through).
    """

    reason: str
    until: datetime


def _pace(row) -> ChannelPace:  # type: ignore[no-untyped-def]
    return ChannelPace(*(getattr(row, name) for name in _FIELDS))


def load(
    session: Session, campaign_ids: Collection[str], *, for_update: bool = False
) -> dict[str, ChannelPace]:
    """The pacing state of these channels (missing ones are :data:`IDLE`).

    ``for_update`` first locks the channels' campaign rows (in id order, as claims hold
    them while they write a channel's state), so a read-modify-write of a streak is not
    lost to another worker's and never deadlocks with a claim."""
    if not campaign_ids:
        return {}
    ids = sorted(campaign_ids)
    if for_update:
        session.execute(
            select(_C.c.id)
            .where(is_in(session, _C.c.id, ids))
            .order_by(_C.c.id)
            .with_for_update(key_share=True, of=_C)  # FOR NO KEY UPDATE
        )
    query = select(_S).where(is_in(session, _S.c.campaign_id, ids))
    found = {row.campaign_id: _pace(row) for row in session.execute(query)}
    return {cid: found.get(cid, IDLE) for cid in campaign_ids}


def save(session: Session, paces: Iterable[tuple[str, ChannelPace]], now: datetime) -> None:
    """Write these channels' states (insert or replace)."""
    rows = [
        {"campaign_id": cid, "updated_at": now, **{f: getattr(p, f) for f in _FIELDS}}
        for cid, p in sorted(paces, key=lambda item: item[0])
    ]
    if not rows:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(_S)
    statement = statement.on_conflict_do_update(
        index_elements=[_S.c.campaign_id],
        set_={name: statement.excluded[name] for name in (*_FIELDS, "updated_at")},
    )
    session.execute(statement, rows)


def waits(session: Session, campaign_ids: Collection[str], now: datetime) -> dict[str, ChannelWait]:
    """For each of these channels that is holding its sends back right now: why and until when.

    An open breaker holds back all but its probe (``until``: the next probe, or now while
    one is due); a pause wins over the rate limit (nothing is sent before it ends)."""
    found: dict[str, ChannelWait] = {}
    for cid, pace in load(session, campaign_ids).items():
        if pace.pause_reason == "breaker":  # open until a probe gets through
            found[cid] = ChannelWait("breaker", max(pace.paused_until or now, now))
        elif pace.paused_until is not None and pace.paused_until > now:
            found[cid] = ChannelWait(pace.pause_reason or "retry_after", pace.paused_until)
        elif pace.rate_next_at is not None and pace.rate_next_at > now:
            found[cid] = ChannelWait("rate_limit", pace.rate_next_at)
    return found
