"""conditions_to_sql selects exactly the contacts rules.evaluate accepts, on SQLite and
PostgreSQL (where HOOKCAST_TEST_POSTGRES_URL is set), over a throwaway contacts table."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects.postgresql import JSONB

from engine.rules.conditions import evaluate, validate_conditions
from engine.rules.sql import (
    audience_sql_supported,
    conditions_to_sql,
    install_sqlite_functions,
)

POSTGRES_URL = os.environ.get("HOOKCAST_TEST_POSTGRES_URL")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class ContactTable:
    """A scratch table (id, external_id, attributes) on one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        attributes_type = JSONB if self.dialect == "postgresql" else sa.JSON
        self.table = sa.Table(
            f"rules_sql_contacts_{uuid.uuid4().hex[:12]}",
            sa.MetaData(),
            sa.Column("id", sa.String(40), primary_key=True),
            sa.Column("external_id", sa.String(255), nullable=False),
            sa.Column("attributes", attributes_type, nullable=False),
        )
        self.table.create(engine)

    def replace_contacts(self, attribute_sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store one contact per attributes dict; returns them as evaluate sees them."""
        rows = [
            {"id": f"con_{index:03d}", "external_id": f"user-{index}", "attributes": attributes}
            for index, attributes in enumerate(attribute_sets)
        ]
        with self.engine.begin() as connection:
            connection.execute(self.table.delete())
            if rows:
                connection.execute(self.table.insert(), rows)
        return rows

    def selected_ids(self, tree: Any) -> set[str]:
        where = conditions_to_sql(
            tree,
            attributes=self.table.c.attributes,
            external_id=self.table.c.external_id,
            contact_id=self.table.c.id,
            dialect_name=self.dialect,
            now=NOW,
        )
        with self.engine.connect() as connection:
            return set(connection.scalars(sa.select(self.table.c.id).where(where)))


def evaluated_ids(rows: list[dict[str, Any]], tree: Any) -> set[str]:
    return {
        row["id"]
        for row in rows
        if evaluate(
            tree,
            {"contact": {**row["attributes"], "id": row["id"], "external_id": row["external_id"]}},
            now=NOW,
        )
    }


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not POSTGRES_URL, reason="HOOKCAST_TEST_POSTGRES_URL not set"),
            ],
        ),
    ],
)
def contacts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContactTable]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("rules_sql") / "contacts.sqlite3"
        engine = sa.create_engine(f"sqlite:///{path}")
        install_sqlite_functions(engine)
    else:
        engine = sa.create_engine(POSTGRES_URL)
    scratch = ContactTable(engine)
    try:
        yield scratch
    finally:
        scratch.table.drop(engine)
        engine.dispose()


CONTACTS: list[dict[str, Any]] = [
    {
        "plan": "pro",
        "score": 42,
        "tags": ["vip", "beta", 7, True],
        "signed_up": "2026-05-30T10:00:00Z",
    },
    {"plan": "free", "score": "42", "tags": "vip, beta", "signed_up": "2026-01-05"},
    {"plan": "Pro", "score": 41.5, "tags": [], "signed_up": "2026-02-30", "active": True},
    {"plan": None, "score": True, "tags": [["vip"]], "signed_up": 1767607200, "active": False},
    {"plan": ["pro"], "score": {"value": 42}, "tags": [1.0, False], "signed_up": None},
    {"plan": "enterprise", "score": 100, "address": {"city": "Cork", "zip": "T12"}},
    {
        "plan": "pro\nline",
        "score": -3,
        "signed_up": "2026-05-31 23:30:00+01:00",
        "name": "Ünïcødé ✓",
    },
    {"plan": "", "score": 0, "signed_up": "2025-12-31T23:59:59.999999Z", "name": "Zoë"},
    {"plan": "prozac", "score": 1e20, "signed_up": "2026-06-01T12:00:00.0000001+00:00"},
    {
        "plan": "a\"b'c%_",
        "score": 42.0,
        "signed_up": "2026-06-01T13:00:00+02:00",
        "nested": {"a": {"b": "deep"}},
    },
    {},
]


def leaf(field: str, op: str, value: Any = None) -> dict[str, Any]:
    node = {"field": f"contact.{field}", "op": op}
    if op not in ("exists", "not_exists"):
        node["value"] = value
    return node


TREES: list[Any] = [
    None,
    {},
    {"all": []},
    {"any": []},
    leaf("plan", "eq", "pro"),
    leaf("plan", "ne", "pro"),
    leaf("score", "eq", 42),
    leaf("score", "eq", "42"),
    leaf("active", "eq", True),
    leaf("active", "eq", False),
    leaf("active", "ne", True),
    leaf("score", "gt", 41.5),
    leaf("score", "gte", 41.5),
    leaf("score", "lt", 0),
    leaf("score", "lte", 0),
    leaf("score", "gt", -1e15),
    leaf("plan", "gt", "pro"),
    leaf("plan", "lt", "Pro"),
    leaf("name", "gt", "Z"),
    leaf("name", "lt", "Ünïcødé"),
    leaf("plan", "in", ["pro", "free", 42]),
    leaf("score", "in", [42, "x", True]),
    leaf("plan", "not_in", ["pro", "free"]),
    leaf("tags", "contains", "vip"),
    leaf("tags", "contains", 7),
    leaf("tags", "contains", 1),
    leaf("tags", "contains", True),
    leaf("tags", "contains", False),
    leaf("tags", "not_contains", "vip"),
    leaf("plan", "contains", "ro"),
    leaf("plan", "contains", ""),
    leaf("plan", "contains", "%"),
    leaf("plan", "contains", "_"),
    leaf("plan", "starts_with", "pro"),
    leaf("plan", "starts_with", ""),
    leaf("plan", "ends_with", "o"),
    leaf("plan", "ends_with", "line"),
    leaf("name", "ends_with", "✓"),
    leaf("plan", "exists"),
    leaf("plan", "not_exists"),
    leaf("address.city", "eq", "Cork"),
    leaf("address.zip", "exists"),
    leaf("nested.a.b", "eq", "deep"),
    leaf("plan", "matches", "^pro"),
    leaf("plan", "matches", "(?i)^pro$"),
    leaf("plan", "matches", "pro.line"),
    leaf("plan", "matches", "^[a-z]+$"),
    leaf("plan", "matches", "^$"),
    leaf("name", "matches", "[[:alpha:]]"),
    leaf("score", "matches", "4"),
    leaf("signed_up", "before", "2026-01-06"),
    leaf("signed_up", "after", "2026-05-31T22:00:00Z"),
    leaf("signed_up", "after", "2026-05-31T22:30:00Z"),
    leaf("signed_up", "before", "2026-06-01T11:00:00.000001Z"),
    leaf("signed_up", "after", "now-7d"),
    leaf("signed_up", "before", "now"),
    leaf("signed_up", "after", "now"),
    leaf("id", "eq", "con_003"),
    leaf("id", "gt", "con_005"),
    leaf("external_id", "in", ["user-1", "user-2"]),
    leaf("external_id", "starts_with", "user-1"),
    leaf("external_id", "matches", "-[0-4]$"),
    leaf("external_id", "eq", 1),
    leaf("id", "exists"),
    leaf("id", "not_exists"),
    {"not": leaf("plan", "eq", "pro")},
    {"not": {"not": leaf("plan", "exists")}},
    {"all": [
        leaf("plan", "exists"),
        {"any": [leaf("score", "gte", 42), leaf("tags", "contains", "vip")]},
    ]},
    {"any": [
        leaf("plan", "not_exists"),
        {"not": {"all": [leaf("score", "lt", 50), leaf("plan", "ne", "free")]}},
    ]},
]  # fmt: skip


@pytest.mark.parametrize("tree", TREES, ids=[str(index) for index in range(len(TREES))])
def test_sql_audience_equals_python_evaluation(contacts: ContactTable, tree: Any):
    assert audience_sql_supported(tree) == []
    rows = contacts.replace_contacts(CONTACTS)
    assert contacts.selected_ids(tree) == evaluated_ids(rows, tree)


def test_every_op_appears_in_the_tree_table():
    from engine.rules.conditions import OPS

    seen: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            seen.update([node["op"]] if "op" in node else [])
            for child in node.get("all", []) + node.get("any", []):
                walk(child)
            if "not" in node:
                walk(node["not"])

    for tree in TREES:
        walk(tree)
    assert seen == OPS


def test_audiences_only_use_contact_fields():
    problems = audience_sql_supported(
        {"any": [leaf("plan", "exists"), {"field": "event.name", "op": "exists"}]}
    )
    assert [(p.path, p.message) for p in problems] == [
        ("audience.conditions.any[1].field", "must start with one of: contact")
    ]
    with pytest.raises(ValueError, match="must start with one of: contact"):
        conditions_to_sql(
            {"field": "event.name", "op": "exists"},
            attributes=sa.column("attributes"),
            external_id=sa.column("external_id"),
            contact_id=sa.column("id"),
            dialect_name="sqlite",
        )


# --------------------------------------------------------------------------- property test

_KEYS = ["plan", "score", "tags", "when", "flag"]
_TEXT = st.text(alphabet="abAB-:. 01Zé\n%_", max_size=6)
_DATES = st.sampled_from(
    [
        "2026-01-05", "2026-01-05T10:00:00Z", "2026-01-05 10:00", "2026-01-05T10:00:00.5+05:30",
        "2026-02-29", "2024-02-29T23:59:59-00:30", "2026-13-01", "2026-01-05T24:00", "2026-1-5",
        "1999-12-31T23:59:59.999999999Z", "2026-06-01T12:00:00Z", "0001-01-01", "9999-12-31T23:59",
    ]
)  # fmt: skip
_NUMBERS = st.one_of(
    st.integers(min_value=-1000, max_value=1000),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
)
_SCALARS = st.one_of(_TEXT, _NUMBERS, st.booleans(), _DATES)
_ATTRIBUTE_VALUES = st.one_of(
    _SCALARS,
    st.none(),
    st.lists(st.one_of(_SCALARS, st.none()), max_size=4),
    st.dictionaries(st.sampled_from(["x", "y"]), _SCALARS, max_size=2),
)
_ATTRIBUTES = st.dictionaries(st.sampled_from(_KEYS), _ATTRIBUTE_VALUES, max_size=5)
_FIELDS = st.sampled_from([*_KEYS, "tags.x", "id", "external_id"])
_PATTERNS = st.sampled_from(
    ["^a", "b$", "a.b", "[0-9]+", "(?i)ab", "a|Z", "^$", "[0-9]{2}", "[[:alpha:]]", "é", "\\.",
     "^[^a]*$"]
)  # fmt: skip


def _leaves() -> st.SearchStrategy[dict[str, Any]]:
    def build(field: str, op: str, value: Any) -> dict[str, Any]:
        node = {"field": f"contact.{field}", "op": op}
        if op not in ("exists", "not_exists"):
            node["value"] = value
        return node

    by_op = {
        "eq": _SCALARS, "ne": _SCALARS, "contains": _SCALARS, "not_contains": _SCALARS,
        "gt": st.one_of(_TEXT, _NUMBERS, _DATES), "gte": st.one_of(_TEXT, _NUMBERS),
        "lt": st.one_of(_TEXT, _NUMBERS, _DATES), "lte": st.one_of(_TEXT, _NUMBERS),
        "in": st.lists(_SCALARS, max_size=3), "not_in": st.lists(_SCALARS, max_size=3),
        "starts_with": _TEXT, "ends_with": _TEXT, "exists": st.none(), "not_exists": st.none(),
        "matches": _PATTERNS, "before": st.one_of(_DATES.filter(lambda d: d not in (
            "2026-02-29", "2026-13-01", "2026-01-05T24:00", "2026-1-5")), st.just("now-30d")),
        "after": st.one_of(st.just("2026-01-05T10:00:00Z"), st.just("now")),
    }  # fmt: skip
    return st.one_of(
        *(st.builds(build, _FIELDS, st.just(op), values) for op, values in by_op.items())
    )


_TREES = st.recursive(
    _leaves(),
    lambda children: st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(children, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(children, max_size=3)),
        st.builds(lambda item: {"not": item}, children),
    ),
    max_leaves=6,
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tree=_TREES, attribute_sets=st.lists(_ATTRIBUTES, min_size=1, max_size=8))
def test_property_sql_agrees_with_evaluate(contacts: ContactTable, tree, attribute_sets):
    assert validate_conditions(tree, allowed_roots=frozenset({"contact"})) == []
    rows = contacts.replace_contacts(attribute_sets)
    assert contacts.selected_ids(tree) == evaluated_ids(rows, tree)
