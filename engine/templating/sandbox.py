"""The one sandboxed Jinja environment every webhook template renders in.

Marketers write the templates, so they are untrusted code: the environment refuses every
attribute escape (anything starting with ``_``, ``format``/``format_map``, attributes of
numbers and types, an allow-list of string methods), drops the dangerous globals
(``cycler``, ``joiner``, ``namespace``, ``lipsum``), bounds ``range`` to 1000 items, bounds
every operation that can grow a value (``*``, ``+``, ``**``, ``~``, ``join``, ``replace``,
``center``, ``indent``, ...) to ``MAX_OUTPUT_CHARS``, and bounds a whole render in output
and wall-clock time (checked while streaming, on every call, every loop step and every
printed expression, so a loop that prints nothing still ends).

Semantics marketers rely on:

- ``default``/``d`` applies to a missing value, ``null`` and ``""`` (not to ``0``/``false``).
- A missing variable remembers its full path (``contact.first_name``); printing it,
  iterating it, comparing it or doing arithmetic with it fails the render with that path.
  It is falsy, so ``{% if contact.vip %}`` on a contact without ``vip`` takes the else branch,
  and ``is defined`` / ``default`` / ``or`` work on it.
- ``null`` prints as the empty string (use ``tojson`` to print ``null``); objects and lists
  print as JSON.
- ``tojson`` produces a compact JSON literal, UTF-8 kept as is, *not* HTML-escaped: the
  output is a webhook body, not a page, and ``"</script>"`` is a valid JSON string.
- ``urlencode`` percent-encodes everything but ``A-Z a-z 0-9 - . _ ~`` (so a value is safe as a
  path segment or a query value); a mapping becomes ``a=1&b=2``.
- ``{% include %}``, ``{% import %}`` and ``{% extends %}`` are refused: a template stands alone.

Templates see variables as :mod:`engine.templating.wrapped` views; the bounds and the render
budget are in :mod:`engine.templating.limits`; :mod:`engine.templating.direct` renders.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.filters import do_batch, do_indent, sync_do_slice
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_environment
from jinja2.visitor import NodeTransformer

from engine.templating.limits import (
    MAX_OUTPUT_CHARS,
    MAX_PRINTED_CHARS,
    MAX_RANGE,
    TemplateLimitError,
    check_size,
    check_time,
    current_guard,
)
from engine.templating.wrapped import (
    DICT_METHODS,
    SEQUENCE_METHODS,
    PathUndefined,
    VariableList,
    VariableMap,
    refuse_dunder,
    to_json,
    unwrap_variable,
)

#: The top-level variables a template may use (SPEC §3).
KNOWN_VARIABLES = frozenset({"contact", "event", "campaign", "workspace", "notification", "now"})

_STR_METHODS = frozenset(
    {
        *("lower", "upper", "title", "capitalize", "casefold", "swapcase"),
        *("strip", "lstrip", "rstrip", "split", "rsplit", "splitlines"),
        *("startswith", "endswith", "find", "rfind", "index", "rindex", "count"),
        *("partition", "rpartition", "removeprefix", "removesuffix"),
        *("isalpha", "isalnum", "isdigit", "isdecimal", "isnumeric", "isspace"),
        *("islower", "isupper", "istitle"),
    }
)
_FORBIDDEN_ATTRIBUTES = frozenset({"format", "format_map", "mro"})


def _fail_if_undefined(value: Any) -> None:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()


def url_encode(value: Any) -> str:
    """Percent-encode a value for a URL path segment or query value (``a=1&b=2`` for a mapping)."""
    _fail_if_undefined(value)
    value = unwrap_variable(value)
    if isinstance(value, Mapping):
        return "&".join(f"{url_encode(key)}={url_encode(item)}" for key, item in value.items())
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        value = to_json(value)
    return quote(str(value), safe="")


def default_value(value: Any, default: Any = "", boolean: bool = False) -> Any:
    """The fallback for a missing, ``null`` or ``""`` value (any falsy value with ``boolean``)."""
    if isinstance(value, Undefined) or value is None or (isinstance(value, str) and not value):
        return default
    if boolean and not value:
        return default
    return value


def bounded_range(*args: int) -> range:
    """``range`` limited to ``MAX_RANGE`` items."""
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise TemplateLimitError(f"range() is limited to {MAX_RANGE} items")
    return rng


def bounded_concat(parts: Iterable[Any]) -> str:
    """``~`` and block captures, refusing results over the size bound."""
    strings = [str(part) for part in parts]
    check_size(sum(map(len, strings)), "joined text")
    return "".join(strings)


def finalize(value: Any) -> Any:
    """Every printed expression: ``null`` prints empty; counts towards the render budget."""
    if value is None:
        return ""
    text = value if type(value) is str else str(value)
    guard = current_guard()
    if guard is not None:
        guard.printed += len(text)
        if guard.printed > MAX_PRINTED_CHARS:
            raise TemplateLimitError("the template prints too much text")
        guard.check_time()
    return text


@pass_environment
def _filter_join(env: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = list(value)
    if attribute is not None:
        items = [env.getattr(item, attribute) for item in items]
    strings = ["" if item is None else str(item) for item in items]
    check_size(sum(map(len, strings)) + len(str(d)) * max(len(strings) - 1, 0), "joined text")
    return str(d).join(strings)


def _filter_replace(s: Any, old: Any, new: Any, count: int | None = None) -> str:
    s, old, new = str(s), str(old), str(new)
    occurrences = s.count(old) if old else len(s) + 1
    limit = -1 if count is None else int(count)
    if limit >= 0:
        occurrences = min(occurrences, limit)
    check_size(len(s) + occurrences * (len(new) - len(old)), "replaced text")
    return s.replace(old, new, limit)


def _filter_center(value: Any, width: int = 80) -> str:
    check_size(int(width), "centered text")
    return str(value).center(int(width))


def _filter_indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    s = str(s)
    unit = len(width) if isinstance(width, str) else int(width)
    check_size(len(s) + (s.count("\n") + 1) * unit, "indented text")
    return do_indent(s, width, first, blank)


def _filter_batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
    if not 0 < int(linecount) <= MAX_OUTPUT_CHARS:
        raise TemplateLimitError("batch size out of range")
    return do_batch(value, linecount, fill_with)


def _filter_slice(value: Iterable[Any], slices: int, fill_with: Any = None) -> Any:
    if not 0 < int(slices) <= MAX_RANGE:
        raise TemplateLimitError(f"slice count is limited to {MAX_RANGE}")
    return sync_do_slice(value, slices, fill_with)


@pass_environment
def _filter_attr(env: Any, obj: Any, name: Any) -> Any:
    return env.getattr(obj, str(name))


def loop_guard(iterable: Iterable[Any]) -> Iterator[Any]:
    """Wraps every ``for`` loop's iterable so a long loop still meets the deadline."""
    guard = current_guard()
    for count, item in enumerate(iterable):
        if guard is not None and not count & 63:
            guard.check_time()
        yield item


class _InsertGuards(NodeTransformer):
    """Inserts the loop-deadline and bounded-concatenation guards into a parsed template."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("loop_guard", lineno=node.lineno),
            [node.iter],
            [],
            None,
            None,
            lineno=node.lineno,
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(
            nodes.EnvironmentAttribute("bounded_concat", lineno=node.lineno),
            [nodes.Tuple(node.nodes, "load", lineno=node.lineno)],
            [],
            None,
            None,
            lineno=node.lineno,
        )


_COMPOSITION_NODES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


class WebhookSandbox(ImmutableSandboxedEnvironment):
    """The stricter-than-Jinja sandbox shared by every render (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    concat = staticmethod(bounded_concat)  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__(
            autoescape=False,
            undefined=PathUndefined,
            finalize=finalize,
            keep_trailing_newline=True,
            auto_reload=False,
            cache_size=0,
        )
        for name in ("cycler", "joiner", "namespace", "lipsum"):
            self.globals.pop(name, None)
        self.globals["range"] = bounded_range
        self.filters.pop("format", None)
        self.filters.update(
            {
                "default": default_value,
                "d": default_value,
                "tojson": to_json,
                "urlencode": url_encode,
                "join": _filter_join,
                "replace": _filter_replace,
                "center": _filter_center,
                "indent": _filter_indent,
                "batch": _filter_batch,
                "slice": _filter_slice,
                "attr": _filter_attr,
            }
        )
        self.loop_guard = loop_guard
        self.bounded_concat = bounded_concat

    # -- attribute access -------------------------------------------------------------------

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_") or attr in _FORBIDDEN_ATTRIBUTES:
            return False
        if isinstance(obj, str):
            if attr not in _STR_METHODS:
                return False
        elif isinstance(obj, (int, float, complex, bytes, type)):
            return False
        elif isinstance(obj, (list, tuple)):
            if attr not in SEQUENCE_METHODS:
                return False
        elif isinstance(obj, dict) and attr not in DICT_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"access to {attribute!r} is not allowed")

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is VariableMap or type(obj) is VariableList:
            return obj.child(attribute)
        if isinstance(obj, PathUndefined):
            return obj._child(attribute)
        try:
            value = getattr(obj, attribute)
        except AttributeError:
            try:
                return obj[attribute]
            except (TypeError, LookupError):
                refuse_dunder(attribute)
                return self.undefined(obj=obj, name=attribute)
        if self.is_safe_attribute(obj, attribute, value):
            return value
        return self.unsafe_undefined(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if type(obj) is VariableMap or type(obj) is VariableList:
            return obj.child(argument)
        if isinstance(obj, PathUndefined):
            return obj._child(argument)
        try:
            return obj[argument]
        except (TypeError, LookupError):
            if isinstance(argument, str):
                return self.getattr(obj, argument)
        return self.undefined(obj=obj, name=argument)

    # -- calls and operators ----------------------------------------------------------------

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_time()
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    check_size(len(seq) * times, "repeated text")
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                check_size(len(left) + len(right), "joined text")
        elif operator == "%":
            if isinstance(left, str):
                raise SecurityError("the % formatting operator is not allowed; use ~ to join text")
        elif (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right > 0
            and abs(left).bit_length() * right > 64 * 1024
        ):
            raise TemplateLimitError("a power would be too large")
        return self.binop_table[operator](left, right)

    # -- compiling --------------------------------------------------------------------------

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for node in tree.find_all(_COMPOSITION_NODES):
            raise TemplateSyntaxError(
                "include, import and extends are not available in webhook templates",
                node.lineno,
                name,
                filename,
            )
        return _InsertGuards().visit(tree)


SANDBOX = WebhookSandbox()


@functools.lru_cache(maxsize=4096)
def compile_template(source: str) -> Any:
    """The compiled template for ``source``, cached so a hot campaign never recompiles.

    Raises ``TemplateSyntaxError`` (also for unknown filters and tests).
    """
    return SANDBOX.from_string(source)


def parse_template(source: str) -> nodes.Template:
    """The raw syntax tree of ``source`` for static checks (no guards inserted)."""
    return ImmutableSandboxedEnvironment._parse(SANDBOX, source, None, None)
