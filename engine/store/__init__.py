"""Persistence: the models and every query the engine runs (the one place for SQL).

Query modules are grouped by job (``accounts``, ``contacts``, ``outbox``...); each function
takes a ``Session`` first and never commits unless its docstring says so.
"""

from __future__ import annotations

from engine.store.db import Database

__all__ = ["Database"]
