"""Event-pattern matching under hostile patterns: the automaton against the old matcher.

One workspace's worst case within the limits: 100 distinct patterns of 32 ``*``/``**``
segments (the most a pattern may have), every one of which stays alive on every segment,
matched against 1,000 distinct event names of 64 segments (the most a name may have).
Also the shape reported in issue #14 (85-segment patterns, 127-segment names), which
campaigns saved before the segment limits may still hold.

Side by side in this run:

- automaton: ``engine.rules.patterns.EventPatternIndex`` (target: 1,000 events < 50 ms);
  and again with its state cache defeated, the cost when every step is computed afresh.
- exact: the same index holding 100 exact names only, a dict lookup per event: the floor.
- old: the backtracking trie walk this replaced (issue #14: seconds per event), timed on a
  few events only and scaled to 1,000.

Run: ``.venv/bin/python bench/bench_patterns.py``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable, Iterable

from engine.rules.patterns import EventPatternIndex

TARGET_MS = 50.0


class OldTrieIndex:
    """The matcher before issue #14: a segment trie walked with a stack, ``**`` pushing
    every possible end position (quadratic per ``**``, blowing up across many)."""

    class _Node:
        __slots__ = ("children", "keys")

        def __init__(self) -> None:
            self.children: dict[str, OldTrieIndex._Node] = {}
            self.keys: set[Hashable] = set()

    def __init__(self, entries: Iterable[tuple[Hashable, Iterable[str]]]) -> None:
        self._root = self._Node()
        for key, patterns in entries:
            for pattern in patterns:
                node = self._root
                for segment in pattern.split("."):
                    node = node.children.setdefault(segment, self._Node())
                node.keys.add(key)

    def match(self, event_name: str) -> set[Hashable]:
        found: set[Hashable] = set()
        names = event_name.split(".")
        seen: set[tuple[int, int]] = set()
        stack = [(self._root, 0)]
        while stack:
            node, position = stack.pop()
            if (id(node), position) in seen:
                continue
            seen.add((id(node), position))
            if position == len(names):
                found |= node.keys
                continue
            for segment in (names[position], "*"):
                child = node.children.get(segment)
                if child is not None:
                    stack.append((child, position + 1))
            double = node.children.get("**")
            if double is not None:
                stack.extend((double, end) for end in range(position + 1, len(names) + 1))
        return found


def worst_patterns(count: int, segments: int, rng: random.Random) -> list[str]:
    """Distinct all-wildcard patterns, mostly ``**`` so every prefix stays alive."""
    patterns: set[str] = set()
    while len(patterns) < count:
        parts = ["**" if rng.random() < 0.8 else "*" for _ in range(segments)]
        patterns.add(".".join(parts))
    return sorted(patterns)


def event_names(count: int, segments: int, rng: random.Random) -> list[str]:
    return [".".join(f"s{rng.randrange(1000)}" for _ in range(segments)) for _ in range(count)]


def time_ms(match: Callable[[str], set[Hashable]], names: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    matched = sum(len(match(name)) for name in names)
    return (time.perf_counter() - started) * 1000, matched


def run(label: str, pattern_segments: int, name_segments: int, old_events: int) -> None:
    rng = random.Random(14)
    patterns = worst_patterns(100, pattern_segments, rng)
    names = event_names(1000, name_segments, rng)
    entries = [(f"cmp_{i}", [p]) for i, p in enumerate(patterns)]
    index = EventPatternIndex(entries)
    exact = EventPatternIndex([(f"cmp_{i}", [f"exact.{i}"]) for i in range(100)])
    time_ms(index.match, names[:50])  # warm-up
    automaton_ms, matched = min(time_ms(index.match, names) for _ in range(5))
    cold = EventPatternIndex(entries)
    cold._automaton.MAX_CACHED_STATES = 2  # forget every state: each step computed afresh
    cold_ms, _ = min(time_ms(cold.match, names) for _ in range(3))
    exact_ms, _ = min(time_ms(exact.match, names) for _ in range(5))
    old_ms, _ = time_ms(OldTrieIndex(entries).match, names[:old_events])
    old_per_1000 = old_ms * 1000 / old_events
    verdict = "PASS" if automaton_ms < TARGET_MS else "MISS"
    print(f"== {label}: 100 patterns of {pattern_segments} segments, 1,000 names of "
          f"{name_segments} ({matched} matches)")  # fmt: skip
    print(f"automaton   {automaton_ms:9.1f} ms per 1,000 events   target < {TARGET_MS:.0f} ms: "
          f"{verdict}")  # fmt: skip
    print(f"  no cache  {cold_ms:9.1f} ms per 1,000 events   (every DFA state forgotten at "
          f"once: the bit-parallel steps alone)")  # fmt: skip
    print(f"exact names {exact_ms:9.1f} ms per 1,000 events   automaton/exact "
          f"{automaton_ms / exact_ms:.1f}x")  # fmt: skip
    print(f"old trie    {old_per_1000:9.0f} ms per 1,000 events   (from {old_events} events) "
          f"old/automaton {old_per_1000 / automaton_ms:.0f}x")  # fmt: skip


def main() -> None:
    run("worst case within the limits", 32, 64, old_events=3)
    run("issue #14's shape (saved before the limits)", 85, 127, old_events=1)


if __name__ == "__main__":
    main()
