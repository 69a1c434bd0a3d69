"""RenderError, and how a template that fails becomes one the marketer can act on."""

from __future__ import annotations

import re
from typing import Any

from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

from engine.templating.limits import TemplateLimitError
from engine.templating.wrapped import MissingVariableError


class GuardProblem(str):
    """A problem text that is a refusal by the private-network guard: a render failing with
    it ends as ``ssrf_blocked`` (SPEC §5), not ``render_error``."""

    code = "ssrf_blocked"


class RenderError(Exception):
    """A channel cannot be rendered with these variables; the notification fails, unretried.

    ``code`` is ``render_error``, or ``ssrf_blocked`` when the message is a
    :class:`GuardProblem` (a rendered URL naming a private address)."""

    code = "render_error"

    def __init__(self, message: str, *, location: str | None = None, variable: str | None = None):
        super().__init__(message)
        if isinstance(message, GuardProblem):
            self.code = GuardProblem.code
        self.message = message
        self.location = location
        self.variable = variable

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": str(self),
            "location": self.location,
            "variable": self.variable,
        }


_CLEAN_ADDRESS = re.compile(r"<[^<>]* at 0x[0-9a-f]+>")


def template_error(exc: BaseException, location: str) -> RenderError:
    """The ``RenderError`` for whatever a template at ``location`` raised (no internals shown)."""
    if isinstance(exc, MissingVariableError):
        message = f"{exc.path} is missing and has no fallback (add | default(...))"
        return RenderError(message, location=location, variable=exc.path)
    if isinstance(exc, TemplateSyntaxError):
        return RenderError(f"template error on line {exc.lineno}: {exc.message}", location=location)
    if isinstance(exc, TemplateLimitError):
        return RenderError(str(exc), location=location)
    if isinstance(exc, SecurityError):
        return RenderError(f"not allowed in a template: {exc}", location=location)
    if isinstance(exc, RecursionError):
        return RenderError("the template calls itself too deeply", location=location)
    if isinstance(exc, (UndefinedError, TypeError, ValueError, ArithmeticError, LookupError)):
        detail = _CLEAN_ADDRESS.sub("an object", str(exc))[:200]
        return RenderError(f"the template could not be evaluated: {detail}", location=location)
    return RenderError("the template could not be evaluated", location=location)
