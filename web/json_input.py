"""Reading JSON from outside: the limits every body must keep before it reaches the engine.

- nesting at most ``MAX_JSON_DEPTH`` levels (deeper is refused, never a RecursionError);
- numbers that fit a finite double (``1e400``, ``-1e309`` or a 400-digit integer would read
  back as Infinity or not at all; NaN and Infinity are not JSON to begin with).

A document that breaks one raises :class:`JsonLimitError` (a ``ValueError``), one that is not
JSON at all a plain ``ValueError``.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

MAX_JSON_DEPTH = 64
_LARGEST_INTEGER_DIGITS = len(str(int(sys.float_info.max)))


class JsonLimitError(ValueError):
    """JSON that parses but breaks one of the limits above."""


def reject_non_json_number(name: str) -> Any:
    """``json.loads`` hook: NaN and ±Infinity are not JSON (RFC 8259) and no database
    column stores them, so a body that uses them is refused as invalid JSON."""
    raise ValueError(f"{name} is not a JSON value")


def finite_float(text: str) -> float:
    """``json.loads`` hook for numbers with a fraction or exponent."""
    value = float(text)
    if not math.isfinite(value):
        raise JsonLimitError(f"the number {_short(text)} is too large (numbers must fit a double)")
    return value


def bounded_int(text: str) -> int:
    """``json.loads`` hook for integers: at most what a double holds (about 1.8e308)."""
    if len(text) < 16:
        return int(text)
    if len(text.lstrip("-")) > _LARGEST_INTEGER_DIGITS:
        raise JsonLimitError(f"the number {_short(text)} is too large (numbers must fit a double)")
    value = int(text)
    if abs(value) > sys.float_info.max:
        raise JsonLimitError(f"the number {_short(text)} is too large (numbers must fit a double)")
    return value


def load_json(raw: str | bytes) -> Any:
    """Parse ``raw`` within the limits; ``ValueError`` (or ``JsonLimitError``) if it cannot."""
    try:
        document = json.loads(
            raw,
            parse_constant=reject_non_json_number,
            parse_float=finite_float,
            parse_int=bounded_int,
        )
    except RecursionError:
        raise JsonLimitError(too_deep_message()) from None
    opening = b"[{" if isinstance(raw, bytes) else "[{"
    brackets = raw.count(opening[0:1]) + raw.count(opening[1:2])
    if brackets > MAX_JSON_DEPTH and nested_deeper_than(document, MAX_JSON_DEPTH):
        raise JsonLimitError(too_deep_message())
    return document


def too_deep_message() -> str:
    return f"JSON may nest objects and arrays at most {MAX_JSON_DEPTH} levels deep"


def nested_deeper_than(document: Any, limit: int) -> bool:
    """Whether objects and arrays in ``document`` nest more than ``limit`` levels.

    Level by level, with plain loops: a 1,000-event batch takes about a millisecond."""
    containers = (dict, list)
    level = [document] if isinstance(document, containers) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for value in level:
            for child in value.values() if type(value) is dict else value:
                if isinstance(child, containers):
                    below.append(child)
        level = below
    return False


def _short(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:20]}…"
