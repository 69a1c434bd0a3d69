"""Event-name patterns: validation, matching one name, and an index over many campaigns.

A pattern is a dotted name in which a whole segment may be ``*`` (exactly one segment) or
``**`` (one or more). Pure: plain values in, plain values out.

Matching never backtracks: every wildcard pattern of an index is one run of bits in a single
integer, and an event name is read once, segment by segment, moving all patterns' states
forward together (a shift-and automaton). The work per event is its segment count times a
few integer operations on (total pattern segments) bits, whatever the patterns look like.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable
from typing import Any

from engine.rules.conditions import RuleProblem

MAX_PATTERNS = 100
MAX_PATTERN_LENGTH = 256
MAX_PATTERN_SEGMENTS = 32
MAX_EVENT_NAME_SEGMENTS = 64


def validate_event_patterns(patterns: Any, *, path: str = "trigger.events") -> list[RuleProblem]:
    """Problems with a trigger's event patterns: a non-empty list of dotted names in which
    a whole segment may be ``*`` (exactly one segment) or ``**`` (one or more)."""
    if not isinstance(patterns, list) or not patterns:
        return [RuleProblem(path, "must be a non-empty list of event names or patterns")]
    if len(patterns) > MAX_PATTERNS:
        return [RuleProblem(path, f"at most {MAX_PATTERNS} patterns")]
    problems = []
    for index, pattern in enumerate(patterns):
        problem = _pattern_problem(pattern)
        if problem:
            problems.append(RuleProblem(f"{path}[{index}]", problem))
    return problems


def _pattern_problem(pattern: Any) -> str | None:
    if not isinstance(pattern, str) or not pattern:
        return "must be a non-empty string"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"must be at most {MAX_PATTERN_LENGTH} characters"
    if any(char.isspace() for char in pattern):
        return "must not contain spaces"
    segments = pattern.split(".")
    if len(segments) > MAX_PATTERN_SEGMENTS:
        return f"must have at most {MAX_PATTERN_SEGMENTS} segments"
    for segment in segments:
        if not segment:
            return "has an empty segment (two dots, or a dot at an end)"
        if "*" in segment and segment not in ("*", "**"):
            return "a wildcard must be a whole segment: * or **"
    return None


def pattern_matches(pattern: str, event_name: str) -> bool:
    """Whether ``event_name`` matches: ``*`` is one segment, ``**`` one or more."""
    if "*" not in pattern:
        return pattern == event_name
    return bool(_WildcardAutomaton([(True, pattern)]).match(event_name.split(".")))


class _WildcardAutomaton:
    """All wildcard patterns of an index as one shift-and automaton, run as a lazy DFA.

    Bit ``b`` of a state stands for one segment of one pattern: it is set when that
    pattern's segments up to ``b`` have consumed exactly the name segments read so far.
    Reading a segment moves every bit one place on (into a ``*``, a ``**`` or an equal
    literal), keeps ``**`` bits where they are (one more segment swallowed), and never
    carries a pattern's last bit into the next pattern's first. Each step is a few integer
    operations on (total pattern segments) bits, so a name costs time linear in its
    segments whatever the patterns are. States met are numbered and their transitions
    remembered (at most ``MAX_CACHED_STATES`` and ``MAX_CACHED_BITS``, then forgotten and
    built again), so names of a familiar shape cost two dict lookups per segment.
    """

    MAX_CACHED_STATES = 1024
    #: And at most this many state bits remembered (128 KiB of bit sets per index), so the
    #: indexes of many workspaces with hostile patterns stay small.
    MAX_CACHED_BITS = 1 << 20
    _START = 0
    _OTHER = ""  # the class of every segment no pattern names literally

    def __init__(self, patterns: Iterable[tuple[Hashable, str]]) -> None:
        first = any_segment = 0
        self._repeat = 0
        literal: dict[str, int] = {}
        self._keys_at: dict[int, set[Hashable]] = {}
        last_bit_of: dict[str, int] = {}
        bit = 0
        for key, pattern in patterns:
            if pattern in last_bit_of:
                self._keys_at[last_bit_of[pattern]].add(key)
                continue
            first |= 1 << bit
            for segment in pattern.split("."):
                mask = 1 << bit
                if segment == "**":
                    any_segment |= mask
                    self._repeat |= mask
                elif segment == "*":
                    any_segment |= mask
                else:
                    literal[segment] = literal.get(segment, 0) | mask
                bit += 1
            last_bit_of[pattern] = bit - 1
            self._keys_at[bit - 1] = {key}
        self._last = sum(1 << b for b in self._keys_at)
        # What a segment lets through: at the start only first bits, later never them.
        self._start_accepts = {
            self._OTHER: first & any_segment,
            **{name: first & (any_segment | mask) for name, mask in literal.items()},
        }
        later = ((1 << bit) - 1) & ~first
        self._later_accepts = {
            self._OTHER: later & any_segment,
            **{name: later & (any_segment | mask) for name, mask in literal.items()},
        }
        self._states_in_budget = max(64, self.MAX_CACHED_BITS // max(bit, 1))
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        # Swapped whole, so a match running in another thread keeps a consistent table.
        self._table = _DfaTable(start=-1)

    def match(self, names: list[str]) -> frozenset[Hashable]:
        table = self._table
        accepts = self._later_accepts
        transitions, dead = table.transitions, table.dead
        state = self._START
        for name in names:
            segment_class = name if name in accepts else self._OTHER
            following = transitions[state].get(segment_class)
            if following is None:
                following = self._add_transition(table, state, segment_class)
            if following == dead:
                return frozenset()
            state = following
        return self._accepted(table, state)

    def _add_transition(self, table: _DfaTable, state: int, segment_class: str) -> int:
        if state == self._START:
            bits = self._start_accepts[segment_class]
        else:
            bits = table.bits[state]
            moved = (bits << 1) & self._later_accepts[segment_class]
            bits = moved | (bits & self._repeat)
        with self._lock:
            following = table.ids.get(bits)
            if following is None:
                if len(table.bits) >= min(self.MAX_CACHED_STATES, self._states_in_budget):
                    self._reset()
                following = table.intern(bits)
            table.transitions[state][segment_class] = following
        return following

    def _accepted(self, table: _DfaTable, state: int) -> frozenset[Hashable]:
        found = table.found[state]
        if found is None:
            keys: set[Hashable] = set()
            accepted = table.bits[state] & self._last
            while accepted:
                lowest = accepted & -accepted
                keys |= self._keys_at[lowest.bit_length() - 1]
                accepted ^= lowest
            found = table.found[state] = frozenset(keys)
        return found


class _DfaTable:
    """States met so far (as bit sets), their numbers, transitions and accepted keys."""

    def __init__(self, start: int) -> None:
        self.bits: list[int] = []
        self.ids: dict[int, int] = {}
        self.transitions: list[dict[str, int]] = []
        self.found: list[frozenset[Hashable] | None] = []
        self.intern(start)  # state 0: nothing read yet (no bit set can equal -1)
        self.dead = self.intern(0)

    def intern(self, bits: int) -> int:
        self.bits.append(bits)
        self.transitions.append({})
        self.found.append(None if bits else frozenset())
        self.ids[bits] = len(self.bits) - 1
        return len(self.bits) - 1


class EventPatternIndex:
    """Built once from many campaigns' patterns; answers which campaigns an event name
    triggers without scanning every pattern: exact names in a dict, wildcard patterns in
    one automaton that reads the name once (linear in its segments, no backtracking)."""

    def __init__(self, entries: Iterable[tuple[Hashable, Iterable[str]]]) -> None:
        self._exact: dict[str, set[Hashable]] = {}
        wildcards: list[tuple[Hashable, str]] = []
        for key, patterns in entries:
            for pattern in patterns:
                if "*" in pattern:
                    wildcards.append((key, pattern))
                else:
                    self._exact.setdefault(pattern, set()).add(key)
        self._automaton = _WildcardAutomaton(wildcards) if wildcards else None

    def match(self, event_name: str) -> set[Hashable]:
        found = set(self._exact.get(event_name, ()))
        if self._automaton is not None:
            found |= self._automaton.match(event_name.split("."))
        return found
