"""A channel's body: the default payload, mapped fields, casts, and their encoding (SPEC §4).

Encoding decisions, so quotes, newlines and unicode in data can never break a request:

- JSON bodies are written by ``json.dumps`` (compact, UTF-8, no NaN), never by string pasting.
- ``form`` bodies and GET query strings flatten nested objects into dotted keys
  (``{"lead": {"score": 5}}`` → ``lead.score=5``, the same names a mapping uses); lists are
  sent as JSON text, ``true``/``false`` as words, ``null`` as an empty value.
- A mapping field's ``fallback`` is a static value. It replaces a ``source`` that is missing,
  ``null`` or ``""``, and a ``value`` template that renders ``""`` or uses a missing variable.
- ``type`` casts: ``string`` (default for ``value``; objects/lists become JSON text),
  ``number``, ``boolean`` (``true/false/1/0/yes/no/on/off``), ``json`` (parses a string);
  a ``source`` without ``type`` keeps its JSON type; ``null`` stays ``null``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from engine.templating.checks import MAX_URL_LENGTH
from engine.templating.errors import RenderError
from engine.templating.limits import MAX_OUTPUT_BYTES
from engine.templating.wrapped import to_json

_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BOOLEANS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def default_payload(variables: Mapping[str, Any]) -> dict[str, Any]:
    """The standard payload of body mode ``default``."""
    event = variables.get("event") or {}
    workspace = variables.get("workspace") or {}
    campaign = variables.get("campaign") or {}
    return {
        "id": (variables.get("notification") or {}).get("id"),
        "event": event.get("name"),
        "timestamp": variables.get("now"),
        "workspace_id": workspace.get("id"),
        "campaign": {"id": campaign.get("id"), "name": campaign.get("name")},
        "contact": variables.get("contact"),
        "data": event.get("properties") or {},
    }


MISSING = object()


def resolve_source(variables: Mapping[str, Any], segments: Sequence[str]) -> Any:
    """The value at a source path, or ``MISSING``; digit segments index lists."""
    value: Any = variables
    for segment in segments:
        if type(value) is dict or isinstance(value, Mapping):
            value = value.get(segment, MISSING)
        elif isinstance(value, (list, tuple)) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def cast_value(value: Any, type_name: str | None) -> Any:
    """Cast a mapped value; raises ``ValueError`` with a human message."""
    if value is None or type_name is None:
        return value
    if type_name == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return to_json(value)
    if type_name == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            text = value.strip()
            number = int(text) if text.lstrip("-").isdigit() else float(text)
        else:
            raise ValueError(f"{_short(value)} is not a number")
        if isinstance(number, float) and number in (float("inf"), float("-inf")):
            raise ValueError(f"{_short(value)} is too large a number")
        return number
    if type_name == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
            return _BOOLEANS[value.strip().lower()]
        raise ValueError(f"{_short(value)} is not a boolean (true/false)")
    if type_name == "json":
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(f"{_short(value)} is not valid JSON") from None
    raise ValueError(f"unknown type {type_name!r}")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def cast_field(value: Any, type_name: str | None, index: int) -> Any:
    """:func:`cast_value` for field ``index``; a value that does not cast fails the render."""
    try:
        return cast_value(value, type_name)
    except ValueError as exc:
        raise RenderError(f"cannot cast: {exc}", location=f"body.fields[{index}].type") from None


def place(payload: dict[str, Any], segments: Sequence[str], value: Any, location: str) -> None:
    """Puts ``value`` at a dotted field name, refusing a name that another field holds."""
    target = payload
    for segment in segments[:-1]:
        nested = target.get(segment, {})
        if not isinstance(nested, dict):
            raise RenderError(
                "this name nests under a field that already has a value", location=location
            )
        # A dict placed by an earlier field may be the contact's or event's own data:
        # nest into a copy, so rendering never changes the variables it reads.
        target[segment] = nested = dict(nested)
        target = nested
    if segments[-1] in target:
        raise RenderError("two fields have this name (or one nests under it)", location=location)
    target[segments[-1]] = value


def _form_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return to_json(value)


def flatten_for_form(payload: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Form/query pairs: nested objects become dotted keys; lists become JSON text."""
    pairs: list[tuple[str, str]] = []
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            pairs.extend(flatten_for_form(value, f"{name}."))
        else:
            pairs.append((name, _form_text(value)))
    return pairs


def with_query(url: str, query: str) -> str:
    """``url`` with mapped fields appended to its query string (GET requests)."""
    if not query:
        return url
    url = url.split("#", 1)[0]
    url += ("&" if "?" in url else "?") + query
    if len(url) > MAX_URL_LENGTH:
        raise RenderError("the URL with the mapped fields is too long", location="body")
    return url


def encoded_body(body_text: str) -> bytes:
    """The body's bytes, refused beyond ``MAX_OUTPUT_BYTES``."""
    body = body_text.encode("utf-8")
    if len(body) > MAX_OUTPUT_BYTES:
        raise RenderError(
            f"the body is larger than {MAX_OUTPUT_BYTES // 1024} KiB", location="body"
        )
    return body
