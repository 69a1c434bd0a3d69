"""Rendering a compiled template, bounded: simple ones directly, the rest through Jinja.

Most webhook templates are text and ``{{ name.path | filter(constants) }}`` expressions;
those render as a :class:`DirectTemplate`, without a Jinja context or generator per call.
Every other template streams through the sandbox's compiled code. Both refuse output over
``MAX_OUTPUT_BYTES``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from jinja2 import nodes
from jinja2.utils import missing

from engine.templating.limits import MAX_OUTPUT_BYTES, MAX_OUTPUT_CHARS, TemplateLimitError
from engine.templating.sandbox import SANDBOX, compile_template, finalize, parse_template

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
                text = str(finalize(value))
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

    ``wrapped_variables`` comes from :func:`engine.templating.wrapped.wrap_variables`.
    Raises Jinja errors and whatever the template triggered;
    :func:`engine.templating.errors.template_error` turns them into ``RenderError``.
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
