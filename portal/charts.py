"""Charts as SVG, drawn on the server: no JavaScript, no CDN, nothing for the CSP to allow.

Two shapes cover the portal's pictures: columns over time (a tenant's grants at each sync)
and horizontal bars by category (the dashboard's tenants), each bar stacked by series.
Every text in the picture is escaped (names come from Graph: hostile), every number is
an int. A chart is decoration for the eye: the page shows its numbers in a table beside
it, which is the text alternative; the SVG says so in its accessible name.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 640
LEGEND_HEIGHT = 28
AXIS_WIDTH = 40
LABEL_WIDTH = 160
BAR_HEIGHT = 22
BAR_GAP = 8
COLUMNS_HEIGHT = 180
FONT = 12


@dataclass(frozen=True)
class Series:
    """One stacked part of every bar: its key in the bars' values, label and colour."""

    key: str
    label: str
    colour: str


@dataclass(frozen=True)
class Bar:
    """One column or bar: its label and a count per series key (absent keys are 0)."""

    label: str
    values: dict[str, int] = field(default_factory=dict)

    def total(self, series: Sequence[Series]) -> int:
        return sum(max(0, int(self.values.get(s.key, 0))) for s in series)


@dataclass(frozen=True)
class TableRow:
    """One row of a chart's table: what it is (linked) and its numbers."""

    label: str
    href: str
    cells: list[Any]


@dataclass(frozen=True)
class ChartWithTable:
    """A chart and the table of its numbers (its text alternative): the table's caption,
    column headings (the first is the rows' label) and rows."""

    svg: SafeString
    caption: str
    headings: list[str]
    rows: list[TableRow]


def nice_maximum(value: int) -> int:
    """The axis' top: ``value`` rounded up to 1, 2 or 5 times a power of ten (at least 1)."""
    if value <= 1:
        return 1
    scale = 1
    while True:
        for step in (1, 2, 5):
            if value <= step * scale:
                return step * scale
        scale *= 10


def columns_chart(*, title: str, series: Sequence[Series], bars: Sequence[Bar]) -> SafeString:
    """Stacked columns, left to right (oldest first), with a y axis from 0 to a round top."""
    top = nice_maximum(max((bar.total(series) for bar in bars), default=0))
    plot_width = WIDTH - AXIS_WIDTH - 8
    slot = plot_width / max(len(bars), 1)
    column = max(min(slot * 0.7, 48), 2)
    base = LEGEND_HEIGHT + COLUMNS_HEIGHT
    height = base + 2 * FONT + 8
    parts = [_legend(series)]
    for tick in (0, top // 2, top) if top > 1 else (0, top):
        y = base - COLUMNS_HEIGHT * tick / top
        parts.append(
            f'<line x1="{AXIS_WIDTH}" y1="{y:.1f}" x2="{WIDTH - 8}" y2="{y:.1f}" stroke="#cbd2d9"/>'
            f'<text x="{AXIS_WIDTH - 6}" y="{y + FONT / 3:.1f}" text-anchor="end" '
            f'font-size="{FONT}" fill="#52606d">{tick}</text>'
        )
    for index, bar in enumerate(bars):
        x = AXIS_WIDTH + index * slot + (slot - column) / 2
        y = base
        for part in series:
            value = max(0, int(bar.values.get(part.key, 0)))
            if not value:
                continue
            size = COLUMNS_HEIGHT * value / top
            y -= size
            parts.append(_rect(x, y, column, size, part, bar, value))
    if bars:
        # The first and last labels say where the time axis starts and ends.
        parts.append(_text(AXIS_WIDTH, height - 6, bars[0].label, anchor="start"))
        if len(bars) > 1:
            parts.append(_text(WIDTH - 8, height - 6, bars[-1].label, anchor="end"))
    return _svg(title, height, parts)


def bars_chart(*, title: str, series: Sequence[Series], bars: Sequence[Bar]) -> SafeString:
    """Stacked horizontal bars, one per category, its label on the left and total on the right."""
    top = nice_maximum(max((bar.total(series) for bar in bars), default=0))
    plot_width = WIDTH - LABEL_WIDTH - 48
    height = LEGEND_HEIGHT + len(bars) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
    parts = [_legend(series)]
    for index, bar in enumerate(bars):
        y = LEGEND_HEIGHT + BAR_GAP + index * (BAR_HEIGHT + BAR_GAP)
        parts.append(_text(LABEL_WIDTH - 8, y + BAR_HEIGHT * 0.7, _shorten(bar.label), "end"))
        x = float(LABEL_WIDTH)
        for part in series:
            value = max(0, int(bar.values.get(part.key, 0)))
            if not value:
                continue
            size = plot_width * value / top
            parts.append(_rect(x, y, size, BAR_HEIGHT, part, bar, value))
            x += size
        parts.append(_text(x + 6, y + BAR_HEIGHT * 0.7, str(bar.total(series)), "start"))
    return _svg(title, height, parts)


def _svg(title: str, height: float, parts: list[str]) -> SafeString:
    label = escape(f"{title} (the table beside it gives the numbers)")
    body = "".join(parts)
    # Safe: every text inside went through escape(), every number is formatted here.
    return mark_safe(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{label}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" width="100%" preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _legend(series: Sequence[Series]) -> str:
    parts = []
    x = 0.0
    for part in series:
        parts.append(
            f'<rect x="{x:.1f}" y="6" width="12" height="12" fill="{escape(part.colour)}"/>'
            + _text(x + 16, 16, part.label, "start")
        )
        x += 24 + 7 * len(part.label)
    return "".join(parts)


def _rect(
    x: float, y: float, width: float, height: float, part: Series, bar: Bar, value: int
) -> str:
    tooltip = escape(f"{bar.label}: {value} {part.label.lower()}")
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
        f'fill="{escape(part.colour)}"><title>{tooltip}</title></rect>'
    )


def _text(x: float, y: float, text: str, anchor: str) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{FONT}" '
        f'fill="#1f2933">{escape(text)}</text>'
    )


def _shorten(label: str, limit: int = 24) -> str:
    """A long name cut to fit beside its bar; the table gives it whole."""
    return label if len(label) <= limit else label[: limit - 1] + "…"
