"""The household's risks and income over the rounds as an SVG line chart, drawn on the server.

No script and no inline style (the pages' Content-Security-Policy allows neither): geometry and colours
are SVG attributes. Unknown values leave a gap in their line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 420, 270
LEFT, RIGHT, TOP, BOTTOM = 40, 34, 12, 80
"""Small enough that its 12-unit text stays legible on a 360 px phone; it scales up on a desktop."""
FONT = 12
POVERTY_COLOUR, RELAPSE_COLOUR, RATIO_COLOUR = "#b3261e", "#c77700", "#1f5fa8"


@dataclass(frozen=True)
class ChartText:
    """What the chart says, in the reader's language."""

    title: str
    poverty: str
    relapse: str
    ratio: str
    round_label: str
    """`{round}` is replaced by the round number (e.g. "第 {round} 轮")."""


def risk_chart(
    rounds: Sequence[int],
    poverty: Sequence[float | None],
    relapse: Sequence[float | None],
    ratio: Sequence[float | None],
    text: ChartText,
) -> str:
    """An SVG of both risks (left axis, 0-1) and the income-to-line ratio (right axis, from 0 to at
    least 2) over `rounds`."""
    ratio_top = max(2.0, *(_finite(value) or 0.0 for value in ratio))
    ratio_top = math.ceil(ratio_top)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(position: int) -> float:
        return LEFT + (plot_w * position / (len(rounds) - 1) if len(rounds) > 1 else plot_w / 2)

    def y(value: float, top: float) -> float:
        return TOP + plot_h * (1 - min(max(value, 0.0), top) / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'class="chart" aria-label="{escape(text.title)}">',
        f"<title>{escape(text.title)}</title>",
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        height = y(tick, 1.0)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{height:.1f}" y2="{height:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{height + 4:.1f}" text-anchor="end" font-size="{FONT}" fill="#555">'
            f"{tick:.2f}</text>"
            f'<text x="{WIDTH - RIGHT + 6}" y="{height + 4:.1f}" font-size="{FONT}" fill="{RATIO_COLOUR}">'
            f"{tick * ratio_top:g}</text>"
        )
    for position, round_ in enumerate(rounds):
        parts.append(
            f'<text x="{x(position):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="{FONT}" '
            f'fill="#555">{escape(text.round_label.format(round=round_))}</text>'
        )
    series = (
        (poverty, 1.0, POVERTY_COLOUR, text.poverty, ""),
        (relapse, 1.0, RELAPSE_COLOUR, text.relapse, ""),
        (ratio, float(ratio_top), RATIO_COLOUR, text.ratio, ' stroke-dasharray="6 4"'),
    )
    for values, top, colour, _, dash in series:
        for segment in _segments(values):
            points = " ".join(f"{x(i):.1f},{y(value, top):.1f}" for i, value in segment)
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}/>'
            )
            parts.extend(
                f'<circle cx="{x(i):.1f}" cy="{y(value, top):.1f}" r="4" fill="{colour}"/>'
                for i, value in segment
            )
    for index, (_, _, colour, name, dash) in enumerate(series):  # the legend, one line per series
        left = LEFT
        base = HEIGHT - BOTTOM + 38 + index * 16
        parts.append(
            f'<line x1="{left:.1f}" x2="{left + 22:.1f}" y1="{base - 4}" y2="{base - 4}" stroke="{colour}" '
            f'stroke-width="2.5"{dash}/><text x="{left + 28:.1f}" y="{base}" font-size="{FONT}" fill="#222">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _segments(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Runs of known values (position, value); an unknown value ends a run."""
    runs: list[list[tuple[int, float]]] = [[]]
    for position, value in enumerate(values):
        known = _finite(value)
        if known is None:
            runs.append([])
        else:
            runs[-1].append((position, known))
    return [run for run in runs if run]


def bar_chart(bars: Sequence[tuple[str, float]], title: str, colour: str = RATIO_COLOUR) -> str:
    """Horizontal bars (label, value), a value at the end of each; the longest bar fills the width."""
    row, label_width, width = 26, 170, WIDTH
    height = TOP + row * max(len(bars), 1) + 8
    top_value = max((value for _, value in bars), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'class="chart bars" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for index, (name, value) in enumerate(bars):
        y = TOP + index * row
        length = (width - label_width - 60) * value / top_value
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 16}" text-anchor="end" font-size="{FONT}" fill="#222">'
            f"{escape(name)}</text>"
            f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="16" fill="{colour}"/>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 16}" font-size="{FONT}" fill="#222">'
            f"{value:,.0f}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
