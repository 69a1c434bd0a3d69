"""Identifiers: ULID bodies that sort by time, never repeat, and survive a fork."""

from __future__ import annotations

import multiprocessing
import re

from engine import ids


def _reference_encoding(value: int) -> str:
    digits = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        digits.append("0123456789ABCDEFGHJKMNPQRSTVWXYZ"[digit])
    return "".join(reversed(digits))


def test_encoding_is_crockford_base32_of_the_128_bits() -> None:
    for value in (0, 1, 31, 32, (1 << 128) - 1, (1_700_000_000_000 << 80) | 0xDEADBEEF):
        assert ids._encode_ulid(value) == _reference_encoding(value)


def test_ids_are_prefixed_unique_and_sorted_by_creation() -> None:
    made = [ids.new_id("msg") for _ in range(5000)]
    assert all(re.fullmatch(r"msg_[0-9A-HJKMNP-TV-Z]{26}", one) for one in made)
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_floor_sorts_before_ids_of_that_millisecond() -> None:
    body = ids.new_ulid()
    assert ids.ulid_floor(0) < body
    assert ids.ulid_floor(int(1e15)) > body


def _child_ids(queue: multiprocessing.Queue) -> None:
    queue.put([ids.new_ulid() for _ in range(200)])


def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    ids.new_ulid()  # the parent now holds random bytes and a counter
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_ids, args=(queue,))
    child.start()
    parent = [ids.new_ulid() for _ in range(200)]
    theirs = queue.get(timeout=30)
    child.join()
    assert not set(parent) & set(theirs)
