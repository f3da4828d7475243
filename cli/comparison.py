"""How `povrisk compare` shows a comparison to a person: fixed-width tables on stderr, never wrapped."""

from __future__ import annotations

import math

import pandas as pd

from cli.console import console
from training.compare import Comparison
from training.train import SURVEY_LABELS, VERIFIED_LABELS

CALIBRATED_ON = {"survey": SURVEY_LABELS, "verified": VERIFIED_LABELS, "": "(not logged)"}
METRIC_WIDTH = 17


def _number(value: float, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _interval(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "n/a (too few resamples with both classes)"
    return f"[{low:+.4f}, {high:+.4f}]"


def metric_lines(table: pd.DataFrame, lead: list[str], lead_widths: list[int]) -> list[str]:
    """One line per row: the `lead` columns, then both values, the difference, its interval, which is
    better."""
    header = "".join(f"{name:<{width}}" for name, width in zip(lead, lead_widths, strict=True))
    lines = [f"{header}{'challenger':>11}{'champion':>10}{'difference':>12}  {'95% interval':<20}better"]
    for _, row in table.iterrows():
        cells = "".join(f"{row[name]!s:<{width}}" for name, width in zip(lead, lead_widths, strict=True))
        lines.append(
            f"{cells}{_number(row['challenger']):>11}{_number(row['champion']):>10}"
            f"{_number(row['difference'], signed=True):>12}  {_interval(row['low'], row['high']):<20}"
            f"{row['better']}"
        )
    return lines


def comparison_lines(comparison: Comparison, replicates: int, rule_metric: str) -> list[str]:
    """The comparison in words and tables: headline metrics, calibration, areas, the decision."""
    lines = [
        f"{comparison.task}: challenger v{comparison.challenger_version} vs champion "
        f"v{comparison.champion_version} on {comparison.rows:,} held-out rows of {comparison.households:,} "
        f"households ({comparison.how}); difference = challenger - champion, 95% interval from "
        f"{replicates:,} resamples of households",
        "",
        *metric_lines(comparison.metrics.reset_index(), ["metric"], [METRIC_WIDTH]),
        "",
        "calibration (ECE over 10 probability bins), against which labels:",
        f"{'model':<12}{'calibrated on':<23}{'measured against':<23}{'rows':>8}{'ECE':>9}",
    ]
    for _, row in comparison.calibration.iterrows():
        calibrated_on = CALIBRATED_ON.get(str(row["calibrated_against"]), str(row["calibrated_against"]))
        lines.append(
            f"{row['model']:<12}{calibrated_on:<23}{row['labels']:<23}{row['rows']:>8,}{_number(row['ece']):>9}"
        )
    areas = comparison.by_area
    lines.append("")
    if areas.empty:
        lines.append("by township and village: no area with enough held-out households (or no areas logged)")
    else:
        lines.append(f"{rule_metric} by township and village with enough households (all metrics: --json):")
        lines += metric_lines(
            areas[areas["metric"] == rule_metric], ["level", "area", "households"], [10, 12, 11]
        )
    verdict = "would promote" if comparison.decision.get("promoted") else "would keep the champion"
    lines += ["", f"promote {verdict}: {comparison.decision.get('reason', '')}"]
    return lines


def print_comparison(comparison: Comparison, replicates: int, rule_metric: str) -> None:
    for line in comparison_lines(comparison, replicates, rule_metric):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
