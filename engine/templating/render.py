"""Variables + a channel recipe → one exact HTTP request (SPEC §3, §4). Pure code.

A channel is compiled once (:mod:`engine.templating.compile`); a render evaluates only its
templates and sources, in the recipe's order, and runs the checks that depend on data.
``render_request`` compiles through the same cache, so there is one way to render.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from engine.templating.body import (
    MISSING,
    cast_field,
    default_payload,
    encoded_body,
    flatten_for_form,
    place,
    resolve_source,
    with_query,
)
from engine.templating.checks import (
    CONTENT_TYPES,
    basic_authorization,
    bearer_authorization,
    header_value_problem,
    url_problem,
)
from engine.templating.compile import SOURCE, TEMPLATE, ChannelPlan, Failure, Part, compile_plan
from engine.templating.direct import render_compiled
from engine.templating.errors import RenderError, template_error
from engine.templating.limits import RenderBudget
from engine.templating.request import RenderedRequest, RenderSettings
from engine.templating.wrapped import to_json, wrap_variables

_CHANNEL_KEY = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_DEFAULT_SETTINGS = RenderSettings()


class CompiledChannel:
    """One channel recipe read once; :meth:`render` gives one exact request.

    ``constants`` are top-level variables every render will pass unchanged (a batch's
    ``campaign`` and ``workspace``): simple templates that read only those are rendered once.
    """

    def __init__(
        self,
        channel: Mapping[str, Any],
        settings: RenderSettings,
        constants: Mapping[str, Any] | None = None,
    ) -> None:
        self._plan = compile_plan(channel, settings, constants)
        self._settings = settings

    def render(self, variables: Mapping[str, Any]) -> RenderedRequest:
        """Render with ``variables``; raises ``RenderError``."""
        plan = self._plan
        wrapped = wrap_variables(variables) if plan.needs_variables else {}
        if plan.needs_budget:
            with RenderBudget(self._settings.time_limit_seconds):
                return _render(plan, self._settings, variables, wrapped)
        return _render(plan, self._settings, variables, wrapped)


def compile_channel(
    channel: Mapping[str, Any],
    settings: RenderSettings = _DEFAULT_SETTINGS,
    *,
    constants: Mapping[str, Any] | None = None,
) -> CompiledChannel:
    """The channel read once for many renders (cached per recipe and settings).

    With ``constants`` (variables every render passes unchanged) the result is not cached:
    compile once per batch.
    """
    if constants:
        return CompiledChannel(channel, settings, constants)
    try:
        key = _CHANNEL_KEY(channel)
    except (TypeError, ValueError):  # not plain JSON data: compile it uncached
        return CompiledChannel(channel, settings)
    return _cached_compile(key, settings)


@functools.lru_cache(maxsize=256)
def _cached_compile(key: str, settings: RenderSettings) -> CompiledChannel:
    """Compiled from the key's own copy, so a caller mutating its dict cannot reach it."""
    return CompiledChannel(json.loads(key), settings)


def render_request(
    channel: Mapping[str, Any],
    variables: Mapping[str, Any],
    settings: RenderSettings = _DEFAULT_SETTINGS,
) -> RenderedRequest:
    """Render ``channel`` (SPEC §4 shape) with ``variables``; raises ``RenderError``.

    The channel is compiled once per distinct recipe (see :func:`compile_channel`); a batch
    that renders one channel many times should call ``compile_channel`` itself.
    """
    return compile_channel(channel, settings).render(variables)


def _evaluate(part: Part, wrapped: Mapping[str, Any], location: str) -> str:
    if type(part) is tuple:
        try:
            return render_compiled(part[0], wrapped)
        except Exception as exc:  # every failure inside a template is the marketer's to fix
            raise template_error(exc, location) from None
    if type(part) is Failure:
        raise part.error()
    return part  # type: ignore[return-value]


def _render(
    plan: ChannelPlan,
    settings: RenderSettings,
    variables: Mapping[str, Any],
    wrapped: Mapping[str, Any],
) -> RenderedRequest:
    url = plan.url
    if type(url) is not str:
        url = _evaluate(url, wrapped, "url").strip()
        problem = url_problem(url, settings)
        if problem:
            raise RenderError(problem, location="url")
    headers = []
    for name, value, location in plan.headers:
        if type(value) is not str:
            value = _evaluate(value, wrapped, location).strip(" \t")
            problem = header_value_problem(value, name)
            if problem:
                raise RenderError(problem, location=location)
        headers.append((name, value))
    if plan.auth_type == "basic":
        username = _evaluate(plan.auth[0], wrapped, "auth.username")
        password = _evaluate(plan.auth[1], wrapped, "auth.password")
        headers.append(("Authorization", basic_authorization(username, password)))
    elif plan.auth_type == "bearer":
        token = _evaluate(plan.auth[0], wrapped, "auth.token")
        headers.append(("Authorization", bearer_authorization(token)))
    body_text, query = _body(plan, variables, wrapped)
    url = with_query(url, query)
    body = encoded_body(body_text)
    if plan.content_type_header:
        headers.insert(0, ("Content-Type", CONTENT_TYPES[plan.content_type]))
    return RenderedRequest(plan.method, url, tuple(headers), body)


def _body(
    plan: ChannelPlan, variables: Mapping[str, Any], wrapped: Mapping[str, Any]
) -> tuple[str, str]:
    """The body text and the query string to append (GET)."""
    if plan.mode == "raw":
        text = _evaluate(plan.raw, wrapped, "body.template")
        if type(plan.raw) is not str and plan.content_type == "json":
            try:
                json.loads(text)
            except ValueError as exc:
                raise RenderError(
                    f"the rendered body is not valid JSON ({exc})", location="body.template"
                ) from None
        return text, ""
    if plan.mode == "default":
        payload = default_payload(variables)
    else:
        payload = _mapped_payload(plan, variables, wrapped)
    if plan.method == "GET":
        return "", urlencode(flatten_for_form(payload))
    if plan.content_type == "form":
        return urlencode(flatten_for_form(payload)), ""
    return to_json(payload), ""


def _mapped_payload(
    plan: ChannelPlan, variables: Mapping[str, Any], wrapped: Mapping[str, Any]
) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    careful = plan.careful
    for entry, segments, index in plan.fields:
        kind = entry[0]
        if kind == SOURCE:
            _, path, source, has_fallback, fallback, type_name = entry
            value = resolve_source(variables, path)
            if value is MISSING and not has_fallback:
                raise RenderError(
                    f"{source} is missing and has no fallback",
                    location=f"body.fields[{index}].source",
                    variable=source,
                )
            if has_fallback and (value is MISSING or value is None or value == ""):
                value = fallback
            if type_name is not None and value is not None:
                value = cast_field(value, type_name, index)
        elif kind == TEMPLATE:
            _, part, has_fallback, fallback, type_name = entry
            try:
                value = _evaluate(part, wrapped, f"body.fields[{index}].value")
            except RenderError as exc:
                if not (has_fallback and exc.variable):
                    raise
                value = fallback
            if has_fallback and value == "":
                value = fallback
            if value is not None:
                value = cast_field(value, type_name, index)
        else:
            value = entry[1]
        if careful:
            if segments is None:  # the field's name is the plan's failure
                break
            place(payload, segments, value, f"body.fields[{index}].name")
        else:
            target = payload
            for segment in segments[:-1]:  # type: ignore[index]
                target = target.setdefault(segment, {})
            target[segments[-1]] = value  # type: ignore[index]
    if plan.failure is not None:
        raise plan.failure.error()
    return payload
