"""Train one task's model with an honest held-out evaluation.

Tasks (rows and labels):
- `poverty` (identification): rows = households in the latest round with a known status; label
  `poor_now`; features exclude every indicator whose lineage reaches a raw column of the policy's
  `tasks.poverty.exclude_inputs` (`Policy.excluded_features`, features/lineage.py). Held out: grouped
  5-fold cross-validation within those rows (each household scored by a model that never saw it).
- `relapse`: rows = households non-poor at round t whose round t+1 is known; label `relapse_next`; all
  indicators. Held out: train on rows of rounds < T, test on round T, the latest usable round (round
  to round). The final model is trained on all usable rows.

Field decisions (household_id, round, category, decision verified/rejected; read from the flag store by
the command line) give poverty outcomes where a field visit verified or rejected a `poor`-category flag
(`features.labels.field_poverty_outcomes`; decisions on watched categories are counted, not used).
They replace the poverty status of the household-rounds they are about before a task's labels are
made: for `poverty` the latest round's status, for `relapse` the status of every round, from which
`relapse_next` is derived (a visit that found the household poor in round t+1 is the relapse outcome
of round t, since the relapse label is nothing but the next round's poverty status). They change labels
only, never features (no column says a household was flagged or visited), and add no rows. They are the
labels of held-out rows too: a label a field visit has shown to be wrong would make the held-out
metrics measure agreement with the income rule's mistakes. Flags exist only where an earlier model or
rule raised one, so field outcomes correct false alarms and confirm hits but never find the poor
households nobody flagged: read the counts (`TaskData.field_labels`) with that in mind.

A survey's `verification` table (a random sample of households whose status a field visit established)
corrects the labels the same way, after the field decisions. Because the sample is random, it can also
calibrate: for the tasks listed in `verified_calibration` (relapse), the calibrator is fitted on the
verified rows' out-of-fold margins (`calibration_rows`), so the risk states the chance of a true fall
rather than of a fall as the noisy survey reports it; the booster still learns from every row.

The model, its complexity and its calibration are chosen inside the training rows: for each complexity
candidate (`training/settings.yaml`) grouped k-fold out-of-fold margins of the booster, on the same folds
those of an L2 logistic regression on the same indicators, and blends of the two (`training.candidates`),
each calibrated by a Platt and an isotonic calibrator; the (candidate, blend, calibrator) of lowest
cross-fitted Brier score (each fold calibrated by a calibrator fitted on the other folds' margins) is
kept, its models refitted on all rows and the calibrator on all out-of-fold margins (or the verified
ones). `TaskModel.candidate_brier` keeps every candidate's score: which model was kept, and why. An
explicit `spec` skips the complexity choice, not the candidates. Held-out metrics are against the survey's
labels (field-corrected); with a verification sample, the same metrics on the verified rows alone carry
the prefix `verified_` (a calibration measured against noisy survey labels and one against verified
outcomes are different numbers, and both are named). `povrisk evaluate` scores the relapse model on every
round-to-round split and the poverty model also on a temporal split (`training.evaluate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.frame import build_features, task_feature_names
from features.labels import (
    correct_with_field_outcomes,
    field_poverty_outcomes,
    poor_now,
    relapse_next,
    survey_label,
    verified_poverty_outcomes,
)
from features.policy import Policy
from models.calibration import Calibrator, new_calibrator
from models.fit import fit_booster
from models.linear import LinearModel, fit_linear
from models.predictor import TaskModel
from models.spec import LightGBMSpec, load_spec
from survey.io import Survey, survey_hash
from training.candidates import (
    CandidateChoice,
    blended,
    candidate_label,
    choice_summary,
    choose_candidate,
    cross_fitted_probabilities,
    linear_out_of_fold,
)
from training.metrics import binary_metrics, expected_calibration_error, reliability_table
from training.settings import TrainingSettings, load_training_settings
from training.splits import grouped_kfold, round_to_round_splits

Task = Literal["poverty", "relapse"]
TASKS: tuple[Task, ...] = ("poverty", "relapse")
LABEL = "label"
HELD_OUT_RISK = "held_out_risk"
OUTCOME_VERIFIED = "outcome_verified"
"""Held-out column (present when the survey has a verification sample): the row's outcome was
established by a field verification visit, not only reported by the survey."""
SURVEY_LABELS = "survey labels"
VERIFIED_LABELS = "field-verified sample"
VERIFIED_METRIC_PREFIX = "verified_"
"""Held-out metrics against the field-verified outcomes alone carry this prefix (e.g. `verified_ece`);
the unprefixed ones are against the survey's labels (field-corrected where a visit found otherwise)."""


@dataclass(frozen=True)
class TaskData:
    """A task's rows: all indicators (`features`), the model's columns (`feature_names`), 0/1 `label`;
    `field_labels`: what field outcomes did to the poverty status behind the labels (None: none given);
    `verified`: per row, whether a verification visit established the label's outcome (the round for
    `poverty`, the next round for `relapse`; None: the survey has no verification table), and
    `verification_labels` what those findings did to the labels."""

    task: Task
    features: pd.DataFrame
    label: pd.Series
    feature_names: tuple[str, ...]
    field_labels: dict[str, int] | None = None
    verified: np.ndarray | None = None
    verification_labels: dict[str, int] | None = None

    @property
    def X(self) -> pd.DataFrame:
        return self.features[list(self.feature_names)]

    @property
    def y(self) -> np.ndarray:
        return self.label.to_numpy(dtype=np.float64)

    @property
    def groups(self) -> np.ndarray:
        return self.features.index.get_level_values("household_id").to_numpy()

    @property
    def rounds(self) -> np.ndarray:
        return self.features.index.get_level_values("round").to_numpy(dtype=int)


def task_data(
    survey: Survey,
    task: Task,
    policy: Policy,
    field_decisions: pd.DataFrame | None = None,
    every_round: bool = False,
    both_classes: bool = True,
) -> TaskData:
    """Rows, labels and feature columns of `task` for a survey (see the module docstring).

    `field_decisions` (household_id, round, category, decision), when given, replace the poverty status
    of the household-rounds the task's labels come from; the counts are kept in `TaskData.field_labels`:
    `decisions` given, `not_about_poverty` (watched categories), and of the rest `confirmed`,
    `flipped_to_poor`, `flipped_to_not_poor`, `filled` (label was unknown), `unmatched` (no such
    household-round among the task's rows, e.g. an earlier round for `poverty`) and `used`.
    `every_round` keeps the `poverty` rows of every round, not only the latest (the temporal split of
    `training.evaluate`). A model needs rows of both classes (`ValueError` otherwise); a part of a
    province (`training.province`) need not have them (`both_classes=False`).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    features = build_features(survey.households, survey.members, policy)
    poor = poor_now(features, policy, survey_label(survey.households))
    if task == "poverty" and not every_round:
        rounds = features.index.get_level_values("round")
        poor = poor[rounds == rounds.max()]
    field_labels: dict[str, int] | None = None
    if field_decisions is not None:
        outcomes = field_poverty_outcomes(field_decisions)
        correction = correct_with_field_outcomes(poor, outcomes)
        poor = correction.labels
        field_labels = {
            "decisions": len(field_decisions),
            "not_about_poverty": len(field_decisions) - len(outcomes),
            **correction.counts(),
        }
    verified_keys: pd.MultiIndex | None = None
    verification_labels: dict[str, int] | None = None
    if survey.verification is not None:
        findings = verified_poverty_outcomes(survey.verification)
        correction = correct_with_field_outcomes(poor, findings)
        poor = correction.labels
        verification_labels = {"findings": len(findings), **correction.counts()}
        verified_keys = pd.MultiIndex.from_arrays([findings["household_id"], findings["round"]])
    label = (poor if task == "poverty" else relapse_next(poor)).dropna()
    if both_classes and label.nunique() < 2:
        raise ValueError(f"{task}: the labelled rows hold a single class ({len(label)} rows); cannot train")
    return TaskData(
        task,
        features.loc[label.index],
        label.astype(np.float64),
        task_feature_names(policy, task),
        field_labels,
        None if verified_keys is None else _outcome_verified(label.index, verified_keys, task),
        verification_labels,
    )


def _outcome_verified(index: pd.Index, verified_keys: pd.MultiIndex, task: Task) -> np.ndarray:
    """Per label row, whether its outcome's household-round (the same round for `poverty`, the next for
    `relapse`) was verified in the field."""
    offset = 0 if task == "poverty" else 1
    outcome_keys = pd.MultiIndex.from_arrays(
        [index.get_level_values("household_id"), index.get_level_values("round").to_numpy(dtype=int) + offset]
    )
    return np.asarray(outcome_keys.isin(verified_keys), dtype=bool)


def calibration_rows(data: TaskData, positions: np.ndarray, settings: TrainingSettings) -> np.ndarray | None:
    """Which of the rows at `positions` the calibrator is fitted on: the verified ones when the task
    calibrates on verified outcomes (`settings.verified_calibration`) and they hold enough rows of each
    class; None (all rows) otherwise."""
    rule = settings.verified_calibration
    if data.verified is None or data.task not in rule.tasks:
        return None
    verified = data.verified[positions]
    labels = data.y[positions][verified]
    if min((labels == 1).sum(), (labels == 0).sum()) < rule.min_per_class:
        return None
    return verified


def round_to_round_positions(data: TaskData) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every round-to-round split of the labelled rows as (train positions, test positions): train on
    rows of rounds <= t, test on the rows of round t + 1, for each t (`training.splits`)."""
    splits = round_to_round_splits(data.rounds)
    if not splits:
        raise ValueError(f"{data.task} needs labelled rows in at least two rounds (a survey of 3+ rounds)")
    return [
        (np.flatnonzero(np.isin(data.rounds, train_rounds)), np.flatnonzero(data.rounds == test_round))
        for train_rounds, test_round in splits
    ]


def evaluation_splits(data: TaskData, seed: int, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Held-out splits (positions): grouped k-fold for `poverty`, the last round-to-round split for
    `relapse` (train on rounds before the latest usable round, test on it: the split closest to how the
    model will be used)."""
    if data.task == "poverty":
        return grouped_kfold(data.groups, data.y, folds, seed)
    return [round_to_round_positions(data)[-1]]


@dataclass(frozen=True)
class CalibratedFit:
    """The chosen candidate fitted on all given rows (a booster, and the logistic regression when the
    choice gives it weight) plus the calibrator fitted on the candidate's out-of-fold margins."""

    booster: lgb.Booster
    calibrator: Calibrator
    oof_margin: np.ndarray
    fold: np.ndarray
    calibrator_brier: dict[str, float]
    spec: LightGBMSpec
    calibrated_on: int = 0
    """Rows the calibrator was fitted on (all out-of-fold rows unless `calibrate_on` chose fewer)."""
    linear: LinearModel | None = None
    blend_weight: float = 0.0
    candidate_brier: dict[str, float] = field(default_factory=dict)
    """The best cross-fitted Brier of every candidate tried (`training.candidates.candidate_label`)."""

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        """The fitted candidate's log-odds for the rows of `X`."""
        linear = self.linear.margin_of(X.to_numpy(dtype=np.float64)) if self.linear is not None else None
        if self.blend_weight == 1.0 and linear is not None:
            return linear
        return blended(raw_margin(self.booster, X), linear, self.blend_weight)


def raw_margin(booster: lgb.Booster, X: pd.DataFrame) -> np.ndarray:
    return np.asarray(booster.predict(X.to_numpy(dtype=np.float64), raw_score=True, num_threads=1))


def out_of_fold_margins(
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    spec: LightGBMSpec,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's margin from the fold model that did not see it, and the row's fold number."""
    margin = np.empty(len(y))
    fold = np.empty(len(y), dtype=int)
    for fold_id, (train, test) in enumerate(splits):
        booster = fit_booster(X.iloc[train], y[train], groups[train], spec, seed)
        margin[test] = raw_margin(booster, X.iloc[test])
        fold[test] = fold_id
    return margin, fold


def fit_calibrated(
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    specs: Sequence[LightGBMSpec],
    seed: int,
    folds: int,
    calibrate_on: np.ndarray | None = None,
    settings: TrainingSettings | None = None,
) -> CalibratedFit:
    """The candidate (booster spec, logistic blend weight) and calibrator of lowest cross-fitted
    out-of-fold Brier (`training.candidates`), fitted on all rows.

    `calibrate_on` (a boolean mask, e.g. the field-verified rows) restricts the calibrators' fitting and
    the Brier scores that choose among them to those rows; the models always learn from all rows.
    """
    if not specs:
        raise ValueError("fit_calibrated needs at least one spec")
    candidates = (settings or load_training_settings()).candidates
    splits = grouped_kfold(groups, y, folds, seed)
    scored = np.ones(len(y), dtype=bool) if calibrate_on is None else np.asarray(calibrate_on, dtype=bool)
    values = X.to_numpy(dtype=np.float64)
    names = tuple(str(c) for c in X.columns)
    linear_margin: np.ndarray | None = None
    best: tuple[CandidateChoice, LightGBMSpec, np.ndarray] | None = None
    candidate_brier: dict[str, float] = {}
    for spec in specs:
        tree_margin, fold = out_of_fold_margins(X, y, groups, splits, spec, seed)
        if linear_margin is None and any(weight > 0 for weight in candidates.blend_weights):
            linear_margin = linear_out_of_fold(values, y, fold, names, candidates.logistic_c, spec.monotone)
        choice = choose_candidate(tree_margin, linear_margin, y, fold, candidates.blend_weights, scored)
        for label, score in choice.candidate_brier.items():
            candidate_brier[label] = min(score, candidate_brier.get(label, np.inf))
        if best is None or choice.brier < best[0].brier:
            best = (choice, spec, fold)
    assert best is not None
    choice, spec, fold = best
    linear = fit_linear(values, y, names, candidates.logistic_c, spec.monotone) if choice.weight > 0 else None
    return CalibratedFit(
        booster=fit_booster(X, y, groups, spec, seed),
        calibrator=new_calibrator(choice.calibrator).fit(choice.margin[scored], y[scored]),
        oof_margin=choice.margin,
        fold=fold,
        calibrator_brier=choice.calibrator_brier,
        spec=spec,
        calibrated_on=int(scored.sum()),
        linear=linear,
        blend_weight=choice.weight,
        candidate_brier=candidate_brier,
    )


@dataclass(frozen=True)
class TrainedTask:
    """A trained task: the model, its held-out metrics, the held-out rows and the figures to log.

    `held_out` holds the model's feature columns, `label` and `held_out_risk` (the probability from a
    model that did not see the row), indexed (household_id, round).
    """

    model: TaskModel
    metrics: dict[str, float]
    held_out: pd.DataFrame
    figures: dict[str, Figure] = field(default_factory=dict)
    calibrator_brier: dict[str, float] = field(default_factory=dict)
    policy: Policy | None = None
    seed: int = 0
    field_labels: dict[str, int] | None = None
    verification_labels: dict[str, int] | None = None
    calibrated_on: int = 0
    calibrated_against: str = "survey"
    """Which labels the calibrator was fitted on: `survey` (all rows) or `verified` (the field-verified
    sample, `settings.verified_calibration`)."""

    @property
    def candidate_reason(self) -> str:
        """Which candidate was kept and why (`TaskModel.candidate_brier`), in one line."""
        return choice_summary(dict(self.model.candidate_brier), candidate_label(self.model.blend_weight))


def held_out_frame(data: TaskData, positions: np.ndarray, risk: np.ndarray) -> pd.DataFrame:
    frame = data.X.iloc[positions].copy()
    frame[LABEL] = data.y[positions]
    frame[HELD_OUT_RISK] = risk
    if data.verified is not None:
        frame[OUTCOME_VERIFIED] = data.verified[positions]
    return frame


def verified_metrics(held_out: pd.DataFrame, coverage: float | None, min_per_class: int) -> dict[str, float]:
    """Held-out metrics on the rows whose outcome a field visit verified, keys prefixed
    `VERIFIED_METRIC_PREFIX`; empty without `min_per_class` verified rows of each class."""
    if OUTCOME_VERIFIED not in held_out.columns:
        return {}
    rows = held_out[held_out[OUTCOME_VERIFIED].to_numpy(dtype=bool)]
    labels = rows[LABEL].to_numpy(dtype=np.float64)
    if min((labels == 1).sum(), (labels == 0).sum()) < min_per_class:
        return {}
    metrics = binary_metrics(labels, rows[HELD_OUT_RISK].to_numpy(dtype=np.float64), coverage)
    return {f"{VERIFIED_METRIC_PREFIX}{key}": value for key, value in metrics.items()} | {
        f"{VERIFIED_METRIC_PREFIX}n": float(len(rows))
    }


def held_out_predictions(
    data: TaskData,
    specs: Sequence[LightGBMSpec],
    seed: int,
    settings: TrainingSettings,
    split: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[pd.DataFrame, CalibratedFit | None]:
    """Held-out probabilities for the task's evaluation rows.

    For `poverty` without a `split` the cross-validation fit is also the final model's calibration fit
    and is returned for reuse; otherwise the second element is None, and `split` (train, test positions;
    default the latest round-to-round split) says which rows to train on and which to score.
    """
    X, y, groups, folds = data.X, data.y, data.groups, settings.cv_folds
    if data.task == "poverty" and split is None:
        everyone = np.arange(len(y))
        rows = calibration_rows(data, everyone, settings)
        fit = fit_calibrated(X, y, groups, specs, seed, folds, rows, settings)
        risk = cross_fitted_probabilities(fit.oof_margin, y, fit.fold, fit.calibrator.name, rows)
        return held_out_frame(data, everyone, risk), fit
    train, test = split if split is not None else evaluation_splits(data, seed, folds)[0]
    rows = calibration_rows(data, train, settings)
    past = fit_calibrated(X.iloc[train], y[train], groups[train], specs, seed, folds, rows, settings)
    risk = past.calibrator.transform(past.margin(X.iloc[test]))
    return held_out_frame(data, test, risk), None


def mean_abs_contribution(model: TaskModel, X: pd.DataFrame) -> pd.Series:
    """Mean |SHAP| (log-odds) of each feature of `model` over the rows of `X`, in the model's order
    (TreeSHAP for the booster, the exact linear contributions for the logistic part, blended alike)."""
    values = np.abs(model.contribution_values(model.feature_values(X))[:, :-1]).mean(axis=0)
    return pd.Series(values, index=list(model.feature_names))


def explanatory_weight(importance: pd.Series) -> dict[str, float]:
    """Each feature's share of the summed mean |SHAP| (`TaskModel.explanatory_weight`); empty when the
    model explains nothing (a constant booster)."""
    total = float(importance.sum())
    if not total > 0:
        return {}
    return {str(name): float(value) / total for name, value in importance.items()}


def blend_explanatory_weight(model: TaskModel, X: pd.DataFrame) -> dict[str, float]:
    """The model's reliance on each feature: for a blend, each member's `explanatory_weight` (its share
    of mean |contribution| over the rows of `X`) weighted by the member's weight in the margin, so that a
    quarter-weight logistic part, which spreads its contributions over many correlated indicators, counts
    for a quarter; for a single model, its own shares."""
    weight = model.blend_weight
    if weight in (0.0, 1.0) or model.linear is None:
        return explanatory_weight(mean_abs_contribution(model, X))
    values = model.feature_values(X)
    members = [
        (1.0 - weight, replace(model, blend_weight=0.0)),
        (weight, replace(model, blend_weight=1.0)),
    ]
    blended: dict[str, float] = {}
    for share, member in members:
        for name, value in explanatory_weight(
            pd.Series(
                np.abs(member.contribution_values(values)[:, :-1]).mean(axis=0),
                index=list(model.feature_names),
            )
        ).items():
            blended[name] = blended.get(name, 0.0) + share * value
    return blended


def mean_abs_contribution_figure(importance: pd.Series, rows: int, top: int = 20) -> Figure:
    """Bar chart of mean |SHAP| (log-odds) per indicator (`mean_abs_contribution` over `rows` rows), the
    `top` largest."""
    largest = importance.sort_values().tail(top)
    figure = Figure(figsize=(7, 0.3 * len(largest) + 1.2))
    axes = figure.add_subplot()
    axes.barh(largest.index, largest.to_numpy(), color="#4c72b0")
    axes.set_xlabel("mean |SHAP value| (log-odds)")
    axes.set_title(f"What drives the score ({rows} households)")
    figure.tight_layout()
    return figure


def reliability_figure(
    y: np.ndarray, p: np.ndarray, bins: int = 10, verified: np.ndarray | None = None
) -> Figure:
    """Mean observed rate against mean predicted probability in equal-width bins (held-out rows), each
    curve naming the labels it is measured against and its ECE: the survey's labels, and, when `verified`
    marks rows whose outcome a field visit established, that sample alone."""
    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    curves = [(SURVEY_LABELS, np.ones(len(y), dtype=bool), "o")]
    if verified is not None and verified.any():
        curves.append((VERIFIED_LABELS, np.asarray(verified, dtype=bool), "s"))
    for name, rows, marker in curves:
        table = reliability_table(y[rows], p[rows], bins)
        predicted = [row["predicted"] for row in table]
        observed = [row["observed"] for row in table]
        ece = expected_calibration_error(y[rows], p[rows])
        label = f"against {name} ({int(rows.sum())} rows, ECE {ece:.3f})"
        axes.plot(predicted, observed, marker=marker, label=label)
        for x, obs, n in zip(predicted, observed, [row["n"] for row in table], strict=True):
            axes.annotate(str(n), (x, obs), textcoords="offset points", xytext=(4, -10), fontsize=7)
    axes.set_xlabel("predicted probability")
    axes.set_ylabel("observed rate")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure


def candidate_specs(spec: LightGBMSpec | None, settings: TrainingSettings) -> tuple[LightGBMSpec, ...]:
    """An explicit spec alone, else the settings' complexity candidates over `models/lightgbm.yaml`."""
    return (spec,) if spec is not None else settings.candidate_specs(load_spec())


def reference_values(X: pd.DataFrame) -> dict[str, float]:
    """Training medians of each feature (NaN-skipping); all-missing features are left out."""
    medians = X.median(skipna=True)
    return {str(name): float(value) for name, value in medians.items() if pd.notna(value)}


def train_task(
    survey: Survey,
    task: Task,
    policy: Policy,
    spec: LightGBMSpec | None = None,
    seed: int = 0,
    settings: TrainingSettings | None = None,
    field_decisions: pd.DataFrame | None = None,
) -> TrainedTask:
    """Evaluate on held-out rows, then train the final model on all usable rows (module docstring);
    `field_decisions` correct the labels (see `task_data`)."""
    settings = settings or load_training_settings()
    specs = candidate_specs(spec, settings)
    data = task_data(survey, task, policy, field_decisions)
    held_out, poverty_fit = held_out_predictions(data, specs, seed, settings)
    everyone = np.arange(len(data.y))
    final = poverty_fit or fit_calibrated(
        data.X,
        data.y,
        data.groups,
        specs,
        seed,
        settings.cv_folds,
        calibration_rows(data, everyone, settings),
        settings,
    )
    metrics = binary_metrics(
        held_out[LABEL].to_numpy(), held_out[HELD_OUT_RISK].to_numpy(), policy.flag_coverage
    ) | verified_metrics(held_out, policy.flag_coverage, settings.verified_calibration.min_per_class)
    shap_rows = data.X.sample(n=min(len(data.X), settings.shap_summary_rows), random_state=seed)
    model = TaskModel(
        task=task,
        booster=final.booster,
        calibrator=final.calibrator,
        feature_names=data.feature_names,
        metrics=metrics,
        trained_rounds=tuple(sorted({int(r) for r in data.rounds})),
        data_hash=survey_hash(survey),
        spec=final.spec,
        reference_values=reference_values(data.X),
        policy_version=policy.version,
        linear=final.linear,
        blend_weight=final.blend_weight,
        candidate_brier=final.candidate_brier,
    )
    importance = mean_abs_contribution(model, shap_rows)
    model = replace(model, explanatory_weight=blend_explanatory_weight(model, shap_rows))
    verified = held_out[OUTCOME_VERIFIED].to_numpy(dtype=bool) if OUTCOME_VERIFIED in held_out else None
    figures = {
        "shap_summary.png": mean_abs_contribution_figure(importance, len(shap_rows)),
        "calibration.png": reliability_figure(
            held_out[LABEL].to_numpy(),
            held_out[HELD_OUT_RISK].to_numpy(),
            verified=verified,
        ),
    }
    return TrainedTask(
        model,
        metrics,
        held_out,
        figures,
        final.calibrator_brier,
        policy,
        seed,
        data.field_labels,
        data.verification_labels,
        final.calibrated_on,
        "verified" if final.calibrated_on < len(data.y) else "survey",
    )
