"""Identifiers: a short type prefix plus a time-ordered, random 26-character body.

The body is a ULID (48-bit millisecond timestamp, 80 random bits, Crockford base32), so ids
sort by creation time. That lets the notifications log paginate newest-first on the primary
key alone, and lets bulk inserts choose ids without a round trip.
"""

from __future__ import annotations

import base64
import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: RFC 4648 base32 digits → Crockford's, so ``base64.b32encode`` (C code) does the encoding.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
_lock = threading.Lock()
_last_ms = 0
_last_random = 0
_RANDOM_POOL = 256  # random bodies drawn per os.urandom call
_pool = b""


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def _encode_ulid(value: int) -> str:
    """26 Crockford digits of a 128-bit value (padded to 160 bits: 32 digits, 6 leading 0s)."""
    return base64.b32encode(value.to_bytes(20, "big")).translate(_TO_CROCKFORD)[6:].decode()


def _random_80_bits() -> int:
    global _pool
    if not _pool:
        _pool = os.urandom(10 * _RANDOM_POOL)
    chunk, _pool = _pool[:10], _pool[10:]
    return int.from_bytes(chunk, "big")


def _forget_after_fork() -> None:
    """A forked child must not reuse its parent's random bytes or counter."""
    global _pool, _last_ms
    _pool = b""
    _last_ms = 0


os.register_at_fork(after_in_child=_forget_after_fork)


def new_ulid() -> str:
    """A ULID string; monotonic within one process even inside the same millisecond."""
    global _last_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            now_ms = _last_ms
            _last_random = (_last_random + 1) & ((1 << 80) - 1)
        else:
            _last_random = _random_80_bits()
        _last_ms = now_ms
        return _encode_ulid((now_ms << 80) | _last_random)


def new_id(prefix: str) -> str:
    """A new identifier such as ``msg_01JD3...``."""
    return f"{prefix}_{new_ulid()}"


def ulid_floor(unix_ms: int) -> str:
    """The smallest ULID body at ``unix_ms``: compare ids against it to filter by time."""
    return _encode(unix_ms, 10) + "0" * 16
