"""Identifiers: a short type prefix plus a time-ordered, random 26-character body.

The body is a ULID (48-bit millisecond timestamp, 80 random bits, Crockford base32), so ids
sort by creation time. That lets the notifications log paginate newest-first on the primary
key alone, and lets bulk inserts choose ids without a round trip.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_ulid() -> str:
    """A ULID string; monotonic within one process even inside the same millisecond."""
    global _last_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            now_ms = _last_ms
            _last_random = (_last_random + 1) & ((1 << 80) - 1)
        else:
            _last_random = int.from_bytes(os.urandom(10), "big")
        _last_ms = now_ms
        return _encode(now_ms, 10) + _encode(_last_random, 16)


def new_id(prefix: str) -> str:
    """A new identifier such as ``msg_01JD3...``."""
    return f"{prefix}_{new_ulid()}"


def ulid_floor(unix_ms: int) -> str:
    """The smallest ULID body at ``unix_ms``: compare ids against it to filter by time."""
    return _encode(unix_ms, 10) + "0" * 16
