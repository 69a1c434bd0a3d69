"""Whole-channel validation without data, for the builder and the API (SPEC §4 "Saving").

Every problem carries a location in the channel JSON (``url``, ``headers[0].value``,
``body.fields[2].source``, ``auth.password``), a severity, and for templates a line and
column. Errors block saving; warnings do not. A warning is given for every variable used
without a fallback, except the ones that always exist (``contact.id``,
``contact.external_id``, ``campaign.*``, ``workspace.*``, ``notification.id``, ``now``).
Column numbers of syntax errors are best effort (Jinja only reports lines).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from jinja2 import meta, nodes
from jinja2.exceptions import TemplateSyntaxError

from engine.templating.body import cast_value
from engine.templating.checks import (
    AUTH_TYPES,
    BODY_MODES,
    CONTENT_TYPES,
    FIELD_TYPES,
    METHODS,
    header_name_problem,
    header_template_problem,
    host_problem,
    parse_source_path,
    url_problem,
)
from engine.templating.direct import render_template
from engine.templating.limits import RenderBudget
from engine.templating.request import RenderSettings
from engine.templating.sandbox import KNOWN_VARIABLES, SANDBOX, compile_template, parse_template
from engine.templating.syntax_words import describe_syntax_error
from engine.templating.variables import sample_variables
from engine.templating.wrapped import wrap_variables

# Attributes of the fixed-shape variables; None means "any key below is data".
_SHAPES: dict[str, dict[str, bool] | None] = {
    "campaign": {"id": False, "name": False},
    "workspace": {"id": False, "name": False},
    "notification": {"id": False},
    "now": {},
    "event": {"id": True, "name": True, "occurred_at": True, "properties": True},
    "contact": None,
}
_ALWAYS_PRESENT_CONTACT = frozenset({"id", "external_id"})
_GUARD_FILTERS = frozenset({"default", "d"})
_GUARD_TESTS = frozenset({"defined", "undefined", "none"})
_TAG_START = re.compile(r"\{[{%#]")
_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|\{\{|\{%")


@dataclass(frozen=True)
class Problem:
    """One thing wrong (``error``) or risky (``warning``) in a channel, where it is."""

    location: str
    message: str
    severity: str
    line: int | None = None
    column: int | None = None
    variable: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_channel(channel: Mapping[str, Any], settings: RenderSettings) -> list[Problem]:
    """Every problem of ``channel`` that can be found without data (errors, then warnings)."""
    if not isinstance(channel, Mapping):
        return [Problem("", "the webhook must be a JSON object", "error")]
    unique = {(p.location, p.message): p for p in reversed(list(_check_channel(channel, settings)))}
    return sorted(reversed(unique.values()), key=lambda p: p.severity != "error")


def variables_without_fallback(channel: Mapping[str, Any]) -> list[Problem]:
    """The warnings about variables used without a fallback (what the builder shows)."""
    return [
        p
        for p in validate_channel(channel, RenderSettings(require_https=False))
        if p.severity == "warning" and p.variable
    ]


def _check_channel(channel: Mapping[str, Any], settings: RenderSettings) -> Iterator[Problem]:
    method = channel.get("method", "POST")
    if method not in METHODS:
        yield Problem("method", f"method must be one of {', '.join(METHODS)}", "error")
    content_type = channel.get("content_type", "json")
    if content_type not in CONTENT_TYPES:
        yield Problem("content_type", "content_type must be json or form", "error")

    url = channel.get("url")
    if not isinstance(url, str) or not url.strip():
        yield Problem("url", "the URL is required", "error")
    else:
        url_problems = list(check_template(url, "url"))
        yield from url_problems
        if not any(p.severity == "error" for p in url_problems):
            yield from _check_url_statically(url.strip(), settings)

    auth = channel.get("auth") or {"type": "none"}
    auth_type = auth.get("type", "none") if isinstance(auth, Mapping) else None
    if auth_type not in AUTH_TYPES:
        yield Problem("auth.type", "auth.type must be none, basic or bearer", "error")
    yield from _check_headers(channel.get("headers") or [], auth_type)
    if auth_type == "basic":
        if not isinstance(auth.get("username"), str) or not auth["username"]:
            yield Problem("auth.username", "basic auth needs a username", "error")
        for key in ("username", "password"):
            if isinstance(auth.get(key), str):
                yield from check_template(auth[key], f"auth.{key}")
    elif auth_type == "bearer":
        if not isinstance(auth.get("token"), str) or not auth["token"].strip():
            yield Problem("auth.token", "bearer auth needs a token", "error")
        else:
            yield from check_template(auth["token"], "auth.token")

    body = channel.get("body") or {"mode": "default"}
    mode = body.get("mode", "default") if isinstance(body, Mapping) else None
    if mode not in BODY_MODES:
        yield Problem("body.mode", "body.mode must be default, mapping or raw", "error")
    elif mode == "mapping":
        yield from _check_fields(body.get("fields"))
    elif mode == "raw":
        yield from _check_raw(body.get("template"), method, content_type)


def _check_url_statically(url: str, settings: RenderSettings) -> Iterator[Problem]:
    tag = _TAG_START.search(url)
    if tag is None:
        problem = url_problem(url, settings)
        if problem:
            yield Problem("url", problem, "error")
        return
    prefix = url[: tag.start()]
    if "://" not in prefix:
        if not any(s.startswith(prefix.lower()) for s in ("https://", "http://")):
            yield Problem("url", "the URL must start with https:// or http://", "error")
        else:
            message = "the URL's scheme and host come from data; they are checked when sending"
            yield Problem("url", message, "warning")
        return
    scheme, _, rest = prefix.partition("://")
    if scheme.lower() not in ("http", "https"):
        yield Problem("url", "the URL must be an absolute http:// or https:// URL", "error")
    elif settings.require_https and scheme.lower() != "https":
        yield Problem("url", "the URL must use https:// (REQUIRE_HTTPS is on)", "error")
    end = re.search(r"[/?#]", rest)
    if end is None:
        return  # the host is (partly) a template: checked at send time
    authority = rest[: end.start()]
    try:
        parts = urlsplit(f"https://{authority}/")
        hostname = parts.hostname
    except ValueError:
        hostname = None
    if not hostname:
        yield Problem("url", "the URL has no valid host", "error")
    elif "@" in authority:
        yield Problem("url", "put credentials in auth, not in the URL", "error")
    else:
        problem = host_problem(hostname, settings)
        if problem:
            yield Problem("url", problem, "error")


def _check_headers(headers: Any, auth_type: Any) -> Iterator[Problem]:
    if not isinstance(headers, list):
        yield Problem("headers", "headers must be a list of {name, value} rows", "error")
        return
    seen: set[str] = set()
    for index, row in enumerate(headers):
        where = f"headers[{index}]"
        if not isinstance(row, Mapping):
            yield Problem(where, "a header row must be an object with name and value", "error")
            continue
        name = row.get("name")
        problem = header_name_problem(name)
        if problem is None and name.lower() in seen:
            problem = f"{name} appears twice"
        if problem is None and name.lower() == "authorization" and auth_type not in ("none", None):
            problem = "Authorization comes from auth; remove this header or set auth to none"
        if problem:
            yield Problem(f"{where}.name", problem, "error")
        elif isinstance(name, str):
            seen.add(name.lower())
        value = row.get("value", "")
        if not isinstance(value, str):
            yield Problem(f"{where}.value", "a header value must be text", "error")
        else:
            template_problems = list(check_template(value, f"{where}.value"))
            yield from template_problems
            if not any(p.severity == "error" for p in template_problems):
                problem = header_template_problem(value, name if isinstance(name, str) else None)
                if problem:
                    yield Problem(f"{where}.value", problem, "error")


def _check_fields(fields: Any) -> Iterator[Problem]:
    if not isinstance(fields, list):
        yield Problem("body.fields", "mapping mode needs a list of fields", "error")
        return
    names: list[tuple[str, ...]] = []
    for index, field in enumerate(fields):
        where = f"body.fields[{index}]"
        if not isinstance(field, Mapping):
            yield Problem(where, "a field must be an object with a name", "error")
            continue
        name = field.get("name")
        segments = tuple(name.split(".")) if isinstance(name, str) else ()
        if not segments or not all(s.strip() for s in segments):
            yield Problem(f"{where}.name", "a field needs a name like email or lead.score", "error")
        else:
            for other in names:
                shorter = min(len(other), len(segments))
                if other[:shorter] == segments[:shorter]:
                    message = (
                        f"{name} is used twice"
                        if other == segments
                        else f"{name} conflicts with {'.'.join(other)} (one nests under the other)"
                    )
                    yield Problem(f"{where}.name", message, "error")
                    break
            names.append(segments)
        type_name = field.get("type")
        if type_name is not None and type_name not in FIELD_TYPES:
            yield Problem(f"{where}.type", f"type must be one of {', '.join(FIELD_TYPES)}", "error")
            type_name = None
        has_fallback = "fallback" in field
        if ("source" in field) == ("value" in field):
            yield Problem(where, "a field needs either a source or a value", "error")
        elif "source" in field:
            yield from _check_source(field["source"], f"{where}.source", has_fallback)
        else:
            value = field["value"]
            if isinstance(value, str) and is_template(value):
                for problem in check_template(value, f"{where}.value"):
                    if not (has_fallback and problem.variable):
                        yield problem
            else:
                yield from _check_cast(value, type_name or "string", f"{where}.value")
        if has_fallback:
            yield from _check_cast(field["fallback"], type_name, f"{where}.fallback")


def _check_cast(value: Any, type_name: str | None, location: str) -> Iterator[Problem]:
    try:
        cast_value(value, type_name)
    except ValueError as exc:
        yield Problem(location, f"cannot cast to {type_name}: {exc}", "error")


def _check_source(source: Any, location: str, has_fallback: bool) -> Iterator[Problem]:
    segments = parse_source_path(source)
    if segments is None:
        message = "source must be a variable path like contact.email or event.properties.score"
        yield Problem(location, message, "error")
        return
    yield from _check_variable_path(segments, location, None, guarded=has_fallback)


def _check_variable_path(
    segments: list[str], location: str, line: int | None, *, guarded: bool, column: Any = None
) -> Iterator[Problem]:
    root = segments[0]
    path = ".".join(segments)
    if root not in KNOWN_VARIABLES:
        known = ", ".join(sorted(KNOWN_VARIABLES))
        message = f"unknown variable {root!r} (available: {known})"
        yield Problem(location, message, "error", line, column)
        return
    shape = _SHAPES[root]
    may_be_missing = root == "contact" and len(segments) > 1
    may_be_missing = may_be_missing and segments[1] not in _ALWAYS_PRESENT_CONTACT
    if shape is not None and len(segments) > 1:
        attribute = segments[1]
        if attribute not in shape:
            hint = ", ".join(shape) or "no attributes"
            message = f"{root} has no {attribute!r} (it has {hint})"
            if root == "event":
                message += f"; event data is under event.properties.{attribute}"
            yield Problem(location, message, "error", line, column)
            return
        if root != "event" and len(segments) > 2:
            yield Problem(location, f"{root}.{attribute} has no attributes", "error", line, column)
            return
    if root == "event":
        may_be_missing = True
    if may_be_missing and not guarded:
        message = f"{path} has no fallback: the render fails when it is missing"
        if root == "event":
            message += " (schedule runs have no event)"
        yield Problem(location, message, "warning", line, column, variable=path)


def _check_raw(template: Any, method: Any, content_type: Any) -> Iterator[Problem]:
    if not isinstance(template, str):
        yield Problem("body.template", "raw mode needs a template", "error")
        return
    if method == "GET":
        message = "a GET request has no body; use mapping fields (sent in the query string)"
        yield Problem("body.mode", message, "error")
    problems = list(check_template(template, "body.template"))
    yield from problems
    if content_type != "json" or any(p.severity == "error" for p in problems):
        return
    if not is_template(template):
        try:
            json.loads(template)
        except json.JSONDecodeError as exc:
            message = f"the body is not valid JSON: {exc.msg}"
            yield Problem("body.template", message, "error", exc.lineno, exc.colno)
        return
    try:
        with RenderBudget(0.5):
            text = render_template(template, wrap_variables(sample_variables()))
        json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"with sample data the body is not valid JSON ({exc.msg}); use | tojson on values"
        yield Problem("body.template", message, "warning")
    except Exception:  # noqa: S110  data-dependent failures are reported per variable above
        pass


# -- templates ----------------------------------------------------------------------------------


def is_template(text: str) -> bool:
    """True when ``text`` holds a Jinja tag (anything else is literal text)."""
    return _TAG_START.search(text) is not None


def check_template(source: str, location: str) -> Iterator[Problem]:
    """Syntax errors, unknown filters/tests/variables, and variables without fallback."""
    if not is_template(source):
        return
    try:
        compile_template(source)
    except TemplateSyntaxError as exc:
        line = exc.lineno or None
        column = _guess_column(source, line, exc.message or "")
        yield Problem(location, _syntax_message(exc), "error", line, column)
        return
    tree = parse_template(source)
    unknown = meta.find_undeclared_variables(tree) - KNOWN_VARIABLES - set(SANDBOX.globals)
    for name in sorted(unknown):
        node = next(n for n in tree.find_all(nodes.Name) if n.name == name)
        known = ", ".join(sorted(KNOWN_VARIABLES))
        message = f"unknown variable {name!r} (available: {known})"
        yield Problem(
            location, message, "error", node.lineno, _column_of(source, node.lineno, name)
        )
    for path, node, guarded in _variable_references(tree, guarded=False):
        line = node.lineno
        column = _column_of(source, line, ".".join(path))
        yield from _check_variable_path(path, location, line, guarded=guarded, column=column)


def _syntax_message(exc: TemplateSyntaxError) -> str:
    return describe_syntax_error(exc.message or "", filters=SANDBOX.filters, tests=SANDBOX.tests)


def _guess_column(source: str, line: int | None, message: str) -> int | None:
    """Best-effort 1-based column of a syntax error on ``line``."""
    if not line:
        return None
    lines = source.splitlines() or [""]
    if line > len(lines):
        return None
    text = lines[line - 1]
    named = re.search(r"named '([^']+)'", message)
    if named:
        found = re.search(r"(\|\s*|\bis\s+(not\s+)?)" + re.escape(named.group(1)) + r"\b", text)
        if found:
            return found.start() + 1
    for tag in _TAG.finditer(text):
        snippet = tag.group(0)
        if snippet.startswith("{{"):
            try:
                SANDBOX.parse(snippet)
            except TemplateSyntaxError:
                return tag.start() + 1
        elif snippet in ("{%", "{{") or not snippet.endswith(("}}", "%}", "#}")):
            return tag.start() + 1
    tag_word = re.search(r"tag '(\w+)'", message)
    if tag_word:
        found = re.search(r"\{%-?\s*" + tag_word.group(1) + r"\b", text)
        if found:
            return found.start() + 1
    first = _TAG.search(text)
    return first.start() + 1 if first else None


def _column_of(source: str, line: int, needle: str) -> int | None:
    lines = source.splitlines()
    if not 0 < line <= len(lines):
        return None
    found = lines[line - 1].find(needle)
    return found + 1 if found >= 0 else None


def _chain(node: nodes.Node) -> list[str] | None:
    """``contact.a["b"]`` → ``["contact", "a", "b"]``; None for anything else."""
    if isinstance(node, nodes.Name):
        return [node.name] if node.ctx == "load" else None
    if isinstance(node, nodes.Getattr):
        inner = _chain(node.node)
        return None if inner is None else [*inner, node.attr]
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        inner = _chain(node.node)
        if inner is None or not isinstance(node.arg.value, (str, int)):
            return None
        return [*inner, str(node.arg.value)]
    return None


def _variable_references(
    node: nodes.Node, guarded: bool
) -> Iterator[tuple[list[str], nodes.Node, bool]]:
    """Each maximal variable chain with whether a fallback/test protects it."""
    chain = _chain(node)
    if chain is not None:
        if chain[0] in KNOWN_VARIABLES:
            yield chain, node, guarded
        return
    if isinstance(node, nodes.Call):
        target = _chain(node.node)
        if target is not None and len(target) > 1:  # a method call: check its object
            if target[0] in KNOWN_VARIABLES:
                yield target[:-1], node.node, guarded
            children = [*node.args, *node.kwargs]
            children += [n for n in (node.dyn_args, node.dyn_kwargs) if n is not None]
            for child in children:
                yield from _variable_references(child, False)
            return
    for field, child in _children(node):
        yield from _variable_references(child, _child_guarded(node, field, guarded))


def _children(node: nodes.Node) -> Iterator[tuple[str, nodes.Node]]:
    for field in node.fields:
        value = getattr(node, field, None)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, nodes.Node):
                yield field, item


def _child_guarded(parent: nodes.Node, field: str, guarded: bool) -> bool:
    if isinstance(parent, nodes.Filter) and field == "node":
        return parent.name in _GUARD_FILTERS
    if isinstance(parent, nodes.Test) and field == "node":
        return parent.name in _GUARD_TESTS
    if isinstance(parent, (nodes.If, nodes.CondExpr)) and field == "test":
        return True  # a missing value is simply false
    if isinstance(parent, nodes.Or) and field == "left":
        return True
    if isinstance(parent, (nodes.And, nodes.Or, nodes.Not)):
        return guarded
    return False
