"""Compile a condition tree to a SQLAlchemy boolean over contacts, for schedule audiences.

The SQL must give exactly the answer :func:`engine.rules.conditions.evaluate` gives for the same
contact, on SQLite (JSON1: ``json_type``/``json_extract``/``json_each``) and PostgreSQL
(JSONB: ``->``, ``->>``, ``jsonb_typeof``, ``@>``). The type rules are those stated in
``engine.rules.conditions``; the traps handled here:

- NULL: every leaf is ``COALESCE(<leaf>, false)`` so a missing field gives false, never
  NULL, and ``not``/``ne``/``not_in``/``not_contains``/``not_exists`` are plain ``NOT``.
- Kinds are checked explicitly (``json_type``/``jsonb_typeof``), so ``"42"`` never meets
  ``42`` and ``true`` never meets ``1``.
- String order is code point order: SQLite's BINARY collation, PostgreSQL ``COLLATE "C"``.
- Paths walk objects only (``->`` with text keys, ``$."key"``), never array indexes.
- ``before``/``after``: PostgreSQL parses the ISO shape with a regex guard and integer
  arithmetic (no cast that could raise on bad data); SQLite calls the Python parser.

SQLite needs two Python functions on every connection, ``hookcast_regexp`` (RE2, as
``matches`` evaluates) and ``hookcast_instant`` (ISO string → epoch microseconds): call
:func:`install_sqlite_functions` on the engine, or :func:`register_sqlite_functions` from
a ``connect`` listener. (SQLAlchemy's own SQLite ``regexp`` uses Python ``re``; ours has a
distinct name so neither replaces the other.)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from engine.rules import conditions as rules
from engine.rules.conditions import ORDERING_OPERATORS, RuleProblem

__all__ = [
    "audience_sql_supported",
    "conditions_to_sql",
    "install_sqlite_functions",
    "register_sqlite_functions",
]


def audience_sql_supported(tree: Any) -> list[RuleProblem]:
    """Problems if a schedule audience uses anything but ``contact.*`` fields."""
    return rules.validate_conditions(
        tree, path="audience.conditions", allowed_roots=frozenset({"contact"})
    )


def conditions_to_sql(
    tree: Any | None,
    *,
    attributes: ColumnElement,
    external_id: ColumnElement,
    contact_id: ColumnElement,
    dialect_name: str,
    now: datetime | None = None,
) -> ColumnElement[bool]:
    """A WHERE clause selecting exactly the contacts ``rules.evaluate`` accepts.

    ``tree`` must already be valid for an audience (:func:`audience_sql_supported`).
    ``attributes`` is the JSON column of contact attributes; ``contact.id`` and
    ``contact.external_id`` read the given columns. Relative times resolve against ``now``.
    """
    if dialect_name not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported dialect {dialect_name!r}")
    if tree is None or tree == {}:
        return sa.true()
    problems = audience_sql_supported(tree)
    if problems:
        raise ValueError(f"{problems[0].path}: {problems[0].message}")
    compiler = _Compiler(attributes, external_id, contact_id, dialect_name, now)
    return compiler.node(tree)


class _Compiler:
    def __init__(
        self,
        attributes: ColumnElement,
        external_id: ColumnElement,
        contact_id: ColumnElement,
        dialect_name: str,
        now: datetime | None,
    ) -> None:
        self.attributes = attributes
        self.columns = {"id": contact_id, "external_id": external_id}
        self.postgres = dialect_name == "postgresql"
        self.now = now

    def node(self, node: dict) -> ColumnElement[bool]:
        if "all" in node:
            return sa.and_(sa.true(), *(self.node(child) for child in node["all"]))
        if "any" in node:
            return sa.or_(sa.false(), *(self.node(child) for child in node["any"]))
        if "not" in node:
            return sa.not_(self.node(node["not"]))
        op = node["op"]
        positive = rules.NEGATED_OPS.get(op)
        field = self.field(node["field"])
        leaf = _leaf(field, positive or op, node.get("value"), self.now)
        safe = sa.func.coalesce(leaf, sa.false(), type_=sa.Boolean)
        return sa.not_(safe) if positive else safe

    def field(self, path: str) -> _Field:
        segments = path.split(".")[1:]
        if len(segments) == 1 and segments[0] in self.columns:
            return _ColumnField(self.columns[segments[0]], self.postgres)
        if self.postgres:
            return _PostgresJsonField(self.attributes, segments)
        return _SqliteJsonField(self.attributes, segments)


def _leaf(field: _Field, op: str, value: Any, now: datetime | None) -> ColumnElement[bool]:
    if op == "exists":
        return field.present()
    if op == "eq":
        return field.equals(value)
    if op == "in":
        return sa.or_(sa.false(), *(field.equals(item) for item in value))
    if op in ("gt", "gte", "lt", "lte"):
        return field.compare(op, value)
    if op == "contains":
        in_list = field.list_contains(value)
        if isinstance(value, str):
            return sa.or_(sa.and_(field.is_string(), field.substring_of(value)), in_list)
        return in_list
    if op in ("starts_with", "ends_with"):
        if value == "":
            return field.is_string()
        length = len(value)
        part = field.left_chars(length) if op == "starts_with" else field.right_chars(length)
        return sa.and_(field.is_string(), part == value)
    if op == "matches":
        return sa.and_(field.is_string(), field.regex_search(value))
    if op in ("before", "after"):
        bound = rules.rule_instant_micros(value, now=now)
        instant = field.instant()
        compared = instant < bound if op == "before" else instant > bound
        return sa.and_(field.is_string(), compared)
    raise ValueError(f"unknown operator {op!r}")


class _Field:
    """A contact field in SQL: its kind tests and the pieces the ops are built from."""

    postgres: bool
    text: ColumnElement

    def present(self) -> ColumnElement[bool]:
        raise NotImplementedError

    def is_string(self) -> ColumnElement[bool]:
        raise NotImplementedError

    def equals(self, value: Any) -> ColumnElement[bool]:
        raise NotImplementedError

    def compare(self, op: str, value: Any) -> ColumnElement[bool]:
        raise NotImplementedError

    def list_contains(self, value: Any) -> ColumnElement[bool]:
        return sa.false()

    def ordered_text(self) -> ColumnElement:
        return self.text.collate("C") if self.postgres else self.text

    def substring_of(self, value: str) -> ColumnElement[bool]:
        function = sa.func.strpos if self.postgres else sa.func.instr
        return function(self.text, value) > 0

    def left_chars(self, length: int) -> ColumnElement:
        if self.postgres:
            return sa.func.left(self.text, length)
        return sa.func.substr(self.text, 1, length)

    def right_chars(self, length: int) -> ColumnElement:
        if self.postgres:
            return sa.func.right(self.text, length)
        return sa.func.substr(self.text, -length)

    def regex_search(self, pattern: str) -> ColumnElement[bool]:
        if self.postgres:
            return self.text.op("~", return_type=sa.Boolean)(sa.literal(pattern, sa.Text))
        return sa.func.hookcast_regexp(pattern, self.text, type_=sa.Boolean)

    def instant(self) -> ColumnElement[int]:
        if self.postgres:
            return _postgres_instant(self.text)
        return sa.func.hookcast_instant(self.text, type_=sa.BigInteger)


class _SqliteJsonField(_Field):
    postgres = False

    def __init__(self, attributes: ColumnElement, segments: list[str]) -> None:
        path = "$" + "".join(f'."{segment}"' for segment in segments)
        self.attributes = attributes
        self.path = path
        self.type = sa.func.json_type(attributes, path, type_=sa.Text)
        self.text = sa.func.json_extract(attributes, path, type_=sa.Text)
        self.value = sa.func.json_extract(attributes, path)

    def present(self) -> ColumnElement[bool]:
        return self.type.in_(["integer", "real", "text", "true", "false", "array", "object"])

    def is_string(self) -> ColumnElement[bool]:
        return self.type == "text"

    def equals(self, value: Any) -> ColumnElement[bool]:
        return _sqlite_item_equals(self.type, self.value, value)

    def compare(self, op: str, value: Any) -> ColumnElement[bool]:
        if isinstance(value, str):
            return sa.and_(self.is_string(), ORDERING_OPERATORS[op](self.text, value))
        number = sa.type_coerce(self.value, sa.Float)
        return sa.and_(self.type.in_(["integer", "real"]), ORDERING_OPERATORS[op](number, value))

    def list_contains(self, value: Any) -> ColumnElement[bool]:
        elements = sa.func.json_each(self.attributes, self.path).table_valued("type", "value")
        match = _sqlite_item_equals(elements.c.type, elements.c.value, value)
        return sa.and_(self.type == "array", sa.exists().select_from(elements).where(match))


def _sqlite_item_equals(
    json_type: ColumnElement, sql_value: ColumnElement, value: Any
) -> ColumnElement[bool]:
    if isinstance(value, bool):
        return json_type == ("true" if value else "false")
    if isinstance(value, str):
        return sa.and_(json_type == "text", sa.type_coerce(sql_value, sa.Text) == value)
    return sa.and_(json_type.in_(["integer", "real"]), sa.type_coerce(sql_value, sa.Float) == value)


class _PostgresJsonField(_Field):
    postgres = True

    def __init__(self, attributes: ColumnElement, segments: list[str]) -> None:
        node = sa.type_coerce(attributes, JSONB)
        for segment in segments[:-1]:
            node = node.op("->", return_type=JSONB)(sa.literal(segment, sa.Text))
        last = sa.literal(segments[-1], sa.Text)
        self.json = node.op("->", return_type=JSONB)(last)
        self.text = node.op("->>", return_type=sa.Text)(last)
        self.type = sa.func.jsonb_typeof(self.json, type_=sa.Text)

    def present(self) -> ColumnElement[bool]:
        return self.type != "null"

    def is_string(self) -> ColumnElement[bool]:
        return self.type == "string"

    def equals(self, value: Any) -> ColumnElement[bool]:
        return self.json == _jsonb(value)

    def compare(self, op: str, value: Any) -> ColumnElement[bool]:
        if isinstance(value, str):
            return sa.and_(self.is_string(), ORDERING_OPERATORS[op](self.ordered_text(), value))
        return sa.and_(self.type == "number", ORDERING_OPERATORS[op](self.json, _jsonb(value)))

    def list_contains(self, value: Any) -> ColumnElement[bool]:
        contained = self.json.op("@>", return_type=sa.Boolean)(_jsonb([value]))
        return sa.and_(self.type == "array", contained)


def _jsonb(value: Any) -> ColumnElement:
    return sa.cast(sa.literal(json.dumps(value), sa.Text), JSONB)


class _ColumnField(_Field):
    """``contact.id`` / ``contact.external_id``: plain columns, strings (or integers)."""

    def __init__(self, column: ColumnElement, postgres: bool) -> None:
        self.column = column
        self.text = column
        self.postgres = postgres
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            python_type = str
        self.numeric = python_type is int

    def present(self) -> ColumnElement[bool]:
        return self.column.is_not(None)

    def is_string(self) -> ColumnElement[bool]:
        return sa.false() if self.numeric else self.column.is_not(None)

    def _kind_matches(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        return isinstance(value, int | float) if self.numeric else isinstance(value, str)

    def equals(self, value: Any) -> ColumnElement[bool]:
        return self.column == value if self._kind_matches(value) else sa.false()

    def compare(self, op: str, value: Any) -> ColumnElement[bool]:
        if not self._kind_matches(value):
            return sa.false()
        column = self.column if self.numeric else self.ordered_text()
        return ORDERING_OPERATORS[op](column, value)


def _postgres_instant(text: ColumnElement) -> ColumnElement[int]:
    """Epoch microseconds of an ISO string, by the arithmetic of ``rules.iso_instant_micros``.

    NULL for anything that is not the accepted shape or names a day the month lacks. The
    regex guard runs first (CASE evaluates lazily), so no cast ever sees bad input.
    """

    def number(expression: ColumnElement) -> ColumnElement[int]:
        return sa.cast(expression, sa.BigInteger)

    def regex_group(pattern: str) -> ColumnElement:
        return sa.func.substring(text, sa.literal(pattern, sa.Text), type_=sa.Text)

    year = number(sa.func.substr(text, 1, 4))
    month = number(sa.func.substr(text, 6, 2))
    day = number(sa.func.substr(text, 9, 2))
    has_time = sa.func.length(text) > 10
    hour = sa.case((has_time, number(sa.func.substr(text, 12, 2))), else_=0)
    minute = sa.case((has_time, number(sa.func.substr(text, 15, 2))), else_=0)
    second = number(sa.func.coalesce(regex_group("^.{16}:([0-9]{2})"), "0"))
    fraction_digits = sa.func.coalesce(regex_group("[.]([0-9]+)"), "") + "000000"
    fraction = number(sa.func.substr(fraction_digits, 1, 6))
    zone = regex_group("([+-][0-9]{2}:[0-9]{2})$")
    zone_seconds = (
        number(sa.func.substr(zone, 2, 2)) * 3600 + number(sa.func.substr(zone, 5, 2)) * 60
    )
    offset = sa.func.coalesce(
        sa.case((sa.func.substr(zone, 1, 1) == "-", -zone_seconds), else_=zone_seconds), 0
    )
    shifted_year = year + 400 - sa.case((month <= 2, 1), else_=0)
    month_from_march = (month + 9) % 12
    days = (
        shifted_year * 365
        + shifted_year // 4
        - shifted_year // 100
        + shifted_year // 400
        + (month_from_march * 153 + 2) // 5
        + day
        - 1
        - rules.EPOCH_DAYS
    )
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    leap = sa.or_(sa.and_(year % 4 == 0, year % 100 != 0), year % 400 == 0)
    month_days = sa.case(
        (month.in_([4, 6, 9, 11]), 30),
        (month == 2, sa.case((leap, 29), else_=28)),
        else_=31,
    )
    valid_shape = text.op("~", return_type=sa.Boolean)(
        sa.literal(rules.ISO_INSTANT_PATTERN, sa.Text)
    )
    return sa.case(
        (valid_shape, sa.case((day <= month_days, seconds * 1_000_000 + fraction))),
    )


# --------------------------------------------------------------------------- SQLite hooks


def _sqlite_regexp(pattern: str | None, value: Any) -> int | None:
    if pattern is None or not isinstance(value, str):
        return None
    return 1 if rules.compiled_regex(pattern).search(value) is not None else 0


def _sqlite_instant(value: Any) -> int | None:
    return rules.iso_instant_micros(value) if isinstance(value, str) else None


def register_sqlite_functions(dbapi_connection: Any, connection_record: Any = None) -> None:
    """Register ``hookcast_regexp(pattern, text)`` and ``hookcast_instant(text)`` on a
    sqlite3 connection; usable directly as a SQLAlchemy ``connect`` event listener."""
    dbapi_connection.create_function("hookcast_regexp", 2, _sqlite_regexp, deterministic=True)
    dbapi_connection.create_function("hookcast_instant", 1, _sqlite_instant, deterministic=True)


def install_sqlite_functions(engine: sa.Engine) -> None:
    """Hook :func:`register_sqlite_functions` on every new connection of a SQLite engine."""
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", register_sqlite_functions)
