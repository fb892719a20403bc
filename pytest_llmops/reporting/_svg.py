"""Small inline SVG charts for the HTML report: a histogram and a scatter plot with a fitted line.

Plain string building with the standard library, so the report needs no
plotting library and no script at view time. Every chart carries a
``<title>`` and a ``<desc>`` for screen readers, and all text is escaped.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from html import escape

WIDTH, HEIGHT = 520, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 16, 44

def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.2g}"


class _Frame:
    """Maps data coordinates onto the plot area and draws the axes."""

    def __init__(self, x_ticks: list[float], y_ticks: list[float]) -> None:
        self.x0, self.x1 = x_ticks[0], x_ticks[-1]
        self.y0, self.y1 = y_ticks[0], y_ticks[-1]
        self.x_ticks, self.y_ticks = x_ticks, y_ticks

    def x(self, value: float) -> float:
        return LEFT + (value - self.x0) / ((self.x1 - self.x0) or 1) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - (value - self.y0) / ((self.y1 - self.y0) or 1) * (HEIGHT - TOP - BOTTOM)

    def axes(self, x_label: str, y_label: str, x_format: Callable[[float], str] = _label) -> list[str]:
        parts = ['<g class="axis">']
        for tick in self.y_ticks:
            y = self.y(tick)
            parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
            parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(_label(tick))}</text>')
        for tick in self.x_ticks:
            x = self.x(tick)
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM + 4}"/>')
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 17}" text-anchor="middle">{escape(x_format(tick))}</text>')
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}"/>')
        parts.append(
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle" class="label">'
            f"{escape(x_label)}</text>"
        )
        parts.append(
            f'<text transform="translate(13 {(TOP + HEIGHT - BOTTOM) / 2:.0f}) rotate(-90)" text-anchor="middle" class="label">'
            f"{escape(y_label)}</text>"
        )
        parts.append("</g>")
        return parts


def _open(title: str, description: str, css_class: str) -> list[str]:
    # Derived from the content, so the same run renders the same file byte for byte.
    ident = "chart-" + hashlib.sha1(f"{css_class}|{title}|{description}".encode()).hexdigest()[:10]
    return [
        f'<svg class="chart {css_class}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d">',
        f'<title id="{ident}-t">{escape(title)}</title>',
        f'<desc id="{ident}-d">{escape(description)}</desc>',
    ]


def _marker(frame: _Frame, value: float, label: str, css_class: str, row: int = 0) -> list[str]:
    x = frame.x(min(max(value, frame.x0), frame.x1))
    anchor = "end" if x > WIDTH * 0.75 else "start"
    dx = -4 if anchor == "end" else 4
    return [
        f'<line class="{css_class}" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}"/>',
        f'<text class="{css_class}-label" x="{x + dx:.1f}" y="{TOP + 10 + 13 * row}" text-anchor="{anchor}">'
        f"{escape(label)}</text>",
    ]


def histogram(
    values: Sequence[float],
    *,
    title: str,
    x_label: str,
    domain: tuple[float, float] | None = None,
    bins: int = 10,
    threshold: float | None = None,
    threshold_label: str = "",
    bad_side: str | None = None,
    markers: Sequence[tuple[float, str]] = (),
    x_format: Callable[[float], str] = _label,
) -> str:
    """A histogram of ``values``; bars on ``bad_side`` ("below"/"above") of ``threshold`` are drawn as failing.

    ``markers`` are extra vertical lines with labels (p50, p95). ``domain``
    fixes the x range (scores on [0, 1]); otherwise it is rounded out from
    the data.
    """
    if domain is None:
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        extra = [threshold] if threshold is not None else []
        ticks = nice_ticks(min([low, *extra]), max([high, *extra]), 6)
        low, high = ticks[0], ticks[-1]
    else:
        low, high = domain
        ticks = nice_ticks(low, high, 5)
    width = (high - low) / bins
    heights = [0] * bins
    failing_counts = [0] * bins
    for value in values:
        index = max(min(int((value - low) / width), bins - 1) if width else 0, 0)
        heights[index] += 1
        if threshold is not None and (
            (bad_side == "below" and value < threshold) or (bad_side == "above" and value > threshold)
        ):
            failing_counts[index] += 1
    frame = _Frame(ticks, nice_ticks(0, max(max(heights, default=0), 1), 4))
    summary = ", ".join(f"{low + i * width:.3g} to {low + (i + 1) * width:.3g}: {h}" for i, h in enumerate(heights) if h)
    description = f"{len(values)} values in {bins} bins ({summary})" + (
        f"; threshold {threshold:g}" if threshold is not None else ""
    )
    parts = _open(title, description, "histogram")
    parts += frame.axes(x_label, "count", x_format)
    for i, count in enumerate(heights):
        if not count:
            continue
        left, right = low + i * width, low + (i + 1) * width
        # A bar is drawn as failing when most of its values fail: a bin that holds the
        # threshold (a score of exactly 1.0 against a threshold of 1.0) is judged by its values.
        failing = failing_counts[i] * 2 > count
        x, x_end = frame.x(left), frame.x(right)
        y = frame.y(count)
        parts.append(
            f'<rect class="bar{" bad" if failing else ""}" x="{x + 1:.1f}" y="{y:.1f}" width="{max(x_end - x - 2, 1):.1f}" '
            f'height="{HEIGHT - BOTTOM - y:.1f}"><title>{escape(f"{left:.3g} to {right:.3g}: {count}")}</title></rect>'
        )
    row = 0
    if threshold is not None:
        parts += _marker(frame, threshold, threshold_label or f"threshold {threshold:g}", "threshold", row)
        row += 1
    for value, label in markers:
        parts += _marker(frame, value, label, "marker", row)
        row += 1
    parts.append("</svg>")
    return "\n".join(parts)


def _clip(slope: float, intercept: float, frame: _Frame) -> tuple[float, float] | None:
    """The x range over which the line stays inside the plot's y range, or None when it never does."""
    if slope == 0:
        return (frame.x0, frame.x1) if frame.y0 <= intercept <= frame.y1 else None
    bounds = sorted(((frame.y0 - intercept) / slope, (frame.y1 - intercept) / slope))
    low, high = max(frame.x0, bounds[0]), min(frame.x1, bounds[1])
    return (low, high) if low < high else None


def scatter(
    points: Sequence[tuple[float, float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    line: tuple[float, float] | None = None,
    line_label: str = "",
) -> str:
    """A scatter plot of (x, y) points with an optional fitted line ``y = intercept + slope * x``."""
    xs = [p[0] for p in points] or [0.0]
    ys = [p[1] for p in points] or [0.0]
    frame = _Frame(nice_ticks(0, max(xs), 5), nice_ticks(0, max(ys), 4))
    description = f"{len(points)} points" + (f"; {line_label}" if line_label else "")
    parts = _open(title, description, "scatter")
    parts += frame.axes(x_label, y_label)
    for x, y in points:
        parts.append(f'<circle class="dot" cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="3"/>')
    if line is not None:
        slope, intercept = line
        segment = _clip(slope, intercept, frame)
        if segment is not None:
            xa, xb = segment
            ya, yb = intercept + slope * xa, intercept + slope * xb
            parts.append(
                f'<line class="fit" x1="{frame.x(xa):.1f}" y1="{frame.y(ya):.1f}" x2="{frame.x(xb):.1f}" y2="{frame.y(yb):.1f}">'
                f"<title>{escape(line_label)}</title></line>"
            )
        if line_label:
            parts.append(f'<text class="fit-label" x="{LEFT + 8}" y="{TOP + 12}">{escape(line_label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def pareto(
    points: Sequence[tuple[float, float, str, bool]],
    *,
    title: str,
    x_label: str,
    y_label: str = "pass rate",
    x_format: Callable[[float], str] = _label,
) -> str:
    """Cells as (x = cost or latency, y = pass rate, label, on the front): the front joined by a line.

    Front points are filled, dominated ones hollow; every point is labelled
    with its cell and carries a ``<title>`` tooltip.
    """
    xs = [p[0] for p in points] or [0.0]
    frame = _Frame(nice_ticks(0, max(xs) or 1.0, 5), nice_ticks(0, 1, 4))
    front = sorted((p for p in points if p[3]), key=lambda p: p[0])
    description = f"{len(points)} cells, {len(front)} on the Pareto front: " + ", ".join(p[2] for p in front)
    parts = _open(title, description, "pareto")
    parts += frame.axes(x_label, y_label, x_format)
    if len(front) > 1:
        path = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y, _, _ in front)
        parts.append(f'<polyline class="front" points="{path}" fill="none"/>')
    for x, y, label, on_front in points:
        cx, cy = frame.x(x), frame.y(y)
        css = "front-dot" if on_front else "dominated-dot"
        parts.append(f'<circle class="{css}" cx="{cx:.1f}" cy="{cy:.1f}" r="4">'
                     f"<title>{escape(f'{label}: {y_label} {y:.3f}, {x_label} {x_format(x)}')}</title></circle>")
        anchor = "end" if cx > WIDTH * 0.7 else "start"
        parts.append(f'<text class="point-label" x="{cx + (-6 if anchor == "end" else 6):.1f}" y="{cy - 6:.1f}" '
                     f'text-anchor="{anchor}">{escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def trend(points: Sequence[tuple[str, float | None]], *, title: str, y_label: str = "pass rate") -> str:
    """A value over successive runs, oldest first: (label, value in [0, 1] or None when unmeasured).

    Measured points are joined by a line; an unmeasured run leaves a gap and a hollow mark on the axis.
    """
    count = len(points)
    frame = _Frame([1.0, float(max(count, 2))], nice_ticks(0, 1, 4))
    measured = sum(value is not None for _, value in points)
    description = f"{count} runs, {measured} measured; last: " + (
        "unmeasured" if not points or points[-1][1] is None else f"{points[-1][1]:.3f}"
    )
    parts = _open(title, description, "trend")
    parts += frame.axes("run (oldest to newest)", y_label, lambda tick: f"{tick:.0f}" if tick == int(tick) else "")
    segment: list[str] = []
    for index, (label, value) in enumerate(points, start=1):
        if value is None:
            if len(segment) > 1:
                parts.append(f'<polyline class="trend-line" points="{" ".join(segment)}" fill="none"/>')
            segment = []
            parts.append(f'<circle class="dominated-dot" cx="{frame.x(index):.1f}" cy="{frame.y(0):.1f}" r="4">'
                         f"<title>{escape(f'{label}: unmeasured')}</title></circle>")
            continue
        segment.append(f"{frame.x(index):.1f},{frame.y(value):.1f}")
        parts.append(f'<circle class="dot" cx="{frame.x(index):.1f}" cy="{frame.y(value):.1f}" r="3">'
                     f"<title>{escape(f'{label}: {y_label} {value:.3f}')}</title></circle>")
    if len(segment) > 1:
        parts.append(f'<polyline class="trend-line" points="{" ".join(segment)}" fill="none"/>')
    parts.append("</svg>")
    return "\n".join(parts)
