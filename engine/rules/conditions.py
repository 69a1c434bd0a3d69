"""Campaign rules: condition trees and their type rules (event patterns: ``engine.rules.patterns``).

Pure: plain values in, plain values out. ``engine.rules.sql`` compiles the same trees to
SQL for schedule audiences and must agree with :func:`evaluate` on every contact.

A tree is ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}`` or a leaf
``{"field": "contact.plan", "op": "eq", "value": "pro"}``. ``None`` or ``{}`` means
everyone; ``{"all": []}`` is true and ``{"any": []}`` is false. A tree deeper than 16
levels or with more than 200 nodes is refused.

Type rules (kinds: string, number, bool, null, list, object, missing):

- No coercion. ``"42"`` is a string and never equals or compares with ``42``; ``True``
  is a bool, never the number 1. ``1 == 1.0``.
- ``eq``: same kind and equal (values are strings, numbers or bools; lists and objects
  never equal a value). ``in``: ``eq`` to one of the listed values.
- ``gt gte lt lte``: number with number, or string with string (code point order, so ISO
  dates written the same way order correctly as strings). Anything else is false.
- ``contains``: substring when the field is a string and the value a string; membership
  (by ``eq``) when the field is a list. ``starts_with``/``ends_with``: strings only.
- ``exists``: present and not null.
- ``matches``: the field is a string and the pattern is found in it (a search, not a full
  match; anchor with ``^``/``$``). RE2 (linear time), ``.`` matches newlines. Only a subset
  that PostgreSQL's ``~`` reads the same way is accepted (see :func:`regex_problem`).
- ``before``/``after``: both sides are instants. A field is an instant when it is an ISO
  8601 string ``YYYY-MM-DD`` or ``YYYY-MM-DD[T ]HH:MM[:SS[.fraction]][Z|±HH:MM]`` (naive =
  UTC, date only = midnight UTC, fractions beyond microseconds are cut), or a Python
  ``date``/``datetime`` (``event.occurred_at``). Numbers (epoch seconds) are not dates.
  The value is such a string or a relative time ``now``, ``now-7d``, ``now+2h`` (units
  ``s m h d w``), resolved when the rule is evaluated.
- A field that is missing, null, or of another kind makes every positive op false.
  ``ne not_in not_contains not_exists`` are the exact negations of ``eq in contains
  exists``, so they are true on a missing field; ``{"not": ...}`` negates likewise.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import re2

MAX_DEPTH = 16
MAX_NODES = 200
MAX_REGEX_LENGTH = 256
MAX_LIST_VALUES = 1000
MAX_SAFE_INTEGER = 2**53

OPS = frozenset(
    [
        "eq",
        "ne",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "exists",
        "not_exists",
        "matches",
        "before",
        "after",
    ]
)
NEGATED_OPS = {"ne": "eq", "not_in": "in", "not_contains": "contains", "not_exists": "exists"}
DEFAULT_ROOTS = frozenset({"contact", "event", "campaign"})

_FIELD_SEGMENT = re.compile(r"[\w\- :@$]{1,64}")
_RELATIVE_TIME = re.compile(r"now(?:([+-])([0-9]{1,6})([smhdw]))?", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

#: The accepted ISO 8601 shape, shared verbatim with the PostgreSQL compiler.
ISO_INSTANT_PATTERN = (
    "^([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    "([T ]([01][0-9]|2[0-3]):([0-5][0-9])(:([0-5][0-9])([.]([0-9]{1,9}))?)?"
    "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
)
_ISO_INSTANT = re.compile(ISO_INSTANT_PATTERN, re.ASCII)


@dataclass(frozen=True)
class RuleProblem:
    """One thing wrong with a rule, at a dotted path such as ``conditions.all[1].op``."""

    path: str
    message: str

    def as_dict(self) -> dict:
        return {"path": self.path, "message": self.message}


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# --------------------------------------------------------------------------- validation


def validate_conditions(
    tree: Any,
    *,
    path: str = "conditions",
    allowed_roots: frozenset[str] = DEFAULT_ROOTS,
) -> list[RuleProblem]:
    """Every problem in a condition tree, each with the path of the bad node."""
    if tree is None or tree == {}:
        return []
    problems: list[RuleProblem] = []
    count = [0]
    _validate_node(tree, path, 1, count, allowed_roots, problems)
    if count[0] > MAX_NODES:
        problems.append(RuleProblem(path, f"too many conditions (more than {MAX_NODES})"))
    return problems


def _validate_node(
    node: Any,
    path: str,
    depth: int,
    count: list[int],
    roots: frozenset[str],
    problems: list[RuleProblem],
) -> None:
    count[0] += 1
    if count[0] > MAX_NODES:
        return
    if depth > MAX_DEPTH:
        problems.append(RuleProblem(path, f"conditions nest deeper than {MAX_DEPTH} levels"))
        return
    if not isinstance(node, Mapping):
        problems.append(RuleProblem(path, "must be an object"))
        return
    groups = [key for key in ("all", "any", "not") if key in node]
    if groups:
        if len(node) != 1:
            problems.append(RuleProblem(path, "a group has exactly one key: all, any or not"))
            return
        key = groups[0]
        children = node[key]
        if key == "not":
            _validate_node(children, f"{path}.not", depth + 1, count, roots, problems)
            return
        if not isinstance(children, list):
            problems.append(RuleProblem(f"{path}.{key}", "must be a list of conditions"))
            return
        for index, child in enumerate(children):
            _validate_node(child, f"{path}.{key}[{index}]", depth + 1, count, roots, problems)
        return
    _validate_leaf(node, path, roots, problems)


def _validate_leaf(
    leaf: Mapping, path: str, roots: frozenset[str], problems: list[RuleProblem]
) -> None:
    unknown = sorted(set(leaf) - {"field", "op", "value"})
    if unknown:
        problems.append(RuleProblem(f"{path}.{unknown[0]}", "unknown key"))
    field_problem = field_path_problem(leaf.get("field"), roots)
    if field_problem:
        problems.append(RuleProblem(f"{path}.field", field_problem))
    op = leaf.get("op")
    if op not in OPS:
        problems.append(RuleProblem(f"{path}.op", f"unknown operator {op!r}"))
        return
    value_problem = _value_problem(op, leaf.get("value", MISSING))
    if value_problem:
        problems.append(RuleProblem(f"{path}.value", value_problem))


def field_path_problem(field: Any, roots: frozenset[str] = DEFAULT_ROOTS) -> str | None:
    """Why ``field`` is not a usable dotted path (``contact.plan``), or None."""
    if not isinstance(field, str) or not field:
        return "must be a dotted field path such as contact.plan"
    segments = field.split(".")
    if segments[0] not in roots:
        return f"must start with one of: {', '.join(sorted(roots))}"
    if len(segments) < 2 or len(segments) > 8:
        return "must name a field below the root, at most 8 levels deep"
    if not all(_FIELD_SEGMENT.fullmatch(segment) for segment in segments[1:]):
        return "each part must be 1-64 letters, digits, spaces or _-:@$"
    return None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str) or _is_number(value) or isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _value_problem(op: str, value: Any) -> str | None:
    if op in ("exists", "not_exists"):
        return None if value is MISSING or value is None else "takes no value"
    if value is MISSING:
        return "is required"
    if _is_number(value) and (not math.isfinite(value) or abs(value) > MAX_SAFE_INTEGER):
        return "must be a finite number within ±2^53"
    if op in ("in", "not_in"):
        if not isinstance(value, list) or len(value) > MAX_LIST_VALUES:
            return f"must be a list of at most {MAX_LIST_VALUES} values"
        if all(_value_problem("eq", item) is None for item in value):
            return None
        return "every item must be a string, number or boolean (finite, within ±2^53)"
    if op in ("eq", "ne", "contains", "not_contains"):
        return None if _is_scalar(value) else "must be a string, number or boolean"
    if op in ("gt", "gte", "lt", "lte"):
        return (
            None if isinstance(value, str) or _is_number(value) else ("must be a string or number")
        )
    if op in ("starts_with", "ends_with"):
        return None if isinstance(value, str) else "must be a string"
    if op == "matches":
        return regex_problem(value)
    if op in ("before", "after"):
        if isinstance(value, str) and (
            _RELATIVE_TIME.fullmatch(value) or iso_instant_micros(value) is not None
        ):
            return None
        return "must be an ISO 8601 date or date-time, or now, now-7d, now+2h"
    return None


# --------------------------------------------------------------------------- evaluation


def evaluate(
    tree: Any | None, variables: Mapping[str, Any], *, now: datetime | None = None
) -> bool:
    """Whether ``variables`` (``contact``, ``event``, ``campaign``) satisfy a valid tree."""
    if tree is None or tree == {}:
        return True
    return _evaluate_node(tree, variables, now)


def _evaluate_node(node: Mapping, variables: Mapping[str, Any], now: datetime | None) -> bool:
    if "all" in node:
        return all(_evaluate_node(child, variables, now) for child in node["all"])
    if "any" in node:
        return any(_evaluate_node(child, variables, now) for child in node["any"])
    if "not" in node:
        return not _evaluate_node(node["not"], variables, now)
    return leaf_holds(
        node["op"], resolve_field(variables, node["field"]), node.get("value"), now=now
    )


def resolve_field(variables: Mapping[str, Any], field: str) -> Any:
    """The value at a dotted path, or ``MISSING``; only objects are walked into."""
    current: Any = variables
    for segment in field.split("."):
        if not isinstance(current, Mapping) or segment not in current:
            return MISSING
        current = current[segment]
    return current


def leaf_holds(op: str, field: Any, value: Any, *, now: datetime | None = None) -> bool:
    """One leaf's answer for a resolved field value (``MISSING`` when absent)."""
    positive = NEGATED_OPS.get(op)
    if positive:
        return not leaf_holds(positive, field, value, now=now)
    if op == "exists":
        return field is not MISSING and field is not None
    if op == "eq":
        return scalars_equal(field, value)
    if op == "in":
        return any(scalars_equal(field, item) for item in value)
    if op in ("gt", "gte", "lt", "lte"):
        comparable = (_is_number(field) and _is_number(value)) or (
            isinstance(field, str) and isinstance(value, str)
        )
        return comparable and ORDERING_OPERATORS[op](field, value)
    if op == "contains":
        if isinstance(field, str):
            return isinstance(value, str) and value in field
        return isinstance(field, list) and any(scalars_equal(item, value) for item in field)
    if op == "starts_with":
        return isinstance(field, str) and field.startswith(value)
    if op == "ends_with":
        return isinstance(field, str) and field.endswith(value)
    if op == "matches":
        return isinstance(field, str) and compiled_regex(value).search(field) is not None
    if op in ("before", "after"):
        instant = instant_micros(field)
        if instant is None:
            return False
        bound = rule_instant_micros(value, now=now)
        return instant < bound if op == "before" else instant > bound
    raise ValueError(f"unknown operator {op!r}")


# The ordering operators; rules_sql applies the same ones to SQL expressions.
ORDERING_OPERATORS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def scalars_equal(field: Any, value: Any) -> bool:
    """``eq``: same kind (string, number, bool) and equal."""
    if isinstance(value, bool) or isinstance(field, bool):
        return isinstance(value, bool) and isinstance(field, bool) and field is value
    if isinstance(value, str):
        return isinstance(field, str) and field == value
    return _is_number(field) and _is_number(value) and field == value


# --------------------------------------------------------------------------- instants


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 (proleptic Gregorian), integer arithmetic also done in SQL."""
    shifted_year = year + 400 - (1 if month <= 2 else 0)  # keep it positive: floor == trunc
    month_from_march = (month + 9) % 12
    days = (
        365 * shifted_year
        + shifted_year // 4
        - shifted_year // 100
        + shifted_year // 400
        + (153 * month_from_march + 2) // 5
        + day
        - 1
    )
    return days - EPOCH_DAYS


EPOCH_DAYS = 0
EPOCH_DAYS = days_from_civil(1970, 1, 1)


def days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def iso_instant_micros(text: str) -> int | None:
    """Microseconds since the Unix epoch for an accepted ISO 8601 string, else None."""
    match = _ISO_INSTANT.fullmatch(text)
    if not match:
        return None
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    if day > days_in_month(year, month):
        return None
    hour = int(match[5] or 0)
    minute = int(match[6] or 0)
    second = int(match[8] or 0)
    fraction = int(((match[10] or "") + "000000")[:6])
    offset = 0
    zone = match[11]
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return (seconds - offset) * 1_000_000 + fraction


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instant_micros(value: Any) -> int | None:
    """A field value as an instant (microseconds since epoch), or None if it is not one."""
    if isinstance(value, str):
        return iso_instant_micros(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (aware - _EPOCH) // timedelta(microseconds=1)
    if isinstance(value, date):
        return days_from_civil(value.year, value.month, value.day) * 86400 * 1_000_000
    return None


def rule_instant_micros(value: str, *, now: datetime | None = None) -> int:
    """A ``before``/``after`` value (ISO or ``now±N<unit>``) as microseconds since epoch."""
    relative = _RELATIVE_TIME.fullmatch(value)
    if relative:
        moment = now or datetime.now(UTC)
        micros = instant_micros(moment)
        assert micros is not None
        if relative[1]:
            delta = int(relative[2]) * _UNIT_SECONDS[relative[3]] * 1_000_000
            micros += delta if relative[1] == "+" else -delta
        return micros
    micros = iso_instant_micros(value)
    if micros is None:
        raise ValueError(f"not a date: {value!r}")
    return micros


# --------------------------------------------------------------------------- regex


_REGEX_OPTIONS = re2.Options()
_REGEX_OPTIONS.log_errors = False
_REGEX_OPTIONS.dot_nl = True
_ALLOWED_ESCAPES = set("dDwWsS")
_BOUND = re.compile(r"\{([0-9]{1,3})(,([0-9]{0,3}))?\}", re.ASCII)


def regex_problem(pattern: Any) -> str | None:
    """Why ``pattern`` is not an accepted ``matches`` pattern, or None.

    Accepted: literals, ``.``, ``^ $``, ``* + ?`` (and lazy forms), ``{m}``, ``{m,}``,
    ``{m,n}`` up to 255, ``|``, ``( )`` and ``(?: )``, bracket classes including
    ``[[:alpha:]]``, escapes ``\\d \\w \\s`` (and ``\\D \\W \\S`` outside brackets) and
    backslash before punctuation, and ``(?i)`` only at the very start. These read the
    same in RE2 and PostgreSQL for ASCII text; ``\\w``, ``\\d`` and case folding may differ
    on non-ASCII letters. At most 256 characters.
    """
    if not isinstance(pattern, str):
        return "must be a regular expression string"
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"must be at most {MAX_REGEX_LENGTH} characters"
    index = 4 if pattern.startswith("(?i)") else 0
    in_brackets = bracket_start = False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            escaped = pattern[index + 1 : index + 2]
            if not escaped:
                return "ends with a lone backslash"
            if escaped.isalnum() and (
                escaped not in _ALLOWED_ESCAPES or (in_brackets and escaped in "DWS")
            ):
                return f"unsupported escape \\{escaped}"
            index += 2
            continue
        if in_brackets:
            if pattern.startswith("[:", index):
                end = pattern.find(":]", index + 2)
                if end < 0:
                    return "unterminated [: class :]"
                index = end + 2
                continue
            if char == "]" and not bracket_start:
                in_brackets = False
            bracket_start = False
            index += 1
            continue
        if char == "[":
            in_brackets = True
            index += 1
            if pattern.startswith("^", index):
                index += 1
            bracket_start = True
            continue
        if char == "(" and pattern.startswith("(?", index) and not pattern.startswith("(?:", index):
            return "only (?: ) groups and a leading (?i) are supported"
        if char == "{":
            bound = _BOUND.match(pattern, index)
            if not bound or any(int(n) > 255 for n in (bound[1], bound[3]) if n):
                return "a { must be a repetition {m}, {m,} or {m,n} up to 255 (or escape it)"
            index = bound.end()
            continue
        if char == "}":
            return "escape a literal } as \\}"
        index += 1
    try:
        re2.compile(pattern, _REGEX_OPTIONS)
    except re2.error as exc:
        message = exc.args[0] if exc.args else exc
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        return f"invalid regular expression: {message}"
    return None


@lru_cache(maxsize=512)
def compiled_regex(pattern: str) -> Any:
    """The RE2 program for an accepted pattern (``.`` matches newlines, like PostgreSQL)."""
    return re2.compile(pattern, _REGEX_OPTIONS)
