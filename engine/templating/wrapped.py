"""Variables as templates see them: read-only views that know their path, and JSON text.

A missing value below a wrapped variable remembers its full path (``contact.first_name``),
so a render that needs it fails naming it. Objects and lists print as compact JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Undefined
from jinja2.utils import missing

from engine.templating.limits import TemplateLimitError

#: The methods a template may call on a list and on an object.
SEQUENCE_METHODS = frozenset({"index", "count"})
DICT_METHODS = frozenset({"items", "keys", "values", "get"})


class MissingVariableError(UndefinedError):
    """A variable used without a fallback is missing; ``path`` names it."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} is missing and has no fallback")
        self.path = path


def _child_path(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}"


def refuse_dunder(key: Any) -> None:
    """Refuses ``__name__`` keys and attributes, the way out of a sandbox."""
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
            refuse_dunder(key)
            if key in DICT_METHODS:
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
        elif key in SEQUENCE_METHODS:
            return getattr(self._data, key)
        refuse_dunder(key)
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
        refuse_dunder(key)
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


def wrap_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level variables wrapped once per render so missing paths can be named."""
    return {name: wrap_variable(value, name) for name, value in variables.items()}


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
