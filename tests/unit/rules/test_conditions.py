"""Condition trees, type rules and event patterns (engine.rules.conditions), as tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.rules.conditions import (
    MISSING,
    RuleProblem,
    evaluate,
    iso_instant_micros,
    leaf_holds,
    regex_problem,
    validate_conditions,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

# One sample of every kind a field can hold.
S, INT, F, B, N, M = "pro", 5, 5.5, True, None, MISSING
L = ["a", 5, True]
D = "2026-01-05T10:00:00Z"
O = {"a": 1}  # noqa: E741

# (op, rule value, field value, expected). Negated ops are checked as exact complements below.
LEAF_TABLE = [
    # eq: same kind and equal; no coercion between "5", 5 and True
    ("eq", "pro", S, True),
    ("eq", "Pro", S, False),
    ("eq", 5, INT, True),
    ("eq", 5.0, INT, True),
    ("eq", 5.5, F, True),
    ("eq", "5", INT, False),
    ("eq", 5, "5", False),
    ("eq", True, B, True),
    ("eq", 1, B, False),
    ("eq", True, 1, False),
    ("eq", False, 0, False),
    ("eq", "pro", N, False),
    ("eq", "pro", M, False),
    ("eq", "a", L, False),
    ("eq", 1, O, False),
    ("eq", D, D, True),
    # gt gte lt lte: number with number, string with string, else false
    ("gt", 4, INT, True),
    ("gt", 5, INT, False),
    ("gte", 5, INT, True),
    ("lt", 6, F, True),
    ("lte", 5.5, F, True),
    ("gt", 4, "9", False),
    ("gt", "4", INT, False),
    ("gt", 0, B, False),
    ("gt", "a", S, True),
    ("lt", "q", S, True),
    ("lt", "pro", "pr", True),
    ("gt", "Z", "a", True),  # code point order: lower case sorts after upper case
    ("gt", "2026-01-01", D, True),  # ISO strings in the same shape order as strings
    ("gt", 0, N, False),
    ("lt", 0, M, False),
    ("gt", 0, L, False),
    ("gt", "a", O, False),
    # in: eq to one of the values
    ("in", ["free", "pro"], S, True),
    ("in", ["free"], S, False),
    ("in", [5, "x"], INT, True),
    ("in", ["5"], INT, False),
    ("in", [1], B, False),
    ("in", [True], B, True),
    ("in", [], S, False),
    ("in", ["pro"], N, False),
    ("in", ["pro"], M, False),
    ("in", ["a"], L, False),
    # contains: substring of a string, member of a list
    ("contains", "r", S, True),
    ("contains", "", S, True),
    ("contains", "R", S, False),
    ("contains", "a", L, True),
    ("contains", 5, L, True),
    ("contains", 5.0, L, True),
    ("contains", "5", L, False),
    ("contains", True, L, True),
    ("contains", 1, [True], False),
    ("contains", 5, INT, False),
    ("contains", 5, "a5", False),
    ("contains", "a", N, False),
    ("contains", "a", M, False),
    ("contains", "a", O, False),
    ("contains", "a", [["a"]], False),
    # starts_with / ends_with: strings only
    ("starts_with", "pr", S, True),
    ("starts_with", "ro", S, False),
    ("starts_with", "", S, True),
    ("ends_with", "ro", S, True),
    ("ends_with", "pr", S, False),
    ("ends_with", "5", INT, False),
    ("starts_with", "a", L, False),
    ("starts_with", "a", N, False),
    ("ends_with", "a", M, False),
    # exists: present and not null
    ("exists", None, S, True),
    ("exists", None, 0, True),
    ("exists", None, False, True),
    ("exists", None, "", True),
    ("exists", None, [], True),
    ("exists", None, N, False),
    ("exists", None, M, False),
    # matches: RE2 search in strings only
    ("matches", "^pr", S, True),
    ("matches", "o$", S, True),
    ("matches", "^r", S, False),
    ("matches", "(?i)^PRO$", S, True),
    ("matches", "a.b", "a\nb", True),  # . matches newlines, as in PostgreSQL
    ("matches", "5", INT, False),
    ("matches", "a", L, False),
    ("matches", ".*", N, False),
    ("matches", ".*", M, False),
    # before / after: instants; strings of the accepted ISO shape, date, datetime
    ("before", "2026-01-06", D, True),
    ("before", "2026-01-05", D, False),
    ("after", "2026-01-05", D, True),
    ("after", "2026-01-05T10:00:00Z", D, False),
    ("before", "2026-01-05T10:00:00.000001Z", D, True),
    ("after", "2026-01-05T10:00:00+01:00", D, True),  # 09:00 UTC
    ("before", "2026-01-05T11:00:00+01:00", D, False),  # the same instant
    ("before", "2026-01-05T10:00:01", D, True),  # naive = UTC
    ("after", "2026-01-05", "2026-01-05 00:00:01", True),
    ("after", "2026-01-01", date(2026, 1, 2), True),
    ("after", "2026-01-05T09:00:00Z", datetime(2026, 1, 5, 10, 0), True),
    ("after", "2026-01-05T10:30:00Z", datetime(2026, 1, 5, 11, 0, tzinfo=UTC), True),
    (
        "after",
        "2026-01-05T10:30:00Z",
        datetime(2026, 1, 5, 11, 0, tzinfo=timezone(timedelta(hours=1))),
        False,
    ),
    ("after", "now-7d", "2026-05-30T00:00:00Z", True),
    ("after", "now-1d", "2026-05-30T00:00:00Z", False),
    ("before", "now+2h", "2026-06-01T13:00:00Z", True),
    ("before", "now", "2026-06-01T12:00:00Z", False),
    ("before", "2030-01-01", "2026-02-30", False),  # no such day: not a date
    ("before", "2030-01-01", "2026-1-5", False),  # not the accepted shape
    ("before", "2030-01-01", 1767607200, False),  # numbers are not dates
    ("before", "2030-01-01", INT, False),
    ("before", "2030-01-01", B, False),
    ("before", "2030-01-01", N, False),
    ("before", "2030-01-01", M, False),
    ("before", "2030-01-01", L, False),
    ("before", "2030-01-01", O, False),
]


@pytest.mark.parametrize(("op", "value", "field", "expected"), LEAF_TABLE)
def test_leaf_table(op, value, field, expected):
    assert leaf_holds(op, field, value, now=NOW) is expected


NEGATIONS = {"eq": "ne", "in": "not_in", "contains": "not_contains", "exists": "not_exists"}


@pytest.mark.parametrize(
    ("op", "value", "field", "expected"),
    [row for row in LEAF_TABLE if row[0] in NEGATIONS],
)
def test_negated_ops_are_exact_complements(op, value, field, expected):
    assert leaf_holds(NEGATIONS[op], field, value, now=NOW) is (not expected)


def test_negations_are_true_on_a_missing_field():
    for op, value in [("ne", "x"), ("not_in", ["x"]), ("not_contains", "x"), ("not_exists", None)]:
        tree = {"field": "contact.plan", "op": op, "value": value}
        assert evaluate(tree, {"contact": {}})


def test_every_op_is_covered_by_the_table():
    from engine.rules.conditions import OPS

    covered = {row[0] for row in LEAF_TABLE} | set(NEGATIONS.values())
    assert covered == OPS


VARIABLES = {
    "contact": {"id": "con_1", "external_id": "u1", "plan": "pro", "address": {"city": "Cork"}},
    "event": {
        "name": "lead.status.update",
        "id": "evt_1",
        "occurred_at": datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
        "properties": {"score": 42, "tags": ["hot"]},
    },
    "campaign": {"id": "cmp_1", "name": "Welcome"},
}


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        (None, True),
        ({}, True),
        ({"all": []}, True),
        ({"any": []}, False),
        ({"field": "contact.address.city", "op": "eq", "value": "Cork"}, True),
        ({"field": "contact.address.zip", "op": "exists"}, False),
        ({"field": "contact.plan.inner", "op": "exists"}, False),
        ({"field": "event.properties.score", "op": "gte", "value": 40}, True),
        ({"field": "event.properties.tags", "op": "contains", "value": "hot"}, True),
        ({"field": "event.properties.tags.0", "op": "exists"}, False),  # lists are not walked
        ({"field": "event.name", "op": "starts_with", "value": "lead."}, True),
        ({"field": "event.occurred_at", "op": "after", "value": "2026-01-01"}, True),
        ({"field": "campaign.name", "op": "eq", "value": "Welcome"}, True),
        ({"field": "contact.external_id", "op": "eq", "value": "u1"}, True),
        (
            {
                "all": [
                    {"field": "contact.plan", "op": "eq", "value": "pro"},
                    {
                        "any": [
                            {"field": "event.properties.score", "op": "lt", "value": 10},
                            {"not": {"field": "contact.address.city", "op": "eq", "value": "X"}},
                        ]
                    },
                ]
            },
            True,
        ),
        ({"not": {"all": [{"field": "contact.plan", "op": "eq", "value": "pro"}]}}, False),
    ],
)
def test_evaluate_trees(tree, expected):
    assert validate_conditions(tree) == []
    assert evaluate(tree, VARIABLES, now=NOW) is expected


def test_event_fields_are_missing_when_there_is_no_event():
    tree = {"field": "event.name", "op": "ne", "value": "x"}
    assert evaluate(tree, {"contact": {}})
    assert not evaluate({"field": "event.name", "op": "exists"}, {"contact": {}})


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        (
            {
                "all": [
                    {"field": "contact.a", "op": "eq", "value": 1},
                    {"any": [{"field": "contact.b", "op": "equals", "value": 1}]},
                ]
            },
            [("conditions.all[1].any[0].op", "unknown operator 'equals'")],
        ),
        ([], [("conditions", "must be an object")]),
        ({"all": {}}, [("conditions.all", "must be a list of conditions")]),
        ({"all": [], "any": []}, [("conditions", "a group has exactly one key: all, any or not")]),
        ({"not": "x"}, [("conditions.not", "must be an object")]),
        (
            {"field": "plan", "op": "eq", "value": 1},
            [("conditions.field", "must start with one of: campaign, contact, event")],
        ),
        (
            {"field": "contact", "op": "eq", "value": 1},
            [("conditions.field", "must name a field below the root, at most 8 levels deep")],
        ),
        (
            {"field": "contact..x", "op": "eq", "value": 1},
            [("conditions.field", "each part must be 1-64 letters, digits, spaces or _-:@$")],
        ),
        (
            {"field": 'contact.a"b', "op": "exists"},
            [("conditions.field", "each part must be 1-64 letters, digits, spaces or _-:@$")],
        ),
        ({"field": "contact.a", "op": "eq"}, [("conditions.value", "is required")]),
        (
            {"field": "contact.a", "op": "eq", "value": [1]},
            [("conditions.value", "must be a string, number or boolean")],
        ),
        (
            {"field": "contact.a", "op": "eq", "value": None},
            [("conditions.value", "must be a string, number or boolean")],
        ),
        (
            {"field": "contact.a", "op": "eq", "value": float("nan")},
            [("conditions.value", "must be a finite number within ±2^53")],
        ),
        (
            {"field": "contact.a", "op": "gt", "value": True},
            [("conditions.value", "must be a string or number")],
        ),
        (
            {"field": "contact.a", "op": "in", "value": "pro"},
            [("conditions.value", "must be a list of at most 1000 values")],
        ),
        (
            {"field": "contact.a", "op": "in", "value": ["a", {"b": 1}]},
            [
                (
                    "conditions.value",
                    "every item must be a string, number or boolean (finite, within ±2^53)",
                )
            ],
        ),
        (
            {"field": "contact.a", "op": "starts_with", "value": 1},
            [("conditions.value", "must be a string")],
        ),
        (
            {"field": "contact.a", "op": "exists", "value": 1},
            [("conditions.value", "takes no value")],
        ),
        (
            {"field": "contact.a", "op": "matches", "value": "("},
            [("conditions.value", "invalid regular expression: missing ): (")],
        ),
        (
            {"field": "contact.a", "op": "before", "value": "yesterday"},
            [("conditions.value", "must be an ISO 8601 date or date-time, or now, now-7d, now+2h")],
        ),
        (
            {"field": "contact.a", "op": "after", "value": "2026-02-30"},
            [("conditions.value", "must be an ISO 8601 date or date-time, or now, now-7d, now+2h")],
        ),
        (
            {"field": "contact.a", "op": "eq", "value": 1, "extra": 2},
            [("conditions.extra", "unknown key")],
        ),
    ],
)
def test_validation_problems_name_the_bad_node(tree, expected):
    problems = validate_conditions(tree)
    assert [(p.path, p.message) for p in problems] == expected


def test_valid_trees_have_no_problems():
    tree = {
        "any": [
            {"field": "contact.plan", "op": op, "value": value}
            for op, value in [
                ("eq", "pro"), ("ne", 1), ("gt", 1.5), ("lte", "m"), ("in", ["a", 1, True]),
                ("not_in", []), ("contains", "x"), ("not_contains", False), ("starts_with", ""),
                ("ends_with", "z"), ("matches", "^a[0-9]{2,3}$"), ("before", "2026-01-01"),
                ("after", "now-30d"), ("after", "2026-01-01T09:00:00.5+05:30"),
            ]
        ]
        + [
            {"field": "contact.plan", "op": "exists"},
            {"field": "contact.a b", "op": "not_exists", "value": None},
        ]
    }  # fmt: skip
    assert validate_conditions(tree) == []
    assert validate_conditions(tree, allowed_roots=frozenset({"contact"})) == []


def test_custom_path_and_roots():
    problems = validate_conditions(
        {"field": "event.name", "op": "exists"},
        path="audience.conditions",
        allowed_roots=frozenset({"contact"}),
    )
    assert problems == [RuleProblem("audience.conditions.field", "must start with one of: contact")]
    assert problems[0].as_dict() == {
        "path": "audience.conditions.field",
        "message": "must start with one of: contact",
    }


def _nested(depth: int) -> dict:
    tree: dict = {"field": "contact.a", "op": "exists"}
    for _ in range(depth - 1):
        tree = {"not": tree}
    return tree


def test_depth_limit():
    assert validate_conditions(_nested(16)) == []
    problems = validate_conditions(_nested(17))
    assert [p.message for p in problems] == ["conditions nest deeper than 16 levels"]
    assert problems[0].path == "conditions" + ".not" * 16


def test_a_very_deep_tree_is_refused_without_recursing_through_it():
    assert validate_conditions(_nested(5000))


def test_node_limit():
    leaf = {"field": "contact.a", "op": "exists"}
    assert validate_conditions({"all": [leaf] * 199}) == []
    problems = validate_conditions({"all": [leaf] * 200})
    assert [(p.path, p.message) for p in problems] == [
        ("conditions", "too many conditions (more than 200)")
    ]


# --------------------------------------------------------------------------- regex


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+$", "(a|aa)*c", "(a*)*b", "^(([a-z])+.)+[A-Z]([a-z])+$", "(.*a){20}", "(x+x+)+y"],
)
def test_pathological_patterns_finish_on_hostile_input(pattern):
    assert regex_problem(pattern) is None
    hostile = "a" * 50_000 + "!"
    tree = {"field": "contact.s", "op": "matches", "value": pattern}
    assert evaluate(tree, {"contact": {"s": hostile}}) in (True, False)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("a" * 257, "must be at most 256 characters"),
        ("(a)\\1", "unsupported escape \\1"),
        ("\\bword", "unsupported escape \\b"),
        ("(?=a)", "only (?: ) groups and a leading (?i) are supported"),
        ("(?<name>a)", "only (?: ) groups and a leading (?i) are supported"),
        ("a(?i)b", "only (?: ) groups and a leading (?i) are supported"),
        ("a{1000}", "a { must be a repetition {m}, {m,} or {m,n} up to 255 (or escape it)"),
        ("a{", "a { must be a repetition {m}, {m,} or {m,n} up to 255 (or escape it)"),
        ("a}", "escape a literal } as \\}"),
        ("[\\D]", "unsupported escape \\D"),
        ("\\", "ends with a lone backslash"),
        ("[[:alpha:", "unterminated [: class :]"),
        (5, "must be a regular expression string"),
    ],
)
def test_regex_subset_refusals(pattern, message):
    assert regex_problem(pattern) == message


@pytest.mark.parametrize(
    "pattern",
    ["^a.b$", "[a-z]+", "[^0-9]", "x{2}", "x{2,}", "x{2,5}", "a*?b", "(?:ab)+", "(?i)abc",
     "\\d\\w\\s\\D\\W\\S", "[\\d_]", "\\.\\[\\{\\}", "[[:alpha:]]", "[]a]", "a|b", "é"],
)  # fmt: skip
def test_regex_subset_accepts(pattern):
    assert regex_problem(pattern) is None


# --------------------------------------------------------------------------- instants


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_iso_instants_agree_with_datetime(moment):
    expected = (moment.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )
    assert iso_instant_micros(moment.isoformat()) == expected
    assert iso_instant_micros(moment.isoformat(sep=" ") + "Z") == expected
    shifted = moment.replace(tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    assert iso_instant_micros(shifted.isoformat()) == expected + 19_800_000_000


@pytest.mark.parametrize(
    "text",
    ["2026-02-29", "2026-13-01", "2026-04-31", "2026-01-05T24:00", "2026-01-05T10:60",
     "2026-01-05Z", "2026-01-05T10", "20260105", "2026-01-05t10:00", "2026-01-05T10:00:00+1",
     "2026-01-05T10:00:00.", "2026-01-05T10:00:00.1234567890", "٢٠٢٦-01-05", "2026-01-05\n"],
)  # fmt: skip
def test_strings_that_are_not_instants(text):
    assert iso_instant_micros(text) is None


def test_leap_days_and_fractions():
    assert iso_instant_micros("2024-02-29") is not None
    assert iso_instant_micros("2000-02-29") is not None
    assert iso_instant_micros("1900-02-29") is None
    base = iso_instant_micros("2026-01-05T10:00:00Z")
    assert iso_instant_micros("2026-01-05T10:00:00.5Z") == base + 500_000
    assert iso_instant_micros("2026-01-05T10:00:00.123456789Z") == base + 123_456
