"""How fast each channel may be sent to: concurrency, rate limit, 429 pauses, the breaker.

Pure decisions over plain values (:class:`engine.store.channel_states.ChannelPace` in,
a new pace out); the worker reads and writes the state through the store and applies the
decisions in the same transaction as its claim or settlement, so every worker process
sees one shared state per channel.

- **Concurrency**: a channel's ``max_concurrency`` is shared out among the live worker
  processes (:func:`concurrency_share`); each keeps its part in flight at most.
- **Rate limit** (``{"requests": N, "per": "second"|"minute"|"hour"}``): sends get slots
  one interval apart on a virtual clock (``rate_next_at``), so any window of the period
  holds at most N + 1 sends. Slots are handed out at most :data:`RATE_HORIZON_SECONDS`
  ahead; a claimed send waits in its worker for its slot. Waiting spends no attempt.
- **429**: the whole channel holds back until the ``Retry-After`` (capped at 24 h), or,
  without one, for a backoff that doubles with each 429 in a row (5 s … 5 min).
- **Breaker**: after :data:`BREAKER_AFTER_STALLS` attempts in a row that timed out or
  could not connect, the channel is paused; when the pause ends one send goes out as a
  probe while the rest keep waiting (no attempts spent). A probe that gets any answer
  closes the breaker; one that stalls pauses the channel again for
  :data:`BREAKER_COOLDOWN_SECONDS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from engine.store.channel_states import ChannelPace

DEFAULT_MAX_CONCURRENCY = 10
MAX_CONCURRENCY = 100
PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600}
MAX_RATE_LIMIT_REQUESTS = 100_000
#: Rate-limit slots are reserved at most this far ahead of now.
RATE_HORIZON_SECONDS = 1.0
RATE_HORIZON = timedelta(seconds=RATE_HORIZON_SECONDS)
#: Attempt outcomes that mean "nobody answered": they count towards the breaker.
STALL_ERRORS = frozenset({"timeout", "connection_error"})
BREAKER_AFTER_STALLS = 3
BREAKER_COOLDOWN_SECONDS = 10.0
THROTTLE_FIRST_PAUSE_SECONDS = 5.0
THROTTLE_MAX_PAUSE_SECONDS = 300.0
MAX_RETRY_AFTER_SECONDS = 86400.0


def max_concurrency(channel: Mapping[str, Any]) -> int:
    """The channel's ``max_concurrency`` (1 to 100, default 10)."""
    value = channel.get("max_concurrency")
    if not isinstance(value, int) or isinstance(value, bool):
        return DEFAULT_MAX_CONCURRENCY
    return min(max(value, 1), MAX_CONCURRENCY)


def concurrency_share(maximum: int, rank: int, workers: int) -> int:
    """This worker's part of a channel's ``max_concurrency`` when ``workers`` live worker
    processes share it and this one is number ``rank`` (0-based) among them: equal parts,
    the remainder to the first ranks, so the parts add up to ``maximum`` exactly (a worker
    may get 0 when there are more workers than the maximum)."""
    workers = max(workers, 1)
    return maximum // workers + (1 if rank < maximum % workers else 0)


def rate_interval(channel: Mapping[str, Any]) -> float | None:
    """Seconds between two sends under the channel's rate limit; None without one."""
    limit = channel.get("rate_limit")
    if not isinstance(limit, Mapping):
        return None
    requests = limit.get("requests")
    period = PERIOD_SECONDS.get(limit.get("per"))  # type: ignore[arg-type]
    if not isinstance(requests, int) or requests < 1 or period is None:
        return None
    return period / requests


def breaker_open(pace: ChannelPace) -> bool:
    return pace.stalls >= BREAKER_AFTER_STALLS


@dataclass(frozen=True)
class Grant:
    """How many of a channel's due sends may be claimed now.

    ``slots``: with a rate limit, the not-before time of each send in claim order (as many
    as ``take``). ``pace``: the state to store if the claim takes ``take`` sends (see
    :func:`after_claim` when it takes fewer). ``ready_at``: when nothing may be taken,
    when to look again (None: when a send of this worker finishes)."""

    take: int
    slots: tuple[datetime, ...] = ()
    step: timedelta | None = None
    pace: ChannelPace | None = None
    ready_at: datetime | None = None
    probe: bool = False


def grant(
    pace: ChannelPace,
    *,
    room: int,
    interval: float | None,
    now: datetime,
    probe_seconds: float,
) -> Grant:
    """Decide how many sends of one channel a claim may take (``room``: the most the worker
    has room for); ``probe_seconds`` is how long a probe may take (its lease)."""
    if pace.paused_until is not None and pace.paused_until > now:
        return Grant(0, ready_at=pace.paused_until)
    probe = breaker_open(pace)
    if probe:
        room = min(room, 1)
    if room <= 0:
        return Grant(0)
    slots: tuple[datetime, ...] = ()
    step = None
    next_pace = pace
    take = room
    if interval is not None:
        step = timedelta(seconds=interval)
        first = max(pace.rate_next_at or now, now)
        horizon = now + RATE_HORIZON
        if first > horizon:
            return Grant(0, ready_at=first - RATE_HORIZON)
        fits = int((horizon - first) / step) + 1
        take = min(room, fits)
        slots = tuple(first + step * index for index in range(take))
        next_pace = replace(next_pace, rate_next_at=first + step * take)
    if probe:
        until = (slots[-1] if slots else now) + timedelta(seconds=probe_seconds)
        next_pace = replace(next_pace, paused_until=until, pause_reason="breaker")
    return Grant(take, slots, step, next_pace if next_pace != pace else None, probe=probe)


def after_claim(pace: ChannelPace, given: Grant, taken: int) -> ChannelPace | None:
    """The state to store once the claim took ``taken`` of the ``given.take`` sends
    (None: unchanged). Unused rate slots are handed back; a probe not taken is no probe."""
    if taken == given.take:
        return given.pace
    if taken == 0:
        return None
    updated = given.pace or pace
    if given.slots and given.step is not None:
        updated = replace(updated, rate_next_at=given.slots[taken - 1] + given.step)
    return updated if updated != pace else None


@dataclass(frozen=True)
class Outcome:
    """What pacing needs to know of one finished attempt."""

    error_code: str | None
    status_code: int | None
    retry_after: float | None = None


def after_attempts(pace: ChannelPace, outcomes: Iterable[Outcome], now: datetime) -> ChannelPace:
    """The channel's state after these attempts (in the order they finished)."""
    stalls, throttles = pace.stalls, pace.throttles
    paused_until, reason = pace.paused_until, pace.pause_reason
    throttled_until: datetime | None = None
    stalled = False
    for outcome in outcomes:
        if outcome.error_code in STALL_ERRORS:
            stalls += 1
            stalled = True
        elif outcome.status_code is not None:
            stalls = 0  # it answered: whatever the status, the endpoint is reachable
        if outcome.status_code == 429:
            throttles += 1
            wait = outcome.retry_after
            if wait is None:
                wait = min(
                    THROTTLE_FIRST_PAUSE_SECONDS * 2 ** min(throttles - 1, 16),
                    THROTTLE_MAX_PAUSE_SECONDS,
                )
            until = now + timedelta(seconds=min(max(wait, 0.0), MAX_RETRY_AFTER_SECONDS))
            throttled_until = max(throttled_until or until, until)
        elif outcome.status_code is not None:
            throttles = 0
    if reason == "breaker" and stalls < BREAKER_AFTER_STALLS:
        paused_until, reason = None, None  # a probe got through: the breaker closes
    if stalled and stalls >= BREAKER_AFTER_STALLS:
        paused_until = now + timedelta(seconds=BREAKER_COOLDOWN_SECONDS)
        reason = "breaker"
    if throttled_until is not None and (paused_until is None or throttled_until > paused_until):
        paused_until, reason = throttled_until, "retry_after"
    return replace(
        pace, stalls=stalls, throttles=throttles, paused_until=paused_until, pause_reason=reason
    )


def needs_settling(pace: ChannelPace, outcomes: Iterable[Outcome]) -> bool:
    """Whether settling these attempts may change the stored state (else skip the write)."""
    if pace.stalls or pace.throttles or pace.pause_reason == "breaker":
        return True
    return any(o.error_code in STALL_ERRORS or o.status_code == 429 for o in outcomes)
