"""Challenger against champion on the same held-out households, with the uncertainty of every difference;
changes nothing (`povrisk compare --task T`).

The rows: the challenger's held-out rows, with the champion's risks on them as `promote` pairs them
(`training.tracking.paired_held_out`). For every headline metric: both models' values, the difference
(challenger - champion) and its paired cluster-bootstrap 95 % interval (households resampled, the same
resamples scoring both models: `training.bootstrap`). The same per township and per village holding at
least `comparison.min_area_households` (training/settings.yaml) held-out households, their areas logged
with the challenger's held-out rows (`training.areas`; for a run logged before that, from the survey
given). The calibration of both: the reliability table and ECE of each, named by the labels they are
measured against (the survey's labels; and the field-verified sample when the rows carry one), beside
the labels each model's calibrator was fitted on. The decision the promotion rule would take on these
figures (`training.tracking`) comes with it, taken by the same code as `promote` but without acting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.policy import Policy, load_policy
from survey.io import Survey
from training.areas import AREA_LEVELS, row_areas
from training.bootstrap import paired_bootstrap
from training.metrics import METRIC_KEYS, binary_metrics, expected_calibration_error, reliability_table
from training.pseudonyms import HOUSEHOLD_REF, pseudonymised
from training.settings import TrainingSettings, load_training_settings
from training.train import OUTCOME_VERIFIED, SURVEY_LABELS, VERIFIED_LABELS

HEADLINE = tuple(key for key in METRIC_KEYS if key not in ("recall_at_5pct", "precision_at_10pct"))
"""The metrics compared: every metric of `binary_metrics` but the two narrowest shares of the flag list."""
LOWER_IS_BETTER = frozenset({"brier", "ece", "exclusion_error", "inclusion_error"})


@dataclass(frozen=True)
class Comparison:
    """What `compare_models` found (module docstring): `metrics` one row per headline metric (columns
    challenger, champion, difference, low, high, better), `by_area` the same per township and village
    (long: one row per area and metric), `calibration` ECE per model and labels, `decision` the promotion
    rule's verdict (`promoted`, `reason`, `difference_interval`), `curves` the reliability tables by
    (model, labels)."""

    task: str
    challenger_version: int
    champion_version: int
    rows: int
    households: int
    how: str
    metrics: pd.DataFrame
    by_area: pd.DataFrame
    calibration: pd.DataFrame
    decision: dict[str, Any]
    curves: Mapping[tuple[str, str], pd.DataFrame] = field(default_factory=dict)

    def figures(self) -> dict[str, Figure]:
        """`differences.png`: each metric's difference with its 95 % interval (a forest plot, oriented so
        right = the challenger is better); `calibration.png`: both models' reliability curves."""
        return {"differences.png": differences_figure(self), "calibration.png": calibration_figure(self)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN as None)."""

        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return [
                {str(key): _json_value(value) for key, value in row.items()}
                for row in frame.to_dict("records")
            ]

        return {
            "task": self.task,
            "challenger_version": self.challenger_version,
            "champion_version": self.champion_version,
            "rows": self.rows,
            "households": self.households,
            "compared_by": self.how,
            "metrics": records(self.metrics.reset_index()),
            "by_area": records(self.by_area),
            "calibration": records(self.calibration),
            "decision": {key: _json_value(value) for key, value in self.decision.items()},
        }


def _json_value(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return value


def better_of(metric: str, low: float, high: float) -> str:
    """`challenger` when the whole interval favours it, `champion` when it favours the champion, else
    `neither` (the difference is within the noise)."""
    if math.isnan(low) or math.isnan(high):
        return "neither"
    favours_challenger = high < 0 if metric in LOWER_IS_BETTER else low > 0
    favours_champion = low > 0 if metric in LOWER_IS_BETTER else high < 0
    return "challenger" if favours_challenger else "champion" if favours_champion else "neither"


def metric_table(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    groups: np.ndarray,
    coverage: float | None,
    replicates: int,
    seed: int,
) -> pd.DataFrame:
    """One row per headline metric: both values, the difference, its bootstrap interval, which is better."""
    a, b = binary_metrics(y, challenger, coverage), binary_metrics(y, champion, coverage)
    intervals = paired_bootstrap(y, challenger, champion, groups, coverage, replicates, seed)
    rows = []
    for metric in HEADLINE:
        low, high = intervals[metric]
        rows.append(
            {
                "metric": metric,
                "challenger": a[metric],
                "champion": b[metric],
                "difference": a[metric] - b[metric],
                "low": low,
                "high": high,
                "better": better_of(metric, low, high),
            }
        )
    return pd.DataFrame(rows).set_index("metric")


def label_sets(y: np.ndarray, verified: np.ndarray | None) -> list[tuple[str, np.ndarray]]:
    """The labels calibration is measured against: the survey's (every row), and the field-verified
    sample (the rows whose outcome a visit established) when there is one."""
    sets = [(SURVEY_LABELS, np.ones(len(y), dtype=bool))]
    if verified is not None and verified.any():
        sets.append((VERIFIED_LABELS, verified))
    return sets


def calibration_rows(
    y: np.ndarray,
    risks: Mapping[str, np.ndarray],
    verified: np.ndarray | None,
    calibrated_against: Mapping[str, str],
) -> pd.DataFrame:
    """ECE, rows, mean risk and observed rate of each model against each set of labels, with the labels
    its calibrator was fitted on (`survey`, `verified`; empty for a run that did not log it): an ECE of
    0.06 on survey labels and 0.01 on verified outcomes is no contradiction for a model calibrated on the
    verified ones."""
    return pd.DataFrame(
        [
            {
                "model": model,
                "labels": labels,
                "calibrated_against": calibrated_against.get(model, ""),
                "rows": int(rows.sum()),
                "ece": expected_calibration_error(y[rows], risk[rows]),
                "mean_risk": float(risk[rows].mean()),
                "observed_rate": float(y[rows].mean()),
            }
            for model, risk in risks.items()
            for labels, rows in label_sets(y, verified)
        ]
    )


def areas_of_rows(rows: pd.DataFrame, run_id: str, survey: Survey | None) -> pd.DataFrame | None:
    """Township and village of each held-out row: logged with the challenger's run, else (a run logged
    before areas were) from `survey`, its household ids hashed with the store's key as the rows' are;
    None without either."""
    from training.tracking import held_out_areas, household_key, key_folder, tracking_uri

    logged = held_out_areas(run_id)
    if logged is not None:
        return logged.reindex(rows.index)
    if survey is None:
        return None
    key = household_key(key_folder(tracking_uri()))
    households = pseudonymised(survey.households, key)
    return row_areas(households, survey.villages, rows.index, id_column=HOUSEHOLD_REF)


def area_table(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    groups: np.ndarray,
    areas: pd.DataFrame,
    coverage: float | None,
    replicates: int,
    seed: int,
    min_households: int,
) -> pd.DataFrame:
    """`metric_table` per township and per village with at least `min_households` held-out households
    and both classes among its rows: one row per area and metric."""
    tables = []
    for level in AREA_LEVELS:
        for area, inside in areas.groupby(level, dropna=True).indices.items():
            households = len(np.unique(groups[inside]))
            if households < min_households or len(np.unique(y[inside])) < 2:
                continue
            table = metric_table(
                y[inside], challenger[inside], champion[inside], groups[inside], coverage, replicates, seed
            ).reset_index()
            tables.append(
                table.assign(level=level.removesuffix("_id"), area=str(area), households=households)
            )
    columns = ["level", "area", "households", "metric", "challenger", "champion", "difference", "low", "high"]
    if not tables:
        return pd.DataFrame(columns=[*columns, "better"])
    return pd.concat(tables, ignore_index=True)[[*columns, "better"]]


def compare_models(
    task: str,
    *,
    seed: int = 0,
    replicates: int = 1000,
    policy: Policy | None = None,
    settings: TrainingSettings | None = None,
    survey: Survey | None = None,
    county: str | None = None,
) -> Comparison:
    """The challenger against the champion of `task` (of `county`'s own model when given; module
    docstring), `replicates` bootstrap resamples of households seeded with `seed`. `survey`, the data
    the models learned from, is only needed for the per-area rows of a challenger logged before its rows'
    areas were. Changes nothing.
    `LookupError` without a challenger or a champion, or when the two cannot be scored on the same rows."""
    from training.tracking import (
        CHALLENGER,
        CHAMPION,
        _alias_version,
        _client,
        _promotion_decision,
        paired_held_out,
        registered_name,
    )

    policy = policy or load_policy()
    settings = settings or load_training_settings()
    client = _client()
    challenger = _alias_version(client, task, CHALLENGER, county)
    champion = _alias_version(client, task, CHAMPION, county)
    name = registered_name(task, county)
    if challenger is None or champion is None:
        missing = CHALLENGER if challenger is None else CHAMPION
        raise LookupError(f"{name} has no '{missing}' version: nothing to compare")
    if challenger.version == champion.version:
        raise LookupError(f"{name}: the challenger (version {challenger.version}) already is the champion")
    paired = paired_held_out(name, champion, challenger, client)
    if paired.champion_risk is None:
        raise LookupError(f"{name}: the two versions' held-out rows cannot be paired ({paired.how})")
    y, coverage = paired.labels, policy.flag_coverage
    challenger_risk, champion_risk = paired.challenger_risk, paired.champion_risk
    risks = {"challenger": challenger_risk, "champion": champion_risk}
    metrics = metric_table(y, challenger_risk, champion_risk, paired.groups, coverage, replicates, seed)
    areas = areas_of_rows(paired.rows, challenger.run_id, survey)
    by_area = area_table(
        y,
        challenger_risk,
        champion_risk,
        paired.groups,
        areas if areas is not None else pd.DataFrame({level: [] for level in AREA_LEVELS}),
        coverage,
        replicates,
        seed,
        settings.comparison.min_area_households,
    )
    columns = paired.rows.columns
    verified = paired.rows[OUTCOME_VERIFIED].to_numpy(dtype=bool) if OUTCOME_VERIFIED in columns else None
    calibrated_against = {
        "challenger": client.get_run(challenger.run_id).data.params.get("calibrated_against", ""),
        "champion": client.get_run(champion.run_id).data.params.get("calibrated_against", ""),
    }
    drawn_as_the_rule = replicates == settings.promotion.replicates and seed == 0
    intervals = {str(m): (float(row["low"]), float(row["high"])) for m, row in metrics.iterrows()}
    decision = _promotion_decision(
        task,
        policy,
        settings,
        paired=paired,
        intervals=intervals if drawn_as_the_rule else None,
        county=county,
    )
    return Comparison(
        task=task,
        challenger_version=int(challenger.version),
        champion_version=int(champion.version),
        rows=len(y),
        households=len(np.unique(paired.groups)),
        how=paired.how,
        metrics=metrics,
        by_area=by_area,
        calibration=calibration_rows(y, risks, verified, calibrated_against),
        decision={key: decision.get(key) for key in ("promoted", "reason", "difference_interval")},
        curves={
            (model, labels): pd.DataFrame(reliability_table(y[rows], risk[rows]))
            for model, risk in risks.items()
            for labels, rows in label_sets(y, verified)
        },
    )


def differences_figure(comparison: Comparison) -> Figure:
    """Forest plot: each metric's difference and 95 % interval, sign turned so that right = better for
    the challenger."""
    table = comparison.metrics
    sign = np.array([-1.0 if metric in LOWER_IS_BETTER else 1.0 for metric in table.index])
    centre = sign * table["difference"].to_numpy()
    low = np.minimum(sign * table["low"].to_numpy(), sign * table["high"].to_numpy())
    high = np.maximum(sign * table["low"].to_numpy(), sign * table["high"].to_numpy())
    figure = Figure(figsize=(7.5, 0.45 * len(table) + 1.6))
    axes = figure.add_subplot()
    positions = np.arange(len(table))[::-1]
    axes.errorbar(centre, positions, xerr=[centre - low, high - centre], fmt="o", color="#4c72b0", capsize=3)
    axes.axvline(0.0, color="grey", linestyle="--")
    axes.set_yticks(positions, [str(metric) for metric in table.index])
    axes.set_xlabel("← champion better    difference    challenger better →")
    axes.set_title(
        f"{comparison.task}: v{comparison.challenger_version} (challenger) vs "
        f"v{comparison.champion_version} (champion)\n{comparison.households:,} households, 95% intervals, "
        "sign turned where lower is better"
    )
    figure.tight_layout()
    return figure


def calibration_figure(comparison: Comparison) -> Figure:
    """Both models' reliability curves on the same held-out rows: against the survey's labels (solid) and
    the field-verified sample (dashed) when there is one, each named with its ECE."""
    figure = Figure(figsize=(5.5, 5.5))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    ece = comparison.calibration.set_index(["model", "labels"])["ece"]
    colours = {"challenger": "#c44e52", "champion": "#4c72b0"}
    for (model, labels), curve in comparison.curves.items():
        version = comparison.challenger_version if model == "challenger" else comparison.champion_version
        axes.plot(
            curve["predicted"],
            curve["observed"],
            marker="o" if labels == SURVEY_LABELS else "s",
            linestyle="-" if labels == SURVEY_LABELS else "--",
            color=colours[model],
            label=f"{model} v{version}, {labels} (ECE {float(ece[(model, labels)]):.3f})",
        )
    axes.set_xlabel("predicted probability")
    axes.set_ylabel("observed rate")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.legend(loc="upper left", fontsize="small")
    axes.set_title(f"{comparison.task}: calibration on the same {comparison.rows} held-out rows")
    figure.tight_layout()
    return figure
