"""Charts drawn on the server as SVG: the geometry is computed here, the template draws it.

No script and no chart library: a chart is a few lines and rectangles with text, readable on a
phone, printable, and allowed by a content security policy without 'unsafe-inline'. Labels are
plain strings that the template escapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Colours that stay apart for common colour blindness (Okabe–Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


@dataclass(frozen=True, slots=True)
class Series:
    """A named row of values (None where there is nothing to measure)."""

    name: str
    values: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class Line:
    """A series as drawn: its colour, and its runs of points (gaps where values are missing)."""

    name: str
    colour: str
    runs: tuple[str, ...]
    dots: tuple[tuple[float, float, str], ...]


@dataclass(frozen=True, slots=True)
class LineChart:
    """A line chart of percentages over labelled steps (months)."""

    width: int
    height: int
    left: int
    top: int
    plot_width: float
    plot_height: float
    lines: tuple[Line, ...]
    x_labels: tuple[tuple[float, str], ...]
    y_ticks: tuple[tuple[float, str], ...]
    title: str


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, width: int = 900
) -> LineChart:
    """Lay out a line chart of shares (0..1) shown as percentages."""
    height, left, right, top, bottom = 300, 44, 12, 12, 40
    plot_width = width - left - right
    plot_height = height - top - bottom
    steps = max(len(labels) - 1, 1)

    def x(index: int) -> float:
        return round(left + plot_width * index / steps, 1)

    def y(value: float) -> float:
        return round(top + plot_height * (1 - max(0.0, min(1.0, value))), 1)

    lines = []
    for number, one in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        runs: list[str] = []
        current: list[str] = []
        dots = []
        for index, value in enumerate(one.values):
            if value is None:
                if current:
                    runs.append(" ".join(current))
                    current = []
                continue
            current.append(f"{x(index)},{y(value)}")
            dots.append((x(index), y(value), f"{one.name} {labels[index]}: {value * 100:.1f}%"))
        if current:
            runs.append(" ".join(current))
        lines.append(Line(one.name, colour, tuple(runs), tuple(dots)))
    every = max(1, len(labels) // 6)
    x_labels = tuple((x(i), label) for i, label in enumerate(labels) if i % every == 0)
    y_ticks = tuple((y(share / 100), f"{share}%") for share in (0, 25, 50, 75, 100))
    return LineChart(
        width, height, left, top, plot_width, plot_height, tuple(lines), x_labels, y_ticks, title
    )


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: where it starts, how long it is, and what it says."""

    y: float
    length: float
    colour: str
    text: str


@dataclass(frozen=True, slots=True)
class BarGroup:
    """The bars of one category (a department), under its label."""

    label: str
    label_y: float
    bars: tuple[Bar, ...]


@dataclass(frozen=True, slots=True)
class BarChart:
    """A horizontal bar chart of shares, one group of bars per category."""

    width: int
    height: int
    left: int
    plot_width: float
    groups: tuple[BarGroup, ...]
    legend: tuple[tuple[str, str], ...]
    x_ticks: tuple[tuple[float, str], ...]
    title: str


def bar_chart(
    title: str, categories: Sequence[str], series: Sequence[Series], *, width: int = 900
) -> BarChart:
    """Lay out horizontal bars of shares (0..1): one group per category, one bar per series."""
    left, right, top, bar, gap = 230, 70, 24, 12, 10
    plot_width = width - left - right
    group_height = bar * len(series) + gap
    groups = []
    for index, category in enumerate(categories):
        base = top + index * group_height
        bars = []
        for number, one in enumerate(series):
            value = one.values[index]
            share = 0.0 if value is None else max(0.0, min(1.0, value))
            text = "—" if value is None else f"{value * 100:.1f}%"
            bars.append(
                Bar(
                    y=base + number * bar,
                    length=round(plot_width * share, 1),
                    colour=PALETTE[number % len(PALETTE)],
                    text=text,
                )
            )
        groups.append(BarGroup(category, base + bar * len(series) / 2 + 4, tuple(bars)))
    height = top + group_height * len(categories) + 20
    legend = tuple((s.name, PALETTE[n % len(PALETTE)]) for n, s in enumerate(series))
    ticks = tuple((left + plot_width * share / 100, f"{share}%") for share in (0, 50, 100))
    return BarChart(width, height, left, plot_width, tuple(groups), legend, ticks, title)
