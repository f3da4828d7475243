"""The poverty task's honest evaluation on one round: outer K-fold cross-validation stratified on the
label (the poverty level where the survey has one, else poor/not) and grouped by household; the model
(`training.fold_model`, tuned and selected inside each training fold) and every baseline
(`training.baselines`, plus `logistic_regression` on the model's own features) fitted on each training
fold and scored on its evaluation fold.

Per fold metrics: `training.metrics.binary_metrics` of P(poor) at the coverage of the policy (null = the
fold's true poor share) and, where levels exist, `macro_f1` over the K levels (the two-class macro-F1 of
the flagging is then reported as `macro_f1_poor_vs_not`). Slices are scored on the pooled out-of-fold
predictions of a seed (a region has too few households per fold).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.policy import Policy
from models.spec import LightGBMSpec
from training.baselines import BASELINE_NAMES, baseline_columns, baseline_frame, fit_predict_baseline
from training.fold_model import fit_binary_fold, fit_levels_fold
from training.metrics import binary_metrics, multiclass_macro_f1
from training.settings import TrainingSettings
from training.splits import grouped_kfold
from training.train import TaskData

MODEL = "model"
LINEAR = "logistic_regression"
LEVEL_COLUMN = "label_level"
SLICE_COLUMNS = ("area", "region", "head_sex")
REGISTER_SLICE = "registered_poor"


@dataclass(frozen=True)
class Levels:
    """Poverty levels of the task's rows coded 0..K-1 (`codes`), the original values (`values`) and which
    codes are the poor ones."""

    codes: np.ndarray
    values: tuple[float, ...]
    poor_classes: tuple[int, ...]

    @property
    def num_class(self) -> int:
        return len(self.values)


def household_column(households: pd.DataFrame, index: pd.Index, column: str) -> np.ndarray | None:
    """`households[column]` aligned to the (household_id, round) `index`, or None when absent."""
    if column not in households.columns:
        return None
    keyed = households.set_index(["household_id", "round"])[column]
    keyed.index = pd.MultiIndex.from_arrays(
        [keyed.index.get_level_values(0), keyed.index.get_level_values(1).astype(np.int64)],
        names=["household_id", "round"],
    )
    return keyed.reindex(index).to_numpy()


def task_levels(households: pd.DataFrame, data: TaskData) -> Levels | None:
    """The rows' `label_level` coded 0..K-1, or None when the survey has none (or any row lacks one)."""
    raw = household_column(households, data.features.index, LEVEL_COLUMN)
    if raw is None:
        return None
    values = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError(f"{LEVEL_COLUMN} is missing for {int(np.isnan(values).sum())} labelled households")
    ordered, codes = np.unique(values, return_inverse=True)
    poor = tuple(int(code) for code in np.unique(codes[data.y == 1.0]))
    if set(np.unique(codes[data.y == 0.0])) & set(poor):
        raise ValueError(f"{LEVEL_COLUMN} disagrees with label_poor: a level holds poor and non-poor rows")
    return Levels(codes.astype(np.int64), tuple(float(v) for v in ordered), poor)


def slice_values(households: pd.DataFrame, data: TaskData) -> dict[str, np.ndarray]:
    """Columns to slice by: region/area/head's sex where the survey has them, and the register."""
    slices: dict[str, np.ndarray] = {}
    for column in SLICE_COLUMNS:
        values = household_column(households, data.features.index, column)
        if values is not None and pd.notna(values).any():
            slices[column] = np.asarray(values, dtype=object)
    if REGISTER_SLICE in data.features.columns and data.features[REGISTER_SLICE].notna().any():
        slices[REGISTER_SLICE] = data.features[REGISTER_SLICE].to_numpy(dtype=object)
    return slices


def extra_baseline_columns(households: pd.DataFrame, data: TaskData) -> dict[str, np.ndarray]:
    """`rural` (1.0 rural, 0.0 urban) from the households' `area` column, when present."""
    area = household_column(households, data.features.index, "area")
    if area is None:
        return {}
    text = pd.Series(area, dtype=object)
    return {"rural": np.where(text.isna(), np.nan, (text == "rural").astype(np.float64))}


def fold_metrics(
    y: np.ndarray,
    p: np.ndarray,
    levels_true: np.ndarray | None,
    levels_pred: np.ndarray | None,
    coverage: float | None,
    num_class: int,
) -> dict[str, float]:
    """binary_metrics, with the K-level macro-F1 as `macro_f1` where levels exist (module docstring)."""
    metrics = binary_metrics(y, np.clip(p, 0.0, 1.0), coverage)
    if levels_true is not None and levels_pred is not None:
        metrics["macro_f1_poor_vs_not"] = metrics.pop("macro_f1")
        metrics["macro_f1"] = multiclass_macro_f1(levels_true, levels_pred, np.arange(num_class))
    return metrics


@dataclass
class SeedResult:
    """One seed: per (name, fold) metrics and params, and the pooled out-of-fold predictions."""

    fold_metrics: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    fold_params: list[dict[str, Any]] = field(default_factory=list)
    p_poor: dict[str, np.ndarray] = field(default_factory=dict)
    level: dict[str, np.ndarray] = field(default_factory=dict)
    baseline_columns: dict[str, list[str]] = field(default_factory=dict)


def cross_validate_once(
    data: TaskData,
    households: pd.DataFrame,
    policy: Policy,
    spec: LightGBMSpec,
    settings: TrainingSettings,
    seed: int,
) -> SeedResult:
    """One seed's outer cross-validation of the model and every baseline (module docstring)."""
    levels = task_levels(households, data)
    y, groups, X = data.y, data.groups, data.X
    frame = baseline_frame(data.features, policy, extra_baseline_columns(households, data))
    columns = baseline_columns(frame, settings.baselines) | {LINEAR: list(data.feature_names)}
    names = (MODEL, *BASELINE_NAMES, LINEAR)
    stratify = levels.codes if levels is not None else y
    result = SeedResult(baseline_columns=columns)
    result.p_poor = {name: np.full(len(y), np.nan) for name in names}
    result.level = {name: np.full(len(y), -1, dtype=np.int64) for name in names}
    result.fold_metrics = {name: [] for name in names}
    tuning = settings.tuning
    for fold, (train, test) in enumerate(grouped_kfold(groups, stratify, settings.cv_folds, seed)):
        if levels is None:
            prediction = fit_binary_fold(
                X.iloc[train], y[train], groups[train], X.iloc[test], spec, seed, tuning, settings.candidates
            )
        else:
            prediction = fit_levels_fold(
                X.iloc[train],
                y[train],
                levels.codes[train],
                groups[train],
                X.iloc[test],
                spec,
                seed,
                tuning,
                levels.num_class,
                levels.poor_classes,
                settings.candidates,
            )
        outputs = {MODEL: (prediction.p_poor, prediction.level)}
        for name in (*BASELINE_NAMES, LINEAR):
            outputs[name] = fit_predict_baseline(
                frame, columns[name], y, None if levels is None else levels.codes, train, test
            )
        for name, (p_poor, level) in outputs.items():
            result.p_poor[name][test] = p_poor
            if level is not None:
                result.level[name][test] = level
            result.fold_metrics[name].append(
                fold_metrics(
                    y[test],
                    p_poor,
                    None if levels is None else levels.codes[test],
                    level,
                    policy.flag_coverage,
                    0 if levels is None else levels.num_class,
                )
            )
        result.fold_params.append(
            {"fold": fold, "seed": seed, "n_train": len(train), "n_test": len(test)} | prediction.params
        )
    return result


def slice_metrics(
    result: SeedResult,
    data: TaskData,
    levels: Levels | None,
    slices: dict[str, np.ndarray],
    coverage: float | None,
) -> dict[str, dict[str, float]]:
    """The model's metrics on the pooled out-of-fold rows of each slice value, with `n` rows."""
    report: dict[str, dict[str, float]] = {}
    for column, values in slices.items():
        for value in pd.unique(pd.Series(values).dropna()):
            inside = np.asarray(pd.Series(values) == value)
            label = f"{value:g}" if isinstance(value, float) else str(value)
            report[f"{column}={label}"] = fold_metrics(
                data.y[inside],
                result.p_poor[MODEL][inside],
                None if levels is None else levels.codes[inside],
                None if levels is None else result.level[MODEL][inside],
                coverage,
                0 if levels is None else levels.num_class,
            ) | {"n": int(inside.sum())}
    return report
