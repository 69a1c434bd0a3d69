"""Retry policies: after a failed attempt, "try again at T" or "give up".

Pure objects over plain values (no clock, no database): the worker hands in how many
attempts were made and the current time, and gets a :class:`RetryDecision` back.

Counting: ``attempts_made`` is the number of attempts already made, so it is 1 after the
first attempt failed. ``next_delay(n)`` is the wait between attempt ``n`` and attempt
``n + 1``; it is None once ``n`` reaches ``max_attempts``.

Policies (SPEC §4 ``retry``):

- ``{"policy": "standard"}`` (the default) — 12 s, 2 m 28 s, 30 m 8 s, 6 h 7 m 6 s, then
  24 h repeating; at most 10 attempts in total.
- ``{"policy": "exponential"}`` — the wait after attempt N is ``5 + N**4`` seconds
  (6 s, 21 s, 86 s, 261 s, …, 38 421 s after attempt 14); at most 15 attempts.
- ``{"policy": "none"}`` — one attempt, never retried.
- ``{"schedule": [seconds, …], "max_attempts": N}`` — the waits in order, the last one
  repeating; each wait is between 1 s and 7 days. ``max_attempts`` (1 to 100) defaults to one
  more than the schedule's length. ``"policy": "custom"`` may be given alongside.

``Retry-After`` (seconds a 429/503 response asked us to wait): the wait becomes the larger
of the policy's wait and ``Retry-After`` capped at 24 h. The header is a lower bound from
the receiver ("not before"), so honouring it never makes us retry sooner than the policy
would; a receiver saying ``Retry-After: 0`` cannot make us hammer it. It never grants an
attempt beyond ``max_attempts``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

RETRY_AFTER_CAP_SECONDS = 24 * 3600
MIN_DELAY_SECONDS = 1
MAX_DELAY_SECONDS = 7 * 24 * 3600
MAX_ATTEMPTS_LIMIT = 100

STANDARD_SCHEDULE: tuple[float, ...] = (
    12,  # 12 s
    2 * 60 + 28,  # 2 m 28 s
    30 * 60 + 8,  # 30 m 8 s
    6 * 3600 + 7 * 60 + 6,  # 6 h 7 m 6 s
    24 * 3600,  # 24 h, repeating
)
STANDARD_MAX_ATTEMPTS = 10
EXPONENTIAL_MAX_ATTEMPTS = 15
POLICY_NAMES = ("standard", "exponential", "none", "custom")


@dataclass(frozen=True)
class RetryDecision:
    """When to make the next attempt; ``retry_at`` None means give up."""

    retry_at: datetime | None

    @property
    def give_up(self) -> bool:
        return self.retry_at is None


class RetryPolicy(ABC):
    """How long to wait after each failed attempt, and when to stop."""

    name: str
    max_attempts: int

    @abstractmethod
    def _delay_after(self, attempts_made: int) -> float:
        """The wait after attempt ``attempts_made`` (1-based), ignoring ``max_attempts``."""

    def next_delay(self, attempts_made: int) -> float | None:
        """Seconds until attempt ``attempts_made + 1``, or None when no attempt is left."""
        if attempts_made < 1:
            raise ValueError("attempts_made counts attempts already made; it starts at 1")
        if attempts_made >= self.max_attempts:
            return None
        return float(self._delay_after(attempts_made))

    def decide(
        self, *, attempts_made: int, now: datetime, retry_after: float | None = None
    ) -> RetryDecision:
        """Retry at ``now`` + the policy's wait (raised to a capped ``Retry-After``), or stop."""
        delay = self.next_delay(attempts_made)
        if delay is None:
            return RetryDecision(retry_at=None)
        if retry_after is not None and math.isfinite(retry_after):
            delay = max(delay, min(max(retry_after, 0.0), RETRY_AFTER_CAP_SECONDS))
        return RetryDecision(retry_at=now + timedelta(seconds=delay))

    def delays(self) -> list[float]:
        """Every wait this policy can make, in order (``max_attempts - 1`` of them)."""
        return [float(self._delay_after(n)) for n in range(1, self.max_attempts)]


class ScheduleRetryPolicy(RetryPolicy):
    """Waits taken from a list, the last one repeating."""

    def __init__(self, schedule: Sequence[float], max_attempts: int, *, name: str = "custom"):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if max_attempts > 1 and not schedule:
            raise ValueError("a policy that retries needs at least one delay")
        self.schedule = tuple(float(delay) for delay in schedule)
        self.max_attempts = max_attempts
        self.name = name

    def _delay_after(self, attempts_made: int) -> float:
        return self.schedule[min(attempts_made, len(self.schedule)) - 1]

    def __repr__(self) -> str:
        return f"ScheduleRetryPolicy({list(self.schedule)!r}, max_attempts={self.max_attempts})"


class ExponentialRetryPolicy(RetryPolicy):
    """Waits of ``base + N**exponent`` seconds after attempt N."""

    name = "exponential"

    def __init__(self, *, base: float = 5, exponent: int = 4, max_attempts: int = 15):
        self.base = base
        self.exponent = exponent
        self.max_attempts = max_attempts

    def _delay_after(self, attempts_made: int) -> float:
        return self.base + attempts_made**self.exponent

    def __repr__(self) -> str:
        return f"ExponentialRetryPolicy(max_attempts={self.max_attempts})"


def validate_retry_config(config: Any, *, path: str = "retry") -> list[tuple[str, str]]:
    """Problems with a channel's ``retry`` value, as ``(path, message)`` pairs; [] if fine.

    ``None`` is fine: it means the standard policy.
    """
    if config is None:
        return []
    if not isinstance(config, Mapping):
        return [(path, 'must be an object such as {"policy": "standard"}')]
    problems: list[tuple[str, str]] = []
    known = {"policy", "schedule", "max_attempts"}
    for key in config:
        if key not in known:
            problems.append((f"{path}.{key}", "unknown field"))
    policy = config.get("policy")
    has_schedule = "schedule" in config
    if policy is not None and policy not in POLICY_NAMES:
        choices = ", ".join(POLICY_NAMES)
        problems.append((f"{path}.policy", f"must be one of {choices}"))
        return problems
    if policy in ("standard", "exponential", "none"):
        for key in ("schedule", "max_attempts"):
            if key in config:
                problems.append(
                    (f"{path}.{key}", f"only applies to a custom schedule, not to {policy!r}")
                )
        return problems
    if not has_schedule:
        if policy == "custom" or "max_attempts" in config:
            problems.append((f"{path}.schedule", "a custom policy needs a list of delays"))
        elif policy is None:
            problems.append((f"{path}.policy", "give a policy name or a schedule"))
        return problems
    problems.extend(_schedule_problems(config["schedule"], f"{path}.schedule"))
    if "max_attempts" in config:
        max_attempts = config["max_attempts"]
        if not _is_integer(max_attempts) or not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
            problems.append(
                (f"{path}.max_attempts", f"must be a whole number from 1 to {MAX_ATTEMPTS_LIMIT}")
            )
    elif isinstance(config["schedule"], list) and len(config["schedule"]) + 1 > MAX_ATTEMPTS_LIMIT:
        problems.append((f"{path}.schedule", f"allows at most {MAX_ATTEMPTS_LIMIT - 1} delays"))
    return problems


def _schedule_problems(schedule: Any, path: str) -> list[tuple[str, str]]:
    if not isinstance(schedule, list) or not schedule:
        return [(path, "must be a non-empty list of delays in seconds")]
    problems = []
    for index, delay in enumerate(schedule):
        if not _is_number(delay) or not MIN_DELAY_SECONDS <= delay <= MAX_DELAY_SECONDS:
            problems.append(
                (
                    f"{path}[{index}]",
                    f"must be a number of seconds from {MIN_DELAY_SECONDS} "
                    f"to {MAX_DELAY_SECONDS} (7 days)",
                )
            )
    return problems


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def policy_from_config(config: Mapping[str, Any] | None) -> RetryPolicy:
    """The policy a channel's ``retry`` value describes; None means standard.

    Raises ``ValueError`` (with the first problem) for a value that does not validate.
    """
    problems = validate_retry_config(config)
    if problems:
        where, message = problems[0]
        raise ValueError(f"{where}: {message}")
    if config is None:
        config = {"policy": "standard"}
    policy = config.get("policy")
    if policy == "standard":
        return ScheduleRetryPolicy(STANDARD_SCHEDULE, STANDARD_MAX_ATTEMPTS, name="standard")
    if policy == "exponential":
        return ExponentialRetryPolicy(max_attempts=EXPONENTIAL_MAX_ATTEMPTS)
    if policy == "none":
        return ScheduleRetryPolicy((), 1, name="none")
    schedule = config["schedule"]
    max_attempts = config.get("max_attempts", len(schedule) + 1)
    return ScheduleRetryPolicy(schedule, max_attempts)
