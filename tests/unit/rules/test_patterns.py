"""Event-name patterns (engine.rules.patterns): validation, matching, the index, as tables."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rules.patterns import EventPatternIndex, pattern_matches, validate_event_patterns


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("lead.create", "lead.create", True),
        ("lead.create", "lead.created", False),
        ("lead.create", "lead", False),
        ("lead.*", "lead.create", True),
        ("lead.*", "lead.status.update", False),
        ("lead.*", "lead", False),
        ("lead.**", "lead.create", True),
        ("lead.**", "lead.status.update", True),
        ("lead.**", "lead", False),
        ("campaign.email.*", "campaign.email.open", True),
        ("campaign.email.*", "campaign.email.open.first", False),
        ("campaign.email.*", "campaign.sms.open", False),
        ("*", "lead", True),
        ("*", "lead.create", False),
        ("**", "lead.status.update", True),
        ("*.*", "lead.create", True),
        ("**.update", "lead.status.update", True),
        ("**.update", "update", False),
        ("lead.**.update", "lead.status.update", True),
        ("lead.**.update", "lead.a.b.update", True),
        ("lead.**.update", "lead.update", False),
        ("**.*", "a.b", True),
        ("**.*", "a", False),
        ("lead.*.update", "lead.status.update", True),
    ],
)
def test_pattern_matches(pattern, name, expected):
    assert pattern_matches(pattern, name) is expected
    assert (EventPatternIndex([("k", [pattern])]).match(name) == {"k"}) is expected


def test_index_answers_for_many_campaigns():
    index = EventPatternIndex(
        [
            ("exact", ["lead.create"]),
            ("one", ["lead.*"]),
            ("many", ["lead.**"]),
            ("both", ["lead.create", "deal.**"]),
            ("email", ["campaign.email.*"]),
            ("none", []),
        ]
    )
    assert index.match("lead.create") == {"exact", "one", "many", "both"}
    assert index.match("lead.status.update") == {"many"}
    assert index.match("deal.won") == {"both"}
    assert index.match("campaign.email.open") == {"email"}
    assert index.match("other") == set()


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["lead.create", "lead.*", "**"], []),
        ([], [("trigger.events", "must be a non-empty list of event names or patterns")]),
        ("lead.*", [("trigger.events", "must be a non-empty list of event names or patterns")]),
        (["ok", ""], [("trigger.events[1]", "must be a non-empty string")]),
        (["ok", 5], [("trigger.events[1]", "must be a non-empty string")]),
        (["lead*"], [("trigger.events[0]", "a wildcard must be a whole segment: * or **")]),
        (["lead.***"], [("trigger.events[0]", "a wildcard must be a whole segment: * or **")]),
        (
            ["lead..x"],
            [("trigger.events[0]", "has an empty segment (two dots, or a dot at an end)")],
        ),
        (["lead."], [("trigger.events[0]", "has an empty segment (two dots, or a dot at an end)")]),
        (["lead create"], [("trigger.events[0]", "must not contain spaces")]),
        (["x"] * 101, [("trigger.events", "at most 100 patterns")]),
        ([".".join(["*"] * 32)], []),
        ([".".join(["**"] * 33)], [("trigger.events[0]", "must have at most 32 segments")]),
    ],
)
def test_validate_event_patterns(patterns, expected):
    problems = validate_event_patterns(patterns)
    assert [(p.path, p.message) for p in problems] == expected


_segments = st.sampled_from(["lead", "deal", "status", "update", "a"])
_names = st.lists(_segments, min_size=1, max_size=5).map(".".join)
_patterns = st.lists(
    st.one_of(_segments, st.sampled_from(["*", "**"])), min_size=1, max_size=5
).map(".".join)


@settings(max_examples=200)
@given(
    entries=st.lists(st.lists(_patterns, min_size=1, max_size=3), max_size=12),
    names=st.lists(_names, min_size=1, max_size=8),
)
def test_index_agrees_with_pattern_matches(entries, names):
    index = EventPatternIndex(enumerate(entries))
    for name in names:
        naive = {
            key
            for key, patterns in enumerate(entries)
            if any(pattern_matches(p, name) for p in patterns)
        }
        assert index.match(name) == naive


def _reference_match(pattern: str, name: str) -> bool:
    """Plain recursion, obviously right and only used on short inputs."""

    def rest(segments: list[str], names: list[str]) -> bool:
        if not segments:
            return not names
        head, tail = segments[0], segments[1:]
        if head == "**":
            return any(rest(tail, names[end:]) for end in range(1, len(names) + 1))
        return bool(names) and head in ("*", names[0]) and rest(tail, names[1:])

    return rest(pattern.split("."), name.split("."))


@settings(max_examples=300)
@given(pattern=_patterns, name=_names)
def test_pattern_matches_agrees_with_a_plain_recursion(pattern, name):
    assert pattern_matches(pattern, name) is _reference_match(pattern, name)


@settings(max_examples=100)
@given(
    entries=st.lists(st.lists(_patterns, min_size=1, max_size=3), min_size=1, max_size=12),
    names=st.lists(_names, min_size=1, max_size=20),
)
def test_index_is_right_when_its_state_cache_is_forgotten_midway(entries, names):
    index = EventPatternIndex(enumerate(entries))
    if index._automaton is not None:
        index._automaton.MAX_CACHED_STATES = 3
    for name in names * 2:
        expected = {
            key
            for key, patterns in enumerate(entries)
            if any(_reference_match(p, name) for p in patterns)
        }
        assert index.match(name) == expected


def test_hostile_patterns_match_in_one_pass_over_the_name():
    # Issue #14: 100 patterns of 85 wildcards against 127-segment names took seconds an
    # event. Each segment is now one step of one automaton: the states it builds stay few.
    patterns = [".".join("**" if (i >> k) & 1 else "*" for k in range(85)) for i in range(100)]
    index = EventPatternIndex([(i, [p]) for i, p in enumerate(patterns)])
    name = ".".join(f"s{n}" for n in range(127))
    # 85 segments take 127 names when at least one of them is a ``**``: all but pattern 0.
    assert index.match(name) == set(range(1, 100))
    assert len(index._automaton._table.bits) <= 2 + 127
