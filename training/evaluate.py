"""Honest evaluation of a task: the model, simple baselines and (for a simulated panel) the oracle, all
scored on the same held-out rows (see `training.train` for the splits).

Baselines, each trained only on the split's training rows:
- `logistic_regression`: median-imputed, standardised, L2 logistic regression on the model's features.
- `alkire_foster` (poverty): the Alkire-Foster weighted deprivation share over the four non-income
  guarantees (policy weights), Platt-mapped to a probability on the training rows. The income guarantee
  (`deprived_food_clothing`) is left out because it restates the label's income test (with it the
  baseline is the label itself).
- `income_distance` (relapse): the naive rule "the closer this round's income is to the poverty line,
  the likelier a fall": minus `income_to_line_ratio`, Platt-mapped likewise.
Relapse is evaluated round to round only, on every split: train on rounds <= t, test on round t + 1, for
each t the survey allows; the headline metrics are the mean over those splits, and each split is reported.
Oracle (relapse, when `survey.truth` holds `p_poor_next`): the simulator's true probability of being
poor next round. For a simulated panel the relapse model, baselines and oracle are all scored against
the *true* next-round status (truth column `poor` of round t+1) rather than the noisy survey label;
`outcome` in the result says which was used. The poverty task is always scored against survey labels
and has no oracle (the truth's probabilities look one round ahead, not at the current status).
The model is whichever candidate (LightGBM, logistic regression on the same indicators, or their blend)
wins inside each training fold (`training.candidates`). On a panel the poverty task is also split in time
(`temporal`: train on every earlier round's households, test on the latest round's).
Several seeds: each metric is the mean over seeds with its standard deviation as `<metric>_std`.
Undefined metrics are None (valid JSON).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from features.policy import Policy
from models.calibration import PlattCalibrator
from models.spec import LightGBMSpec, load_spec
from survey.io import Survey, survey_hash
from training.baselines import baseline_columns, baseline_frame, fit_predict_baseline
from training.cross_validation import (
    LINEAR,
    MODEL,
    cross_validate_once,
    extra_baseline_columns,
    slice_metrics,
    slice_values,
    task_levels,
)
from training.metrics import binary_metrics, reliability_table
from training.settings import TrainingSettings, load_training_settings
from training.train import (
    HELD_OUT_RISK,
    LABEL,
    Task,
    TaskData,
    candidate_specs,
    held_out_predictions,
    round_to_round_positions,
    task_data,
)

SLICE_COLUMN = "registered_poor"
NON_INCOME_GUARANTEES = ("compulsory_education", "basic_medical", "safe_housing", "safe_water")


def non_income_deprivation_score(features: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Weighted share of failed non-income guarantees (weights renormalised to sum to 1; NaN -> 0)."""
    weights = np.array([policy.deprivation_weights[name] for name in NON_INCOME_GUARANTEES])
    columns = [f"deprived_{name}" for name in NON_INCOME_GUARANTEES]
    deprived = np.nan_to_num(features[columns].to_numpy(dtype=np.float64), nan=0.0)
    return deprived @ (weights / weights.sum())


def rule_scores(data: TaskData, policy: Policy) -> tuple[str, np.ndarray]:
    """The task's one-rule baseline: its name and its score (higher = riskier) for every row."""
    if data.task == "poverty":
        return "alkire_foster", non_income_deprivation_score(data.features, policy)
    return "income_distance", -data.features["income_to_line_ratio"].to_numpy(dtype=np.float64)


def logistic_regression_risk(data: TaskData, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Probabilities on `test` rows from a regularised logistic regression fitted on `train` rows."""
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=2000),
    )
    model.fit(data.X.iloc[train].to_numpy(), data.y[train])
    return model.predict_proba(data.X.iloc[test].to_numpy())[:, 1]


def rule_risk(data: TaskData, raw_score: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """A rule's score (missing -> training median) Platt-mapped to a probability on the training rows."""
    score = raw_score
    fill = np.nanmedian(score[train]) if np.isfinite(score[train]).any() else 0.0
    score = np.where(np.isnan(score), fill, score)
    calibrator = PlattCalibrator().fit(score[train], data.y[train])
    return calibrator.transform(score[test])


def relapse_baseline_risks(
    data: TaskData, policy: Policy, train: np.ndarray, test: np.ndarray
) -> dict[str, np.ndarray]:
    """Each relapse baseline's probability for the `test` rows, fitted on the `train` rows only."""
    rule_name, score = rule_scores(data, policy)
    return {
        "logistic_regression": logistic_regression_risk(data, train, test),
        rule_name: rule_risk(data, score, train, test),
    }


def true_outcome_and_oracle(survey: Survey, held_out: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """For relapse rows (household, t): the true status in t+1 and the true p_poor_next at t."""
    truth = survey.truth
    if truth is None or not {"poor", "p_poor_next"} <= set(truth.columns):
        return None
    indexed = truth.set_index(["household_id", "round"])
    households = held_out.index.get_level_values("household_id")
    rounds = held_out.index.get_level_values("round").to_numpy(dtype=int)
    next_index = pd.MultiIndex.from_arrays([households, rounds + 1], names=["household_id", "round"])
    outcome = indexed["poor"].reindex(next_index).to_numpy(dtype=np.float64)
    oracle = indexed["p_poor_next"].reindex(held_out.index).to_numpy(dtype=np.float64)
    return outcome, oracle


def evaluate_split(
    survey: Survey,
    data: TaskData,
    policy: Policy,
    specs: Sequence[LightGBMSpec],
    seed: int,
    settings: TrainingSettings,
    split: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """One round-to-round split (train on rounds <= t, test on t + 1): the model, the baselines and,
    for a simulated panel, the oracle, all scored on the test round's rows."""
    train, test = split
    held_out, _ = held_out_predictions(data, specs, seed, settings, split)
    outcome, outcome_source = held_out[LABEL].to_numpy(), "survey"
    scores = {"model": held_out[HELD_OUT_RISK].to_numpy()}
    scores |= {
        f"baseline:{name}": risk for name, risk in relapse_baseline_risks(data, policy, train, test).items()
    }
    truth = true_outcome_and_oracle(survey, held_out)
    keep = np.ones(len(outcome), dtype=bool)
    if truth is not None:
        true_next, oracle = truth
        keep = ~np.isnan(true_next) & ~np.isnan(oracle)
        outcome, outcome_source = true_next, "truth"
        scores["oracle"] = oracle
    coverage = policy.flag_coverage
    result: dict[str, Any] = {
        "train_rounds": sorted({int(r) for r in data.rounds[train]}),
        "test_round": int(data.rounds[test[0]]),
        "outcome": outcome_source,
        "n_test": int(keep.sum()),
        "baselines": {},
    }
    for name, risk in scores.items():
        metrics = binary_metrics(outcome[keep], np.clip(risk[keep], 0.0, 1.0), coverage)
        if name.startswith("baseline:"):
            result["baselines"][name.removeprefix("baseline:")] = metrics
        else:
            result[name] = metrics
    slice_values = data.features[SLICE_COLUMN].to_numpy()[test]
    result["slices"] = {
        f"{SLICE_COLUMN}={value:g}": binary_metrics(
            outcome[keep & (slice_values == value)], scores["model"][keep & (slice_values == value)], coverage
        )
        | {"n": int((keep & (slice_values == value)).sum())}
        for value in (0.0, 1.0)
    }
    return result


def _mean_with_std(runs: Sequence[dict[str, float]]) -> dict[str, float | None]:
    """Mean of each metric over runs, with `<metric>_std` (population std) beside it; NaN -> None."""
    combined: dict[str, float | None] = {}
    for key in runs[0]:
        values = np.array([run[key] for run in runs], dtype=np.float64)
        finite = values[~np.isnan(values)]
        mean = float(finite.mean()) if len(finite) else math.nan
        std = float(finite.std()) if len(finite) else math.nan
        combined[key] = None if math.isnan(mean) else mean
        if key != "n":
            combined[f"{key}_std"] = None if math.isnan(std) else std
    return combined


def _mean_over_folds(folds: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over folds (NaN-skipping; NaN when undefined in every fold)."""
    mean: dict[str, float] = {}
    for key in folds[0]:
        values = np.array([fold[key] for fold in folds], dtype=np.float64)
        mean[key] = float(np.nanmean(values)) if (~np.isnan(values)).any() else math.nan
    return mean


@dataclass(frozen=True)
class Evaluation:
    """The report plus what MLflow logs beside it: per (name, seed, fold) metrics and the model's
    fold choices, and the pooled held-out labels and probabilities for the reliability plot."""

    report: dict[str, Any]
    fold_runs: list[dict[str, Any]] = field(default_factory=list)
    held_out_y: np.ndarray = field(default_factory=lambda: np.empty(0))
    held_out_p: np.ndarray = field(default_factory=lambda: np.empty(0))


def evaluate_poverty(
    survey: Survey,
    data: TaskData,
    policy: Policy,
    seeds: Sequence[int],
    spec: LightGBMSpec,
    settings: TrainingSettings,
) -> Evaluation:
    """Poverty task: nested cross-validation of the model and the fitted baselines
    (`training.cross_validation`); each metric is the mean over folds, then mean and std over seeds."""
    levels = task_levels(survey.households, data)
    slices = slice_values(survey.households, data)
    per_seed: dict[str, list[dict[str, float]]] = {}
    slice_runs: list[dict[str, dict[str, float]]] = []
    fold_runs: list[dict[str, Any]] = []
    ys, ps = [], []
    columns: dict[str, list[str]] = {}
    for seed in seeds:
        result = cross_validate_once(data, survey.households, policy, spec, settings, seed)
        columns = result.baseline_columns
        for name, folds in result.fold_metrics.items():
            per_seed.setdefault(name, []).append(_mean_over_folds(folds))
            for fold, metrics in enumerate(folds):
                params = result.fold_params[fold] if name == MODEL else {"columns": ",".join(columns[name])}
                fold_runs.append(
                    {"name": name, "seed": int(seed), "fold": fold, "metrics": metrics, "params": params}
                )
        slice_runs.append(slice_metrics(result, data, levels, slices, policy.flag_coverage))
        ys.append(data.y)
        ps.append(result.p_poor[MODEL])
    report: dict[str, Any] = {
        "task": "poverty",
        "model": _mean_with_std(per_seed[MODEL]),
        "baselines": {name: _mean_with_std(runs) for name, runs in per_seed.items() if name != MODEL},
        "baseline_columns": columns,
        "slices": {
            name: _mean_with_std([run[name] for run in slice_runs if name in run]) for name in slice_runs[0]
        },
        "n_test": len(data.y),
        "outcome": "survey",
        "levels": list(levels.values) if levels is not None else None,
        "seeds": [int(seed) for seed in seeds],
        "policy_version": policy.version,
        "tuning": {"enabled": settings.tuning.enabled, "n_trials": settings.tuning.n_trials},
    }
    held_out_y, held_out_p = np.concatenate(ys), np.clip(np.concatenate(ps), 0.0, 1.0)
    report["reliability"] = reliability_table(held_out_y, held_out_p)
    return Evaluation(report, fold_runs, held_out_y, held_out_p)


def temporal_poverty(
    survey: Survey,
    policy: Policy,
    seeds: Sequence[int],
    specs: Sequence[LightGBMSpec],
    settings: TrainingSettings,
) -> dict[str, Any] | None:
    """The poverty task on a panel, split in time: the model (candidates chosen on the training rows, as
    `povrisk train` does) and the fitted baselines trained on every earlier round's households, scored on
    the latest round's. None for a survey of one round. Metrics: mean and std over seeds."""
    data = task_data(survey, "poverty", policy, every_round=True)
    rounds = data.rounds
    latest = int(rounds.max())
    train, test = np.flatnonzero(rounds < latest), np.flatnonzero(rounds == latest)
    if len(train) == 0 or len(np.unique(data.y[train])) < 2:
        return None
    frame = baseline_frame(data.features, policy, extra_baseline_columns(survey.households, data))
    columns = baseline_columns(frame, settings.baselines) | {LINEAR: list(data.feature_names)}
    coverage = policy.flag_coverage
    model_runs: list[dict[str, float]] = []
    for seed in seeds:
        held_out, _ = held_out_predictions(data, specs, seed, settings, (train, test))
        model_runs.append(binary_metrics(data.y[test], held_out[HELD_OUT_RISK].to_numpy(), coverage))
    baselines = {}
    for name, chosen in columns.items():
        risk, _ = fit_predict_baseline(frame, chosen, data.y, None, train, test)
        baselines[name] = _mean_with_std([binary_metrics(data.y[test], risk, coverage)])
    return {
        "train_rounds": sorted({int(r) for r in rounds[train]}),
        "test_round": latest,
        "n_train": len(train),
        "n_test": len(test),
        "outcome": "survey",
        "model": _mean_with_std(model_runs),
        "baselines": baselines,
    }


def evaluate_relapse(
    survey: Survey,
    data: TaskData,
    policy: Policy,
    seeds: Sequence[int],
    specs: Sequence[LightGBMSpec],
    settings: TrainingSettings,
) -> Evaluation:
    """Relapse task: every round-to-round split (train on rounds <= t, test on t + 1, for each t).

    `splits` reports each split (mean and std over seeds); the headline `model`, `baselines`, `oracle`
    and `slices` are the mean over splits (a rolling-origin evaluation), then mean and std over seeds.
    With an oracle, `vs_oracle` sets the model against it and against the naive baseline.
    """
    positions = round_to_round_positions(data)
    runs = [
        [evaluate_split(survey, data, policy, specs, seed, settings, split) for split in positions]
        for seed in seeds
    ]
    first = runs[0]
    report: dict[str, Any] = {
        "task": "relapse",
        **{name: _headline(runs, (name,)) for name in ("model", "oracle") if name in first[0]},
        "baselines": {
            baseline: _headline(runs, ("baselines", baseline)) for baseline in first[0]["baselines"]
        },
        "slices": {
            name: _headline(runs, ("slices", name))
            | {"n": sum(split_run["slices"][name]["n"] for split_run in first)}
            for name in first[0]["slices"]
        },
        "splits": [_split_report(j, runs) for j in range(len(positions))],
        "n_test": sum(split_run["n_test"] for split_run in first),
        "outcome": first[0]["outcome"],
        "seeds": [int(seed) for seed in seeds],
        "policy_version": policy.version,
        "verification_labels": data.verification_labels,
    }
    if "oracle" in report:
        report["vs_oracle"] = versus_oracle(report)
        for split in report["splits"]:
            split["vs_oracle"] = versus_oracle(split)
    fold_runs = [
        {"name": name, "seed": int(seed), "fold": fold, "metrics": metrics, "params": {}}
        for seed, seed_runs in zip(seeds, runs, strict=True)
        for fold, split_run in enumerate(seed_runs)
        for name, metrics in [("model", split_run["model"]), *split_run["baselines"].items()]
    ]
    return Evaluation(report, fold_runs)


def _headline(runs: list[list[dict[str, Any]]], path: tuple[str, ...]) -> dict[str, float | None]:
    """The metrics at `path` of each split's result (e.g. ("baselines", "income_distance")), averaged
    over each seed's splits, then mean and std over seeds."""

    def metrics_at(split_run: dict[str, Any]) -> dict[str, float]:
        found: Any = split_run
        for key in path:
            found = found[key]
        return dict(found)

    return _mean_with_std([_mean_over_folds([metrics_at(run) for run in seed_runs]) for seed_runs in runs])


def _split_report(j: int, runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Split `j` of every seed's runs: its rounds, and each scorer's metrics (mean and std over seeds)."""
    at_j = [seed_runs[j] for seed_runs in runs]
    first = at_j[0]
    report: dict[str, Any] = {
        "train_rounds": first["train_rounds"],
        "test_round": first["test_round"],
        "n_test": first["n_test"],
        "model": _mean_with_std([run["model"] for run in at_j]),
        "baselines": {
            name: _mean_with_std([run["baselines"][name] for run in at_j]) for name in first["baselines"]
        },
    }
    if "oracle" in first:
        report["oracle"] = _mean_with_std([run["oracle"] for run in at_j])
    return report


NAIVE_BASELINE = "income_distance"


def versus_oracle(report: dict[str, Any]) -> dict[str, float | None]:
    """The model against the oracle: the ROC-AUC and PR-AUC it falls short by, and the share of the
    naive baseline's ROC-AUC gap to the oracle that it closes ((model - naive) / (oracle - naive))."""
    model, oracle, naive = report["model"], report["oracle"], report["baselines"].get(NAIVE_BASELINE, {})

    def difference(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else float(a - b)

    gap_to_naive = difference(oracle.get("roc_auc"), naive.get("roc_auc"))
    closed = difference(model.get("roc_auc"), naive.get("roc_auc"))
    return {
        "roc_auc_gap": difference(oracle.get("roc_auc"), model.get("roc_auc")),
        "pr_auc_gap": difference(oracle.get("pr_auc"), model.get("pr_auc")),
        "roc_auc_gap_closed": None if not gap_to_naive or closed is None else closed / gap_to_naive,
    }


def evaluate_task(
    survey: Survey,
    task: Task,
    policy: Policy,
    seeds: Sequence[int] = (0,),
    spec: LightGBMSpec | None = None,
    settings: TrainingSettings | None = None,
    track: bool | None = None,
) -> dict[str, Any]:
    """DESIGN.md's evaluation JSON: task, model, baselines, slices, (oracle), n_test, seeds, outcome.

    With `track` (default: `settings.track_evaluations`) the evaluation is logged to MLflow
    (`training.tracking.log_evaluation`) and the parent run's id is added as `mlflow_run_id`.
    """
    if not seeds:
        raise ValueError("evaluate_task needs at least one seed")
    settings = settings or load_training_settings()
    data = task_data(survey, task, policy)
    if task == "poverty":
        evaluation = evaluate_poverty(survey, data, policy, seeds, spec or load_spec(), settings)
        temporal = temporal_poverty(survey, policy, seeds, candidate_specs(spec, settings), settings)
        if temporal is not None:
            evaluation.report["temporal"] = temporal
    else:
        evaluation = evaluate_relapse(survey, data, policy, seeds, candidate_specs(spec, settings), settings)
    report = evaluation.report
    if settings.track_evaluations if track is None else track:
        from training.tracking import log_evaluation

        report["mlflow_run_id"] = log_evaluation(evaluation, survey_hash(survey), settings)
    return report
