"""The monitoring report: one self-contained HTML file (figures embedded as PNG data URIs).

Sections: county summary; transitions by village with the county total; movements between monitoring
categories (table and bar plot); risk distribution by village (top villages by flagged households);
main causes by village; drift between the two rounds; the flagged households of the current round with
their reasons. Everything is escaped; nothing is fetched from the network when the file is opened.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

TOP_VILLAGES = 20
FLAGGED_COLUMNS = (
    "village_id",
    "household_id",
    "category",
    "main_cause",
    "secondary_causes",
    "poverty_risk",
    "relapse_risk",
    "reasons",
)
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f2f2f2; } td:last-child { text-align: left; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
"""


def figure_data_uri(figure: Figure) -> str:
    """The figure as a PNG data URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def movements_figure(movements: pd.DataFrame) -> Figure:
    """Stacked bars: for each previous category, where its households are now."""
    figure = Figure(figsize=(8, 4))
    axes = figure.add_subplot()
    bottom = np.zeros(len(movements))
    for current in movements.columns:
        counts = movements[current].to_numpy(dtype=float)
        axes.bar(list(movements.index), counts, bottom=bottom, label=f"now {current}")
        bottom += counts
    axes.set_ylabel("households")
    axes.set_xlabel("category in the previous round")
    axes.tick_params(axis="x", labelrotation=20)
    axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


def top_villages(flags: pd.DataFrame, count: int = TOP_VILLAGES) -> list[str]:
    """The villages with the most flagged households (ties by village id)."""
    sizes = flags.groupby("village_id").size().reset_index(name="n")
    ordered = sizes.sort_values(["n", "village_id"], ascending=[False, True])
    return [str(village) for village in ordered["village_id"].head(count)]


def risk_by_village_figure(flags: pd.DataFrame, villages: list[str]) -> Figure:
    """Box plots of each flagged household's larger risk, for the given villages."""
    figure = Figure(figsize=(9, 4))
    axes = figure.add_subplot()
    larger = np.fmax(flags["poverty_risk"].to_numpy(dtype=float), flags["relapse_risk"].to_numpy(dtype=float))
    values = [
        np.nan_to_num(larger[(flags["village_id"] == village).to_numpy()], nan=0.0) for village in villages
    ]
    if villages:
        axes.boxplot(values, tick_labels=villages)
    axes.set_ylabel("larger of poverty and relapse risk")
    axes.tick_params(axis="x", labelrotation=60, labelsize=7)
    figure.tight_layout()
    return figure


def causes_by_village(flags: pd.DataFrame, villages: list[str]) -> pd.DataFrame:
    """Flagged households by village (rows, the given villages) and main cause (columns)."""
    table = pd.crosstab(flags["village_id"], flags["main_cause"])
    return table.reindex(villages, fill_value=0)


def _table(frame: pd.DataFrame, index: bool = True) -> str:
    return frame.to_html(index=index, escape=True, border=0, float_format=lambda value: f"{value:.3f}")


def _summary_value(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _summary_list(summary: Mapping[str, Any]) -> str:
    items = "".join(
        f"<li>{html.escape(str(name).replace('_', ' '))}: <b>{html.escape(_summary_value(value))}</b></li>"
        for name, value in summary.items()
    )
    return f"<ul>{items}</ul>"


def monitoring_report_html(
    *,
    title: str,
    summary: Mapping[str, Any],
    counts: pd.DataFrame,
    movements: pd.DataFrame,
    flags: pd.DataFrame,
    drift: pd.DataFrame | None = None,
    score_drift: Mapping[str, Any] | None = None,
) -> str:
    """The report as one HTML document (see the module docstring)."""
    villages = top_villages(flags)
    flagged = flags.loc[:, [column for column in FLAGGED_COLUMNS if column in flags.columns]]
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<h2>County summary</h2>",
        _summary_list(summary),
        "<h2>Transitions by village</h2>",
        _table(counts),
        "<h2>Movements between monitoring categories</h2>",
        "<p>Rows: category in the previous round; columns: category now.</p>",
        _table(movements),
        f'<img alt="movements between categories" src="{figure_data_uri(movements_figure(movements))}">',
        f"<h2>Risk by village (top {len(villages)} villages by flagged households)</h2>",
        f'<img alt="risk by village" src="{figure_data_uri(risk_by_village_figure(flags, villages))}">',
        "<h2>Main causes by village</h2>",
        _table(causes_by_village(flags, villages)),
        "<h2>Drift between the two rounds</h2>",
    ]
    if drift is None:
        parts.append("<p>No drift table.</p>")
    else:
        drifted = drift.loc[drift["drifted"].astype(bool)] if "drifted" in drift.columns else drift.iloc[:0]
        names = ", ".join(html.escape(str(name)) for name in drifted.get("feature", drifted.index))
        parts.append(f"<p>Drifted features: {names or 'none'}.</p>")
        if score_drift:
            parts.append("<p>Score distribution: " + html.escape(str(dict(score_drift))) + "</p>")
        parts.append(_table(drift, index=False))
    parts += [
        f"<h2>Flagged households ({len(flagged):,})</h2>",
        _table(flagged, index=False),
        "</body></html>",
    ]
    return "\n".join(parts)
