"""Bar charts as plain geometry, drawn as inline SVG by the templates (``charts.svg``).

Why no charting library: the report's charts are bars and one marker line, and the page must
work with no network and no JavaScript. pygal, the best known pure-Python SVG library, links
its tooltip script from a CDN by default and keeps an inline ``<script>`` even with
``js=[]``; leather (pure Python, no script) cannot draw a marker between two bars of a
category axis, nor stacked bars. Here, Python decides where each rectangle goes (this
module, unit-tested) and a Jinja macro writes the ``<rect>`` elements, autoescaped like the
rest of the page, styled by the page's stylesheet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Bar", "Chart", "Segment", "columns", "hbars", "nice_ceiling"]


@dataclass(frozen=True)
class Bar:
    """One rectangle: where, how big, its style class and the text shown on hover."""

    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"
    css: str = "label"


@dataclass
class Chart:
    """Everything a template needs to draw one chart."""

    width: float
    height: float
    title: str
    bars: list[Bar] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    gridlines: list[tuple[float, float, float, float]] = field(default_factory=list)
    marker: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2
    marker_label: Label | None = None


@dataclass(frozen=True)
class Segment:
    """Part of a horizontal bar: a value, its style class and its name in the legend."""

    value: int
    css: str
    name: str


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value``.

    >>> [nice_ceiling(v) for v in (0, 7, 13, 240, 1001)]
    [1.0, 10.0, 20.0, 250.0, 2000.0]
    """
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    while scale > value:
        scale /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * scale >= value:
            return float(step * scale)
    return float(10 * scale)  # pragma: no cover


def _ticks(top: float) -> list[float]:
    """Gridline values from 0 to ``top`` (a :func:`nice_ceiling`) in round steps."""
    lead = top
    while lead >= 10:
        lead /= 10
    while lead < 1:
        lead *= 10
    count = 4 if round(lead, 6) in (2.0, 10.0) else 5
    return [top * i / count for i in range(count + 1)]


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:g}"


def hbars(
    title: str,
    rows: Sequence[tuple[str, Sequence[Segment]]],
    *,
    width: float = 640,
    label_width: float = 150,
    row_height: float = 26,
) -> Chart:
    """Horizontal bars, one row per ``(label, segments)``; segments stack left to right.

    The total is written after each bar, so the numbers are there without hovering.
    """
    top = nice_ceiling(max((sum(s.value for s in segs) for _, segs in rows), default=0))
    plot = width - label_width - 70
    height = 24 + row_height * max(1, len(rows)) + 18
    chart = Chart(width, height, title)
    for tick in _ticks(top):
        x = label_width + plot * tick / top
        chart.gridlines.append((x, 16, x, height - 20))
        chart.labels.append(Label(x, height - 6, _fmt(tick), "middle", "tick"))
    for i, (label, segments) in enumerate(rows):
        y = 20 + i * row_height
        chart.labels.append(Label(label_width - 8, y + row_height * 0.62, label, "end"))
        x = label_width
        for seg in segments:
            w = plot * seg.value / top
            if seg.value:
                title = f"{label}: {seg.value:,} {seg.name}"
                chart.bars.append(Bar(x, y + 4, max(w, 1.0), row_height - 8, seg.css, title))
            x += w
        total = sum(s.value for s in segments)
        chart.labels.append(Label(x + 6, y + row_height * 0.62, f"{total:,}", "start", "value"))
    return chart


def columns(
    title: str,
    labels: Sequence[str],
    counts: Sequence[int],
    *,
    marker_after: int | None = None,
    marker_text: str = "",
    split_colours: bool = True,
    width: float = 640,
    height: float = 260,
) -> Chart:
    """Vertical bars, one per bucket; a dashed marker after bucket ``marker_after - 1``.

    With ``split_colours`` the buckets before the marker get the class ``bar-in`` and the
    others ``bar-late``; without, all are ``bar-neutral`` (the marker is a reference only).
    """
    left, right, top_pad, bottom = 48, 12, 26, 44
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    top = nice_ceiling(max(counts, default=0))
    chart = Chart(width, height, title)
    for tick in _ticks(top):
        y = top_pad + plot_h * (1 - tick / top)
        chart.gridlines.append((left, y, width - right, y))
        chart.labels.append(Label(left - 6, y + 4, _fmt(tick), "end", "tick"))
    slot = plot_w / max(1, len(counts))
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        h = plot_h * count / top
        x = left + i * slot
        css = "bar-in" if marker_after is None or i < marker_after else "bar-late"
        if not split_colours:
            css = "bar-neutral"
        y = top_pad + plot_h - h
        chart.bars.append(Bar(x + slot * 0.12, y, slot * 0.76, h, css, f"{label}: {count:,}"))
        chart.labels.append(Label(x + slot / 2, height - bottom + 16, label, "middle", "tick"))
    if marker_after is not None:
        x = left + marker_after * slot
        chart.marker = (x, top_pad - 10, x, top_pad + plot_h)
        chart.marker_label = Label(x + 4, top_pad - 2, marker_text, "start", "marker-label")
    return chart
