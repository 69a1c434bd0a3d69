"""Login throttling: failed password checks counted in the database, so every web process
sees the same counts.

Three counters are kept for each attempt: the account from this client address (``pair``),
the account from anywhere (``account``: guessing spread over many addresses) and the client
address for any account (``address``: one address trying many accounts). A counter that
reaches its limit within the window locks for a while, longer each time it locks again
(1 min, 2, 4 … up to 1 h); while any of an attempt's counters is locked the attempt is
refused without checking the password. A successful login clears the account's counters,
not the address's. Keys are hashes, so no email address that was typed is stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store.models import LoginThrottle


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures each counter allows within ``window``, and how long it locks."""

    limits: dict[str, int] = field(
        default_factory=lambda: {"pair": 10, "account": 50, "address": 50}
    )
    window: timedelta = timedelta(minutes=15)
    first_lock: timedelta = timedelta(minutes=1)
    longest_lock: timedelta = timedelta(hours=1)
    #: Lockouts are remembered (and keep growing) until a counter is this long untouched.
    memory: timedelta = timedelta(hours=24)

    def lock_length(self, lockouts: int) -> timedelta:
        return min(self.first_lock * 2 ** max(lockouts - 1, 0), self.longest_lock)


@dataclass(frozen=True)
class Failure:
    """What a failed attempt did: ``locked`` lists the kinds it locked (now until
    ``locked_until``), with how many failures each had counted."""

    locked: dict[str, int]
    locked_until: datetime | None


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def keys_for(email: str, address: str) -> dict[str, str]:
    """The counters' keys of an attempt, by kind (``pair``, ``account``, ``address``)."""
    email = email.strip().lower()
    return {
        "pair": f"pair:{_digest(email + chr(0) + address)}",
        "account": f"account:{_digest(email)}",
        "address": f"address:{_digest(address)}",
    }


def locked_until(session: Session, keys: Iterable[str], now: datetime) -> datetime | None:
    """The latest lock among these counters still running at ``now``, or None."""
    until = session.scalar(
        select(LoginThrottle.locked_until)
        .where(LoginThrottle.key.in_(list(keys)), LoginThrottle.locked_until > now)
        .order_by(LoginThrottle.locked_until.desc())
        .limit(1)
    )
    return until


def _insert(session: Session) -> object:
    dialect = session.get_bind().dialect.name
    return pg_insert if dialect == "postgresql" else sqlite_insert


def record_failure(
    session: Session, keys: dict[str, str], now: datetime, policy: ThrottlePolicy
) -> Failure:
    """Count one failed attempt on each counter (locking the rows, so concurrent failures
    in other processes are all counted)."""
    insert = _insert(session)
    session.execute(
        insert(LoginThrottle)  # type: ignore[operator]
        .values(
            [
                {
                    "key": key,
                    "failures": 0,
                    "window_started_at": now,
                    "lockouts": 0,
                    "updated_at": now,
                }
                for key in sorted(keys.values())
            ]
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    rows = {
        row.key: row
        for row in session.scalars(
            select(LoginThrottle)
            .where(LoginThrottle.key.in_(sorted(keys.values())))
            .order_by(LoginThrottle.key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    locked: dict[str, int] = {}
    latest: datetime | None = None
    for kind, key in keys.items():
        row = rows[key]
        if now - row.updated_at > policy.memory:
            row.lockouts = 0
        if now - row.window_started_at > policy.window:
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        row.updated_at = now
        if row.failures >= policy.limits[kind]:
            locked[kind] = row.failures
            row.lockouts += 1
            row.locked_until = now + policy.lock_length(row.lockouts)
            row.failures, row.window_started_at = 0, now
            latest = max(latest or row.locked_until, row.locked_until)
    session.flush()
    return Failure(locked=locked, locked_until=latest)


def clear(session: Session, keys: Iterable[str]) -> None:
    """Forget these counters (a successful login clears the account's)."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(list(keys))))


def clear_account(session: Session, email: str) -> None:
    """Forget the account's counter from anywhere (an operator set a new password).

    Pair counters cannot be found by email alone; they lapse with their window."""
    clear(session, [keys_for(email, "")["account"]])


def purge_stale(session: Session, now: datetime, policy: ThrottlePolicy) -> int:
    """Delete counters untouched for ``policy.memory`` whose lock has ended."""
    result = session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.updated_at < now - policy.memory,
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < now),
        )
    )
    return result.rowcount or 0
