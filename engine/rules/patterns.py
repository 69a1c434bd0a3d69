"""Event-name patterns: validation, matching one name, and an index over many campaigns.

A pattern is a dotted name in which a whole segment may be ``*`` (exactly one segment) or
``**`` (one or more). Pure: plain values in, plain values out.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from engine.rules.conditions import RuleProblem

MAX_PATTERNS = 100
MAX_PATTERN_LENGTH = 256


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
    for segment in pattern.split("."):
        if not segment:
            return "has an empty segment (two dots, or a dot at an end)"
        if "*" in segment and segment not in ("*", "**"):
            return "a wildcard must be a whole segment: * or **"
    return None


def pattern_matches(pattern: str, event_name: str) -> bool:
    """Whether ``event_name`` matches: ``*`` is one segment, ``**`` one or more."""
    segments = pattern.split(".")
    names = event_name.split(".")
    # reachable[j]: the first i pattern segments can consume exactly names[:j]
    reachable = [True] + [False] * len(names)
    for segment in segments:
        following = [False] * (len(names) + 1)
        for j in range(len(names) + 1):
            if not reachable[j]:
                continue
            if segment == "**":
                for k in range(j + 1, len(names) + 1):
                    following[k] = True
            elif j < len(names) and (segment == "*" or segment == names[j]):
                following[j + 1] = True
        reachable = following
    return reachable[len(names)]


class _TrieNode:
    __slots__ = ("children", "keys")

    def __init__(self) -> None:
        self.children: dict[str, _TrieNode] = {}
        self.keys: set[Hashable] = set()


class EventPatternIndex:
    """Built once from many campaigns' patterns; answers which campaigns an event name
    triggers without scanning every pattern: exact names in a dict, wildcard patterns in
    a segment trie walked once per event."""

    def __init__(self, entries: Iterable[tuple[Hashable, Iterable[str]]]) -> None:
        self._exact: dict[str, set[Hashable]] = {}
        self._root = _TrieNode()
        self._has_wildcards = False
        for key, patterns in entries:
            for pattern in patterns:
                if "*" not in pattern:
                    self._exact.setdefault(pattern, set()).add(key)
                    continue
                self._has_wildcards = True
                node = self._root
                for segment in pattern.split("."):
                    node = node.children.setdefault(segment, _TrieNode())
                node.keys.add(key)

    def match(self, event_name: str) -> set[Hashable]:
        found = set(self._exact.get(event_name, ()))
        if not self._has_wildcards:
            return found
        names = event_name.split(".")
        seen: set[tuple[int, int]] = set()
        stack: list[tuple[_TrieNode, int]] = [(self._root, 0)]
        while stack:
            node, position = stack.pop()
            if (id(node), position) in seen:
                continue
            seen.add((id(node), position))
            if position == len(names):
                found |= node.keys
                continue
            name = names[position]
            for segment in (name, "*"):
                child = node.children.get(segment)
                if child is not None:
                    stack.append((child, position + 1))
            double = node.children.get("**")
            if double is not None:
                stack.extend((double, end) for end in range(position + 1, len(names) + 1))
        return found
