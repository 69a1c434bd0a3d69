"""web.charts: numbers to SVG, escaped, with exact figures in titles."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # our own output, not untrusted input

from web.charts import Series, lines, nice_ceiling, stacked_bars

NS = "{http://www.w3.org/2000/svg}"


def test_nice_ceiling():
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 10, 11, 240, 5000)] == [
        1,
        1,
        5,
        10,
        10,
        20,
        500,
        5000,
    ]


def test_stacked_bars_heights_are_proportional_and_labels_escaped():
    svg = stacked_bars(
        "Deliveries <script>",
        ["00:00", "01:00", "<b>"],
        [Series("delivered", [10, 0, 5], "#1f8a4c"), Series("failed", [10, 0, 0], "#c0352b")],
    )
    root = ET.fromstring(svg)  # noqa: S314 (well-formed XML)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;" in svg
    bars = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    heights = {r.find(f"{NS}title").text: float(r.get("height")) for r in bars}
    assert set(heights) == {"00:00: 10 delivered", "00:00: 10 failed", "<b>: 5 delivered"}
    assert heights["00:00: 10 delivered"] == 2 * heights["<b>: 5 delivered"]
    assert "style" not in svg


def test_lines_skip_missing_buckets():
    svg = lines("Latency", ["a", "b", "c", "d"], [Series("p50", [10, None, 30, 40], "#3457d5")])
    root = ET.fromstring(svg)  # noqa: S314
    assert len(list(root.iter(f"{NS}circle"))) == 3
    polylines = list(root.iter(f"{NS}polyline"))
    assert len(polylines) == 1 and len(polylines[0].get("points").split()) == 2
    assert any(t.text == "50 ms" for t in root.iter(f"{NS}text"))


def test_empty_charts_render():
    ET.fromstring(stacked_bars("Nothing", [], []))  # noqa: S314
    ET.fromstring(lines("Nothing", ["a"], [Series("p50", [None], "#000")]))  # noqa: S314
