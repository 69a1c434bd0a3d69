"""A channel recipe read once: static texts checked, templates compiled, into a ChannelPlan.

Compiling reads the recipe in the order a render uses it: method, content type, URL, auth,
header rows, credentials, body, fields. A problem every render would hit (a header name that
is not a token, a template that does not parse, a static URL that is refused) becomes a
:class:`Failure` in its place: a render evaluates what comes before it, then raises that
``RenderError``. So errors keep their order and wording, and compiling stops there: nothing
after a failure is ever rendered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.templating.body import cast_value
from engine.templating.checks import (
    CONTENT_TYPES,
    METHODS,
    basic_authorization,
    bearer_authorization,
    header_name_problem,
    header_value_problem,
    split_source_path,
    url_problem,
)
from engine.templating.direct import (
    compiled_renderer,
    needs_render_budget,
    render_compiled,
    variables_read,
)
from engine.templating.errors import RenderError, template_error
from engine.templating.request import RenderSettings
from engine.templating.wrapped import wrap_variables

#: The kinds of a mapped field: a source path, a template, or a value known when compiling.
SOURCE, TEMPLATE, CONSTANT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Failure:
    """A problem every render hits; it stands where the render reaches it."""

    message: str
    location: str | None
    variable: str | None = None

    @classmethod
    def of(cls, error: RenderError) -> Failure:
        return cls(error.message, error.location, error.variable)

    def error(self) -> RenderError:
        """A fresh ``RenderError`` (one raised object per render, never a shared one)."""
        return RenderError(self.message, location=self.location, variable=self.variable)


#: A text part: static text, ``(renderer, needs_budget)`` for a template, or a Failure.
Part = str | tuple[Any, bool] | Failure


@dataclass(slots=True)
class ChannelPlan:
    """What a render evaluates, in order; every text the recipe fixes is already checked."""

    method: str = "POST"
    content_type: str = "json"
    url: Part = ""
    #: ``(name, value part, location)``; a row whose part is a Failure ends the headers.
    headers: list[tuple[str, Part, str]] = field(default_factory=list)
    #: ``basic`` or ``bearer`` when a credential is a template (static ones are a header row).
    auth_type: str = "none"
    auth: tuple[Part, ...] = ()
    mode: str = "default"  # default, mapping or raw
    raw: Part = ""
    #: ``(entry, name segments, index)``; segments are None when the name is the failure.
    fields: list[tuple[tuple, tuple[str, ...] | None, int]] = field(default_factory=list)
    #: Field names collide (or one is the failure): place each as ``body.place`` does.
    careful: bool = False
    #: Raised after ``fields`` (mapping mode; a body that fails at once has no fields).
    failure: Failure | None = None
    content_type_header: bool = False
    needs_variables: bool = False  # some template is evaluated per render
    needs_budget: bool = False  # and some template can loop or call


def compile_plan(
    channel: Mapping[str, Any],
    settings: RenderSettings,
    constants: Mapping[str, Any] | None = None,
) -> ChannelPlan:
    """The plan of ``channel``; templates reading only ``constants`` are rendered now."""
    compiler = _Compiler(settings, constants or {})
    compiler.compile(channel)
    plan = compiler.plan
    plan.needs_variables = bool(compiler.templates)
    plan.needs_budget = any(needs_budget for _, needs_budget in compiler.templates)
    return plan


class _Compiler:
    def __init__(self, settings: RenderSettings, constants: Mapping[str, Any]) -> None:
        self.settings = settings
        self.constants = constants
        self.plan = ChannelPlan()
        self.templates: list[tuple[Any, bool]] = []

    def part(self, source: Any, location: str) -> Part:
        """Static text, a compiled template (rendered now if it reads only constants), or the
        Failure of a value that is not text or of a template that does not compile."""
        if source is None:
            return ""
        if not isinstance(source, str):
            return Failure("must be text", location)
        if "{" not in source:
            return source
        try:
            renderer = compiled_renderer(source)
        except Exception as exc:  # a syntax error: every render fails the same way
            return Failure.of(template_error(exc, location))
        names = variables_read(renderer)
        if names is not None and names <= self.constants.keys():
            try:
                return render_compiled(renderer, wrap_variables(self.constants))
            except Exception:  # noqa: S110  each render raises it in its place
                pass
        template = (renderer, needs_render_budget(renderer))
        self.templates.append(template)
        return template

    def compile(self, channel: Mapping[str, Any]) -> None:
        plan = self.plan
        method = str(channel.get("method") or "POST").upper()
        content_type = channel.get("content_type") or "json"
        if method not in METHODS:  # the URL is evaluated first: fail there
            plan.url = Failure(f"method must be one of {', '.join(METHODS)}", "method")
            return
        if content_type not in CONTENT_TYPES:
            plan.url = Failure("content_type must be json or form", "content_type")
            return
        plan.method, plan.content_type = method, content_type
        plan.content_type_header = method != "GET"
        url = self.part(channel.get("url"), "url")
        if type(url) is str:
            url = url.strip()
            problem = url_problem(url, self.settings)
            if problem:
                url = Failure(problem, "url")
        plan.url = url
        if type(url) is not Failure and self.compile_headers(channel):
            self.compile_body(channel.get("body"))

    def fail_headers(self, failure: Failure) -> bool:
        """Ends the header rows with ``failure`` (auth comes right after them)."""
        self.plan.headers.append(("", failure, ""))
        return False

    def compile_headers(self, channel: Mapping[str, Any]) -> bool:
        """The header rows, then the credentials; False when they end in a failure."""
        auth = channel.get("auth")
        if auth is None:
            auth = {}
        elif not isinstance(auth, Mapping):
            return self.fail_headers(Failure("must be an object", "auth"))
        auth_type = auth.get("type") or "none"
        seen: set[str] = set()
        for index, row in enumerate(channel.get("headers") or ()):
            if row is None:
                row = {}
            elif not isinstance(row, Mapping):
                return self.fail_headers(Failure("must be an object", f"headers[{index}]"))
            name = row.get("name")
            problem = header_name_problem(name)
            if problem is None and name.lower() in seen:
                problem = f"{name} appears twice"
            if problem is None and name.lower() == "authorization" and auth_type != "none":
                problem = "Authorization comes from auth; remove this header or set auth to none"
            if problem:
                return self.fail_headers(Failure(problem, f"headers[{index}].name"))
            seen.add(name.lower())
            location = f"headers[{index}].value"
            value = self.part(row.get("value"), location)
            if type(value) is str:
                value = value.strip(" \t")
                problem = header_value_problem(value, name)
                if problem:
                    value = Failure(problem, location)
            self.plan.headers.append((name, value, location))
            if type(value) is Failure:
                return False
            if name.lower() == "content-type":
                self.plan.content_type_header = False
        return self.compile_auth(auth, auth_type)

    def compile_auth(self, auth: Mapping[str, Any], auth_type: Any) -> bool:
        """Static credentials become a constant header row; templates are rendered last."""
        if auth_type == "basic":
            username = self.part(auth.get("username"), "auth.username")
            parts: tuple[Part, ...] = (username, self.part(auth.get("password"), "auth.password"))
        elif auth_type == "bearer":
            parts = (self.part(auth.get("token"), "auth.token"),)
        elif auth_type == "none":
            return True
        else:
            return self.fail_headers(
                Failure("auth.type must be none, basic or bearer", "auth.type")
            )
        if all(type(part) is str for part in parts):  # static credentials: a constant header
            try:
                if auth_type == "basic":
                    value = basic_authorization(*parts)  # type: ignore[arg-type]
                else:
                    value = bearer_authorization(*parts)  # type: ignore[arg-type]
            except RenderError as exc:
                return self.fail_headers(Failure.of(exc))
            self.plan.headers.append(("Authorization", value, ""))
            return True
        self.plan.auth_type, self.plan.auth = auth_type, parts
        return not any(type(part) is Failure for part in parts)

    def fail_body(self, failure: Failure) -> None:
        """A body that fails before it has fields."""
        self.plan.mode, self.plan.failure = "mapping", failure

    def compile_body(self, body: Any) -> None:
        plan = self.plan
        if body is None:
            body = {}
        elif not isinstance(body, Mapping):
            self.fail_body(Failure("must be an object", "body"))
            return
        mode = body.get("mode") or "default"
        if mode == "raw":
            plan.mode = "raw"
            if plan.method == "GET":
                message = "a GET request has no body; use mapping fields instead"
                plan.raw = Failure(message, "body.mode")
                return
            plan.raw = self.part(body.get("template"), "body.template")
            if type(plan.raw) is str and plan.content_type == "json":
                try:
                    json.loads(plan.raw)
                except ValueError as exc:
                    message = f"the rendered body is not valid JSON ({exc})"
                    plan.raw = Failure(message, "body.template")
        elif mode == "mapping":
            plan.mode = "mapping"
            self.compile_fields(body.get("fields") or ())
        elif mode != "default":
            self.fail_body(Failure("body.mode must be default, mapping or raw", "body.mode"))

    def compile_fields(self, fields: Any) -> None:
        plan = self.plan
        if not isinstance(fields, (list, tuple)):
            plan.failure = Failure("mapping mode needs a list of fields", "body.fields")
            return
        names: list[str] = []
        for index, spec in enumerate(fields):
            if spec is None:
                spec = {}
            elif not isinstance(spec, Mapping):
                plan.failure = Failure("must be an object", f"body.fields[{index}]")
                break
            entry = self.field_entry(spec, index)
            if type(entry) is Failure:
                plan.failure = entry
                break
            name = spec.get("name")
            if not isinstance(name, str) or not all(name.split(".")):
                message = "a field name must be non-empty, like lead.score"
                plan.failure = Failure(message, f"body.fields[{index}].name")
                plan.fields.append((entry, None, index))  # its value is evaluated first
                plan.careful = True
                break
            names.append(name)
            plan.fields.append((entry, tuple(name.split(".")), index))
        prefixes = {n.rsplit(".", depth)[0] for n in names for depth in range(1, n.count(".") + 1)}
        if len(set(names)) != len(names) or prefixes & set(names):
            plan.careful = True

    def field_entry(self, spec: Mapping[str, Any], index: int) -> tuple | Failure:
        """The value of a field: ``(SOURCE, segments, path, has_fallback, fallback, type)``,
        ``(TEMPLATE, part, has_fallback, fallback, type)``, ``(CONSTANT, value)`` or a Failure."""
        has_fallback, fallback = "fallback" in spec, spec.get("fallback")
        if "source" in spec:
            source = spec["source"]
            segments = split_source_path(source) if isinstance(source, str) else None
            if segments is None:
                message = "source must be a variable path like contact.email"
                return Failure(message, f"body.fields[{index}].source")
            return (SOURCE, segments, source, has_fallback, fallback, spec.get("type"))
        value = spec.get("value")
        type_name = spec.get("type") or "string"
        if isinstance(value, str):
            value = self.part(value, f"body.fields[{index}].value")
            if type(value) is Failure:
                return value
            if type(value) is not str:
                return (TEMPLATE, value, has_fallback, fallback, type_name)
            if has_fallback and value == "":
                value = fallback
        elif value is None and has_fallback:
            value = fallback
        try:
            return (CONSTANT, cast_value(value, type_name))
        except ValueError as exc:
            return Failure(f"cannot cast: {exc}", f"body.fields[{index}].type")
