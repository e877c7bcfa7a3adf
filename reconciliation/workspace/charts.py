"""Server-rendered charts: the geometry of two small SVG charts, in whole numbers.

No JavaScript and no style attributes (the admin's Content-Security-Policy allows neither):
the templates draw ``<rect>``s with presentation attributes (x, y, width, height) and CSS
classes from ``static/workspace/dashboard.css``. Every bar is a link to the list behind it,
and has a ``<title>`` (the browser's tooltip, read out by screen readers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from core.display import NOTHING, local_date_display

# Daily chart, in viewBox units: 90 bars of 6 with gaps of 2.
BAR = 6
STEP = 8
LEFT = 40
TOP = 12
PLOT_HEIGHT = 150
BOTTOM = 26
RIGHT = 12
# Top of the y axis: the first of these at least the busiest day (even, so the middle
# gridline is a whole number too).
NICE_TOPS = (2, 4, 6, 10, 20, 40, 60, 100, 200, 400, 600)
# Stack order, bottom first, with the words of the legend.
KINDS = (
    ("collected", "Collected"),
    ("failed", "Failed or charged back"),
    ("in_progress", "On its way"),
)
LABEL_MIN_GAP = 7  # bars between two date labels


@dataclass
class Segment:
    kind: str
    y: int
    height: int


@dataclass
class DayBar:
    day: dt.date
    x: int
    segments: list[Segment]
    title: str
    url: str


@dataclass
class Tick:
    y: int
    label: str


@dataclass
class XLabel:
    x: int
    label: str
    anchor: str = "middle"


@dataclass
class DailyChart:
    width: int
    height: int
    plot_top: int
    plot_bottom: int
    plot_left: int
    plot_right: int
    bars: list[DayBar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    labels: list[XLabel] = field(default_factory=list)
    legend: list[tuple[str, str, int]] = field(default_factory=list)
    first_text: str = ""
    last_text: str = ""
    total: int = 0

    @property
    def empty(self) -> bool:
        return self.total == 0


def nice_top(busiest: int) -> int:
    for top in NICE_TOPS:
        if busiest <= top:
            return top
    return -(-busiest // 200) * 200


def daily_chart(
    *,
    first: dt.date,
    last: dt.date,
    counts: Mapping[dt.date, Mapping[str, int]],
    url_for: Callable[[dt.date], str],
) -> DailyChart:
    """Stacked bars per day from ``first`` to ``last`` (counts per kind of ``KINDS``)."""
    days = (last - first).days + 1
    width = LEFT + days * STEP + RIGHT
    bottom = TOP + PLOT_HEIGHT
    chart = DailyChart(
        width=width,
        height=bottom + BOTTOM,
        plot_top=TOP,
        plot_bottom=bottom,
        plot_left=LEFT,
        plot_right=LEFT + days * STEP,
        first_text=local_date_display(first),
        last_text=local_date_display(last),
    )
    busiest = max((sum(c.values()) for c in counts.values()), default=0)
    top = nice_top(max(busiest, 1))
    chart.ticks = [
        Tick(bottom - PLOT_HEIGHT * part // 2, f"{top * part // 2:,}") for part in (0, 1, 2)
    ]
    totals = dict.fromkeys((k for k, _ in KINDS), 0)
    last_label = -LABEL_MIN_GAP
    for index in range(days):
        day = first + dt.timedelta(days=index)
        x = LEFT + index * STEP + (STEP - BAR) // 2
        if (day.day == 1 or index == 0) and index - last_label >= LABEL_MIN_GAP and (
            days - index > LABEL_MIN_GAP // 2
        ):
            chart.labels.append(XLabel(x + BAR // 2, f"{day.day} {day:%b}", "start"
                                       if index == 0 else "middle"))
            last_label = index
        day_counts = counts.get(day) or {}
        if not any(day_counts.values()):
            continue
        y = bottom
        segments = []
        parts = []
        for kind, label in KINDS:
            n = day_counts.get(kind, 0)
            if not n:
                continue
            totals[kind] += n
            height = max(PLOT_HEIGHT * n // top, 1)
            y -= height
            segments.append(Segment(kind, y, height))
            parts.append(f"{n:,} {label.lower()}")
        chart.bars.append(
            DayBar(day, x, segments, f"{local_date_display(day)}: {', '.join(parts)}", url_for(day))
        )
    chart.labels.append(XLabel(LEFT + days * STEP, "today", "end"))
    chart.legend = [(kind, label, totals[kind]) for kind, label in KINDS]
    chart.total = sum(totals.values())
    return chart


# --- failure rate by reason -----------------------------------------------------------------------


@dataclass
class ReasonRow:
    label: str
    count: int
    rate: str
    width: int  # of 100 viewBox units: the most frequent reason fills the row
    url: str


@dataclass
class ReasonChart:
    total: int
    failed: int
    rows: list[ReasonRow] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.total == 0

    @property
    def rate(self) -> str:
        return percent(self.failed, self.total)


def percent(part: int, whole: int) -> str:
    """``3.2 %`` (one decimal, half up; exact decimal arithmetic)."""
    if not whole:
        return NOTHING
    value = (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return f"{value} %"


def reason_chart(*, total: int, reasons: list[tuple[str, int, str]]) -> ReasonChart:
    """``reasons``: (words, count, url) per failure cause; ``total``: payments sent."""
    ordered = sorted(reasons, key=lambda r: (-r[1], r[0]))
    most = max((count for _, count, _ in ordered), default=0)
    chart = ReasonChart(total=total, failed=sum(count for _, count, _ in ordered))
    chart.rows = [
        ReasonRow(label, count, percent(count, total), max(count * 100 // most, 1), url)
        for label, count, url in ordered
    ]
    return chart
