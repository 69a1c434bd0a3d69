"""Numbers to inline SVG: stacked bars per bucket and percentile lines. Pure, no library.

Output is a complete ``<svg>`` string safe to embed in HTML: every label is escaped, colours
are presentation attributes (no ``style``), so a strict Content-Security-Policy allows it.
Each bar and point carries a ``<title>`` with the exact figure for hover and screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 720
HEIGHT = 220
MARGIN_LEFT = 48
MARGIN_RIGHT = 12
MARGIN_TOP = 28
MARGIN_BOTTOM = 28


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    colour: str


def nice_ceiling(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2 or 5 times a power of ten), at least 1."""
    if value <= 1:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _frame(title: str, labels: Sequence[str], top: float, unit: str) -> list[str]:
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    base_y = MARGIN_TOP + plot_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{MARGIN_LEFT}" y="16" font-size="13" font-weight="600" fill="#1d2330">'
        f"{escape(title)}</text>",
    ]
    for fraction in (0, 0.5, 1):
        y = base_y - fraction * plot_h
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{_fmt(y)}" y2="{_fmt(y)}" '
            f'stroke="#e3e6eb" stroke-width="1"/>'
        )
        label = _fmt(top * fraction) + (f" {unit}" if unit and fraction == 1 else "")
        parts.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{_fmt(y + 4)}" font-size="11" text-anchor="end" '
            f'fill="#667085">{escape(label)}</text>'
        )
    if labels:
        step = max(1, len(labels) // 8)
        slot = plot_w / len(labels)
        for index in range(0, len(labels), step):
            x = MARGIN_LEFT + slot * (index + 0.5)
            parts.append(
                f'<text x="{_fmt(x)}" y="{HEIGHT - 8}" font-size="11" text-anchor="middle" '
                f'fill="#667085">{escape(labels[index])}</text>'
            )
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts = []
    x = WIDTH - MARGIN_RIGHT
    for item in reversed(series):
        text_w = 7 * len(item.name) + 18
        x -= text_w
        parts.append(
            f'<rect x="{x}" y="7" width="10" height="10" fill="{escape(item.colour)}"/>'
            f'<text x="{x + 14}" y="16" font-size="11" fill="#475467">{escape(item.name)}</text>'
        )
    return parts


def stacked_bars(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """One stacked bar per label; ``series`` values are counts aligned with ``labels``."""
    totals = [sum((s.values[i] or 0) for s in series) for i in range(len(labels))]
    top = nice_ceiling(max(totals, default=0))
    parts = _frame(title, labels, top, "")
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    base_y = MARGIN_TOP + plot_h
    slot = plot_w / max(1, len(labels))
    bar_w = max(1.0, slot * 0.7)
    for index, label in enumerate(labels):
        x = MARGIN_LEFT + slot * index + (slot - bar_w) / 2
        y = base_y
        for item in series:
            value = item.values[index] or 0
            if value <= 0:
                continue
            height = value / top * plot_h
            y -= height
            parts.append(
                f'<rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(bar_w)}" '
                f'height="{_fmt(height)}" fill="{escape(item.colour)}">'
                f"<title>{escape(f'{label}: {_fmt(value)} {item.name}')}</title></rect>"
            )
    parts.extend(_legend(series))
    parts.append("</svg>")
    return "".join(parts)


def lines(title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "ms") -> str:
    """One polyline per series; ``None`` values (no data in that bucket) break the line."""
    values = [v for s in series for v in s.values if v is not None]
    top = nice_ceiling(max(values, default=0))
    parts = _frame(title, labels, top, unit)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    base_y = MARGIN_TOP + plot_h
    slot = plot_w / max(1, len(labels))
    for item in series:
        run: list[str] = []
        segments: list[list[str]] = [run]
        for index, value in enumerate(item.values):
            if value is None:
                run = []
                segments.append(run)
                continue
            x = MARGIN_LEFT + slot * (index + 0.5)
            y = base_y - value / top * plot_h
            run.append(f"{_fmt(x)},{_fmt(y)}")
            label = labels[index] if index < len(labels) else ""
            parts.append(
                f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="2.5" fill="{escape(item.colour)}">'
                f"<title>{escape(f'{label}: {item.name} {_fmt(value)} {unit}')}</title></circle>"
            )
        for points in segments:
            if len(points) > 1:
                parts.append(
                    f'<polyline points="{" ".join(points)}" fill="none" '
                    f'stroke="{escape(item.colour)}" stroke-width="2"/>'
                )
    parts.extend(_legend(series))
    parts.append("</svg>")
    return "".join(parts)
