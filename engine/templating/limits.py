"""The bounds of a render: output size, printed text, ``range`` length and wall-clock time.

One :class:`RenderBudget` covers every template of one request render; the sandbox checks it
while streaming, on every call, every loop step and every printed expression.
"""

from __future__ import annotations

import contextvars
import time

from jinja2.exceptions import SecurityError

MAX_OUTPUT_BYTES = 256 * 1024  # one rendered template (and the request body)
MAX_OUTPUT_CHARS = MAX_OUTPUT_BYTES  # any intermediate string or sequence
MAX_PRINTED_CHARS = 4 * MAX_OUTPUT_BYTES  # all expressions printed in one render, set blocks too
MAX_RANGE = 1000
DEFAULT_TIME_LIMIT_SECONDS = 2.0


class TemplateLimitError(SecurityError):
    """A render went over a size or time bound."""


class RenderGuard:
    """Per-render budget: a wall-clock deadline and the characters printed so far."""

    __slots__ = ("deadline", "printed")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.printed = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitError("the template took too long to render")


_current_guard: contextvars.ContextVar[RenderGuard | None] = contextvars.ContextVar(
    "hookcast_render_guard", default=None
)

#: The guard of the render in progress, or None outside a :class:`RenderBudget`.
current_guard = _current_guard.get


def check_time() -> None:
    """Fails the render in progress once its deadline has passed."""
    guard = _current_guard.get()
    if guard is not None:
        guard.check_time()


def check_size(size: int, what: str = "a value") -> None:
    """Refuses a value that would be larger than ``MAX_OUTPUT_CHARS``."""
    if size > MAX_OUTPUT_CHARS:
        raise TemplateLimitError(f"{what} would be larger than {MAX_OUTPUT_CHARS // 1024} KiB")


class RenderBudget:
    """Context manager that installs a deadline for all templates of one request render."""

    def __init__(self, time_limit: float = DEFAULT_TIME_LIMIT_SECONDS) -> None:
        self._guard = RenderGuard(time.monotonic() + time_limit)
        self._token: contextvars.Token | None = None

    def __enter__(self) -> RenderBudget:
        self._token = _current_guard.set(self._guard)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current_guard.reset(self._token)
