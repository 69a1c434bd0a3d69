"""Keyset pages for the web lists: newest first, a step older (``?before=<id>``, the last
id shown) or back newer (``?after=<id>``, the first id shown). Ids sort by creation time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    older: str | None  # ``before`` for the next older page, if there is one
    newer: str | None  # ``after`` for the next newer page, if there is one
    paged: bool  # not the newest page: a "Newest" link applies


def keyset_page(
    fetch: Callable[..., list[Any]], *, size: int, before: str | None, after: str | None
) -> Page[Any]:
    """One page through ``fetch(before_id=..., after_id=..., limit=...)``, which returns rows
    newest first (with ``after_id``: the ones just newer than it). Stepping newer up to
    the top lands on the newest page itself, always a full one."""
    if after and not before:
        rows = fetch(after_id=after, limit=size + 1)
        if len(rows) > size:  # still not the newest: the page just above ``after``
            rows = rows[1:]
            return Page(rows, older=rows[-1].id, newer=rows[0].id, paged=True)
        before = None
    rows = fetch(before_id=before, limit=size + 1)
    older = rows[size - 1].id if len(rows) > size else None
    rows = rows[:size]
    newer = rows[0].id if before and rows else None
    return Page(rows, older=older, newer=newer, paged=before is not None)
