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
"""

from __future__ import annotations

import contextvars
import functools
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.filters import do_batch, do_indent, sync_do_slice
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing, pass_environment
from jinja2.visitor import NodeTransformer

MAX_OUTPUT_BYTES = 256 * 1024  # one rendered template (and the request body)
MAX_OUTPUT_CHARS = MAX_OUTPUT_BYTES  # any intermediate string or sequence
MAX_PRINTED_CHARS = 4 * MAX_OUTPUT_BYTES  # all expressions printed in one render, set blocks too
MAX_RANGE = 1000
DEFAULT_TIME_LIMIT_SECONDS = 2.0

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
_SEQUENCE_METHODS = frozenset({"index", "count"})
_DICT_METHODS = frozenset({"items", "keys", "values", "get"})
_FORBIDDEN_ATTRIBUTES = frozenset({"format", "format_map", "mro"})


class MissingVariableError(UndefinedError):
    """A variable used without a fallback is missing; ``path`` names it."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} is missing and has no fallback")
        self.path = path


class TemplateLimitError(SecurityError):
    """A render went over a size or time bound."""


class _RenderGuard:
    """Per-render budget: a wall-clock deadline and the characters printed so far."""

    __slots__ = ("deadline", "printed")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.printed = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitError("the template took too long to render")


_current_guard: contextvars.ContextVar[_RenderGuard | None] = contextvars.ContextVar(
    "hookcast_render_guard", default=None
)


def _check_time() -> None:
    guard = _current_guard.get()
    if guard is not None:
        guard.check_time()


def _check_size(size: int, what: str = "a value") -> None:
    if size > MAX_OUTPUT_CHARS:
        raise TemplateLimitError(f"{what} would be larger than {MAX_OUTPUT_CHARS // 1024} KiB")


def _child_path(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}"


def _refuse_dunder(key: Any) -> None:
    if isinstance(key, str) and key.startswith("__"):
        raise SecurityError(f"access to {key!r} is not allowed")


class VariableMap(Mapping):
    """A read-only view of a JSON object variable that knows its path (``contact``)."""

    __slots__ = ("_data", "_path")

    def __init__(self, data: Mapping, path: str) -> None:
        self._data = data
        self._path = path

    def child(self, key: Any) -> Any:
        try:
            value = self._data[key]
        except (KeyError, TypeError):
            _refuse_dunder(key)
            if key in _DICT_METHODS:
                return getattr(self, key)
            return PathUndefined(path=_child_path(self._path, key))
        return wrap_variable(value, _child_path(self._path, key))

    def __getitem__(self, key: Any) -> Any:
        value = self._data[key]
        return wrap_variable(value, _child_path(self._path, key))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __eq__(self, other: object) -> bool:
        return self._data == unwrap_variable(other)

    __hash__ = None  # type: ignore[assignment]

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        return [(key, self[key]) for key in self._data]

    def values(self) -> list[Any]:  # type: ignore[override]
        return [self[key] for key in self._data]

    def __str__(self) -> str:
        return to_json(self._data)

    def __repr__(self) -> str:
        return str(self)


class VariableList(Sequence):
    """A read-only view of a JSON array variable that knows its path."""

    __slots__ = ("_data", "_path")

    def __init__(self, data: Sequence, path: str) -> None:
        self._data = data
        self._path = path

    def child(self, key: Any) -> Any:
        if isinstance(key, slice):
            return VariableList(self._data[key], self._path)
        if isinstance(key, int) and not isinstance(key, bool):
            try:
                return wrap_variable(self._data[key], _child_path(self._path, key))
            except IndexError:
                pass
        elif key in _SEQUENCE_METHODS:
            return getattr(self._data, key)
        _refuse_dunder(key)
        return PathUndefined(path=_child_path(self._path, key))

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return VariableList(self._data[key], self._path)
        return wrap_variable(self._data[key], _child_path(self._path, key))

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, value: object) -> bool:
        return unwrap_variable(value) in self._data

    def __eq__(self, other: object) -> bool:
        return list(self._data) == unwrap_variable(other)

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return to_json(self._data)

    def __repr__(self) -> str:
        return str(self)


def wrap_variable(value: Any, path: str) -> Any:
    """Wrap JSON containers so missing keys below them know their full path."""
    if type(value) is dict:
        return VariableMap(value, path)
    if type(value) is str:
        return value
    if isinstance(value, Mapping):
        return VariableMap(value, path)
    if isinstance(value, (list, tuple)):
        return VariableList(value, path)
    return value


def unwrap_variable(value: Any) -> Any:
    """The plain data behind a wrapped variable (anything else unchanged)."""
    if isinstance(value, (VariableMap, VariableList)):
        return value._data
    return value


class PathUndefined(Undefined):
    """A missing value that remembers its path, chains (``event.properties.score``) and is falsy."""

    __slots__ = ("_path",)

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[Exception] = UndefinedError,
        path: str | None = None,
    ) -> None:
        super().__init__(hint, obj, name, exc)  # type: ignore[arg-type]
        self._path = path if path is not None else (str(name) if name is not None else None)

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        if self._undefined_exception is UndefinedError and not self._undefined_hint and self._path:
            raise MissingVariableError(self._path)
        raise self._undefined_exception(self._undefined_message)

    def _child(self, key: Any) -> PathUndefined:
        _refuse_dunder(key)
        if self._undefined_exception is not UndefinedError or not self._path:
            self._fail_with_undefined_error()
        return PathUndefined(path=_child_path(self._path, key))

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self._child(name)

    def __bool__(self) -> bool:
        if self._undefined_exception is not UndefinedError:
            self._fail_with_undefined_error()
        return False

    # Every operation but truth testing fails, naming the path (the base class binds its own).
    __str__ = __iter__ = __len__ = __contains__ = _fail_with_undefined_error  # type: ignore
    __eq__ = __ne__ = __hash__ = __lt__ = __le__ = __gt__ = __ge__ = _fail_with_undefined_error  # type: ignore
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail_with_undefined_error  # type: ignore
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _fail_with_undefined_error  # type: ignore
    __mod__ = __rmod__ = __pow__ = __rpow__ = __pos__ = __neg__ = _fail_with_undefined_error  # type: ignore
    __call__ = __getitem__ = __int__ = __float__ = __complex__ = _fail_with_undefined_error  # type: ignore


def _json_default(value: Any) -> Any:
    if isinstance(value, (VariableMap, VariableList)):
        return value._data
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    raise TypeError(f"a {type(value).__name__} value cannot be written as JSON")


_COMPACT_JSON = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, default=_json_default, separators=(",", ":")
)


def to_json(value: Any, indent: int | None = None) -> str:
    """A JSON literal of ``value``: compact, UTF-8 kept, no HTML escaping, no NaN."""
    if indent is not None and not 0 <= int(indent) <= 16:
        raise TemplateLimitError("tojson indent must be between 0 and 16")
    if indent is None:
        return _COMPACT_JSON.encode(value)
    separators = (",", ": ")
    return json.dumps(
        value,
        ensure_ascii=False,
        allow_nan=False,
        default=_json_default,
        indent=indent,
        separators=separators,
    )


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
    _check_size(sum(map(len, strings)), "joined text")
    return "".join(strings)


def _finalize(value: Any) -> Any:
    """Every printed expression: ``null`` prints empty; counts towards the render budget."""
    if value is None:
        return ""
    text = value if type(value) is str else str(value)
    guard = _current_guard.get()
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
    _check_size(sum(map(len, strings)) + len(str(d)) * max(len(strings) - 1, 0), "joined text")
    return str(d).join(strings)


def _filter_replace(s: Any, old: Any, new: Any, count: int | None = None) -> str:
    s, old, new = str(s), str(old), str(new)
    occurrences = s.count(old) if old else len(s) + 1
    limit = -1 if count is None else int(count)
    if limit >= 0:
        occurrences = min(occurrences, limit)
    _check_size(len(s) + occurrences * (len(new) - len(old)), "replaced text")
    return s.replace(old, new, limit)


def _filter_center(value: Any, width: int = 80) -> str:
    _check_size(int(width), "centered text")
    return str(value).center(int(width))


def _filter_indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    s = str(s)
    unit = len(width) if isinstance(width, str) else int(width)
    _check_size(len(s) + (s.count("\n") + 1) * unit, "indented text")
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


def _loop_guard(iterable: Iterable[Any]) -> Iterator[Any]:
    """Wraps every ``for`` loop's iterable so a long loop still meets the deadline."""
    guard = _current_guard.get()
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
            finalize=_finalize,
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
        self.loop_guard = _loop_guard
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
            if attr not in _SEQUENCE_METHODS:
                return False
        elif isinstance(obj, dict) and attr not in _DICT_METHODS:
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
                _refuse_dunder(attribute)
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
        _check_time()
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    _check_size(len(seq) * times, "repeated text")
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                _check_size(len(left) + len(right), "joined text")
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


def wrap_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level variables wrapped once per render so missing paths can be named."""
    return {name: wrap_variable(value, name) for name, value in variables.items()}


class RenderBudget:
    """Context manager that installs a deadline for all templates of one request render."""

    def __init__(self, time_limit: float = DEFAULT_TIME_LIMIT_SECONDS) -> None:
        self._guard = _RenderGuard(time.monotonic() + time_limit)
        self._token: contextvars.Token | None = None

    def __enter__(self) -> RenderBudget:
        self._token = _current_guard.set(self._guard)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current_guard.reset(self._token)


_TOO_LARGE = f"the rendered text is larger than {MAX_OUTPUT_BYTES // 1024} KiB"
_ATTRIBUTE, _ITEM, _FILTER = 0, 1, 2
#: Names the Jinja compiler binds itself (``self`` is a TemplateReference, ...).
_SPECIAL_NAMES = frozenset({"self", "super", "loop", "caller", "varargs", "kwargs"})


class DirectTemplate:
    """A template made only of text and ``{{ name.path | filter(constants) }}`` expressions.

    Most webhook templates look like that (``{{ contact.email }}``,
    ``Hi {{ contact.first_name | default("there") }}``). Rendering one makes exactly the calls
    the compiled Jinja code makes, in the same order — ``SANDBOX.getattr``/``getitem``, the
    same filter functions, ``finalize`` — without building a Jinja context and a generator
    per call, which is most of the cost of a small template.
    """

    __slots__ = ("_parts",)

    def __init__(self, parts: list[Any]) -> None:
        self._parts = parts  # text, or (name, steps)

    def render(self, wrapped_variables: Mapping[str, Any]) -> str:
        texts = []
        size = 0
        for part in self._parts:
            if type(part) is str:
                text = part
            else:
                name, steps = part
                value = wrapped_variables.get(name, missing)
                if value is missing:
                    value = SANDBOX.undefined(name=name)
                for kind, argument, args, kwargs in steps:
                    if kind == _ATTRIBUTE:
                        value = SANDBOX.getattr(value, argument)
                    elif kind == _ITEM:
                        value = SANDBOX.getitem(value, argument)
                    else:
                        value = argument(value, *args, **kwargs)
                text = str(_finalize(value))
            size += len(text)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateLimitError(_TOO_LARGE)
            texts.append(text)
        text = "".join(texts)
        if size * 4 > MAX_OUTPUT_BYTES and len(text.encode("utf-8")) > MAX_OUTPUT_BYTES:
            raise TemplateLimitError(_TOO_LARGE)
        return text


def _constant(node: nodes.Node) -> Any:
    """The value of a literal string/number/boolean/none node, or ``missing``."""
    if isinstance(node, nodes.Const) and (
        node.value is None or type(node.value) in (str, int, float, bool)
    ):
        return node.value
    return missing


def _direct_expression(node: nodes.Node) -> tuple[str, tuple] | None:
    """``(name, steps)`` for a variable path with constant-argument filters, else None."""
    steps: list[tuple[int, Any, tuple, dict]] = []
    while not isinstance(node, nodes.Name):
        if isinstance(node, nodes.Getattr):
            steps.append((_ATTRIBUTE, node.attr, (), {}))
        elif isinstance(node, nodes.Getitem):
            key = _constant(node.arg)
            if key is missing:
                return None
            steps.append((_ITEM, key, (), {}))
        elif isinstance(node, nodes.Filter):
            function = SANDBOX.filters.get(node.name)
            if node.node is None or node.dyn_args is not None or node.dyn_kwargs is not None:
                return None
            if function is None or hasattr(function, "jinja_pass_arg"):
                return None
            args = tuple(_constant(arg) for arg in node.args)
            kwargs = {pair.key: _constant(pair.value) for pair in node.kwargs}
            if missing in args or missing in kwargs.values():
                return None
            steps.append((_FILTER, function, args, kwargs))
        else:
            return None
        node = node.node
    if node.ctx != "load" or node.name in SANDBOX.globals or node.name in _SPECIAL_NAMES:
        return None
    return node.name, tuple(reversed(steps))


@functools.lru_cache(maxsize=4096)
def _compiled_renderer(source: str) -> Any:
    """A :class:`DirectTemplate` when ``source`` allows it, else the compiled Jinja template."""
    template = compile_template(source)  # raises the same syntax errors either way
    parts: list[Any] = []
    for node in parse_template(source).body:
        if not isinstance(node, nodes.Output):
            return template
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
                continue
            expression = _direct_expression(child)
            if expression is None:
                return template
            parts.append(expression)
    return DirectTemplate(parts)


def compiled_renderer(source: str) -> Any:
    """The cached renderer of ``source`` for :func:`render_compiled`; raises syntax errors."""
    return _compiled_renderer(source)


def variables_read(renderer: Any) -> frozenset[str] | None:
    """The top-level variables a :class:`DirectTemplate` reads; None for other templates."""
    if type(renderer) is not DirectTemplate:
        return None
    return frozenset(part[0] for part in renderer._parts if type(part) is not str)


def needs_render_budget(renderer: Any) -> bool:
    """Whether ``renderer`` can loop or call (a :class:`DirectTemplate` cannot)."""
    return type(renderer) is not DirectTemplate


def render_template(source: str, wrapped_variables: Mapping[str, Any]) -> str:
    """Render one template (streaming, aborting beyond ``MAX_OUTPUT_BYTES`` or the deadline).

    ``wrapped_variables`` comes from :func:`wrap_variables`. Raises Jinja errors and whatever
    the template triggered; :mod:`engine.templating.render` turns them into ``RenderError``.
    """
    return render_compiled(_compiled_renderer(source), wrapped_variables)


def render_compiled(template: Any, wrapped_variables: Mapping[str, Any]) -> str:
    """:func:`render_template` with a renderer from :func:`compiled_renderer`."""
    if type(template) is DirectTemplate:
        return template.render(wrapped_variables)
    too_large = _TOO_LARGE
    parts = []
    size = 0
    for chunk in template.root_render_func(template.new_context(wrapped_variables)):
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise TemplateLimitError(too_large)
        parts.append(chunk)  # time is checked by printed expressions, loops and calls
    text = "".join(parts)
    if size * 4 > MAX_OUTPUT_BYTES and len(text.encode("utf-8")) > MAX_OUTPUT_BYTES:
        raise TemplateLimitError(too_large)
    return text
