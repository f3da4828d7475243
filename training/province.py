"""A model trained on a province's rounds on a Dask cluster, through LightGBM's own Dask interface.

The single-machine training (`training.train`) holds a county's rows in one frame; a province's do not fit.
Here the rows never meet in one process:

- **Rows, on the workers.** Each part (a county's villages in a round, `store.parts.plan_parts`) reads
  its households from the register with their earlier rounds (and, for `relapse`, the next round that is
  their label) and builds the task's rows with the single-machine code (`training.train.task_data`: the
  same indicators, labels, field decisions and verification findings), keeping the rows of the part's
  round. Every household of the part's villages is read, so a row's village context is the county's; the
  parts' rows equal the whole county's, row for row (test). Households are keyed by county
  (`C001/H00012`): household numbers repeat across counties.
- **Folds and the early-stopping households** are drawn per household from a hash of its key and the
  seed, so a household's rows share a fold wherever they are computed, without a pass over the province.
- **Boosters** are trained by `lightgbm.dask.DaskLGBMClassifier` (each worker holds its rows; LightGBM's
  data-parallel learner syncs histograms between them) with the spec's parameters and monotone
  constraints. Early stopping as `models.fit` does it: a share of households is held out of the fit, the
  validation log-loss of every iteration is summed on the workers from the trees' leaf values, and the
  model is cut at the iteration LightGBM's early-stopping rule would have kept.
- **Calibration and the held-out evaluation** as today: each complexity candidate gets out-of-fold
  margins (one booster per fold), a Platt and an isotonic calibrator are compared by cross-fitted Brier
  score, the best is refitted on all rows; `poverty` is held out by those folds, `relapse` round to round
  (trained on the rounds before the latest usable one, tested on it). Only a row's label, fold and
  margin come back to this process (24 bytes a row), plus samples: the held-out rows logged with the run
  (at most `HELD_OUT_ROWS_LOGGED`), the SHAP summary's rows and the sample the reference medians are
  taken from.

Not as on one machine: the logistic-regression candidate (and its blends with the booster) is fitted on a
household sample of at most `LINEAR_ROWS` rows gathered to this process, not on every row (its margins
are then computed for every row on the workers); below that size, on all rows as on one machine.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.policy import Policy, load_policy
from models.calibration import new_calibrator
from models.fit import MIN_VALIDATION_ROWS
from models.linear import LinearModel, fit_linear
from models.predictor import TaskModel
from models.spec import LightGBMSpec
from store.parts import Part, plan_parts, prepare_worker, worker_engine
from store.register import read_register_villages
from survey.io import Survey
from survey.validate import conform
from training.candidates import CandidateChoice, blended, choose_candidate, cross_fitted_probabilities
from training.metrics import binary_metrics
from training.settings import TrainingSettings, load_training_settings
from training.train import (
    HELD_OUT_RISK,
    LABEL,
    OUTCOME_VERIFIED,
    Task,
    TrainedTask,
    blend_explanatory_weight,
    candidate_specs,
    mean_abs_contribution,
    mean_abs_contribution_figure,
    reference_values,
    reliability_figure,
    task_data,
    verified_metrics,
)

KEYS = ("county_id", "household_id", "round")
FOLD = "fold"
EARLY_STOPPING = "early_stopping"
"""Row column: the household is held out of the fit to stop it early (`spec.validation_share`)."""
HELD_OUT_ROWS_LOGGED = 200_000
"""At most this many held-out rows (with their features) go to the client to be logged with the run;
every held-out row's label and risk go into the metrics."""
LINEAR_ROWS = 200_000
"""The logistic-regression candidate is fitted on a sample of at most about this many rows."""
REFERENCE_ROWS = 100_000
"""The reference medians (what-if and reasons compare with them) are taken from a sample this large."""


@dataclass(frozen=True)
class RowPart:
    """A part of the province whose rows of `round` a worker builds."""

    round: int
    part: Part

    @property
    def name(self) -> str:
        return f"{self.part.name}-r{self.round}"


@dataclass(frozen=True)
class TrainJob:
    """What every part needs, sent to the workers: addresses and settings, no data."""

    task: Task
    db_url: str
    seed: int
    folds: int
    validation_share: float
    policy_file: str | None = None
    field_labels: bool = True


@dataclass(frozen=True)
class ProvinceRows:
    """A task's rows on the cluster: a persisted Dask frame (keys, the model's features, label, outcome
    verified, fold, early-stopping mark) and what the parts' field decisions did to the labels."""

    frame: Any
    feature_names: tuple[str, ...]
    rows: int
    field_labels: dict[str, int] | None
    verification_labels: dict[str, int] | None


# ----------------------------------------------------------------------------------------- the rows


def household_draw(county_ids: pd.Series, household_ids: pd.Series, seed: int, salt: str) -> np.ndarray:
    """A number in [0, 1) per household, the same wherever it is computed: a hash of its county, its
    household number, the seed and `salt` (what the draw is for). Pure."""
    keys = county_ids.astype(str) + "/" + household_ids.astype(str) + f"/{seed}/{salt}"
    hashed = pd.util.hash_pandas_object(keys, index=False).to_numpy(dtype=np.uint64)
    return (hashed >> np.uint64(11)).astype(np.float64) / float(2**53)


def fold_of(county_ids: pd.Series, household_ids: pd.Series, seed: int, folds: int) -> np.ndarray:
    """Each row's fold (0 .. folds-1), by household: a household's rows share one. Pure."""
    return np.minimum(
        (household_draw(county_ids, household_ids, seed, "fold") * folds).astype(int), folds - 1
    )


def part_rows(row_part: RowPart, job: TrainJob) -> pd.DataFrame:
    """The task's rows of the part's round (module docstring), with their fold and early-stopping mark;
    runs on a worker. The field decisions' and verification's counts ride along in `attrs`."""
    prepare_worker()
    part, policy = row_part.part, _policy(job.policy_file)
    engine = worker_engine(job.db_url)
    later = row_part.round + 1 if job.task == "relapse" else row_part.round
    survey = read_register_villages(
        engine, part.county_id, row_part.round, part.villages, through_round=later, verification=True
    )
    decisions = _field_decisions(job.db_url, part.county_id) if job.field_labels else None
    if decisions is not None:
        households = set(survey.households["household_id"].astype(str))
        decisions = decisions[decisions["household_id"].astype(str).isin(households)]
    if survey.households.empty:
        return _empty_rows(job.task, policy)
    # a part's rows may hold one class: the province's other parts hold the other
    data = task_data(conform(survey), job.task, policy, decisions, both_classes=False)  # type: ignore[arg-type]
    in_round = data.features.index.get_level_values("round") == row_part.round
    frame = data.X[in_round].astype(np.float64).reset_index()
    frame.insert(0, "county_id", part.county_id)
    frame[LABEL] = data.y[in_round]
    frame[OUTCOME_VERIFIED] = (
        data.verified[in_round] if data.verified is not None else np.zeros(int(in_round.sum()), dtype=bool)
    )
    frame = _with_draws(frame, job)
    frame.attrs = {"field_labels": data.field_labels, "verification_labels": data.verification_labels}
    return frame


def _with_draws(frame: pd.DataFrame, job: TrainJob) -> pd.DataFrame:
    county, household = frame["county_id"], frame["household_id"]
    return frame.assign(
        **{
            FOLD: fold_of(county, household, job.seed, job.folds),
            EARLY_STOPPING: household_draw(county, household, job.seed, EARLY_STOPPING)
            < job.validation_share,
        }
    )


def _empty_rows(task: Task, policy: Policy) -> pd.DataFrame:
    from features.frame import task_feature_names

    columns: dict[str, Any] = {
        "county_id": pd.Series(dtype=object),
        "household_id": pd.Series(dtype=object),
        "round": pd.Series(dtype=np.int64),
    }
    columns |= {name: pd.Series(dtype=np.float64) for name in task_feature_names(policy, task)}
    columns |= {
        LABEL: pd.Series(dtype=np.float64),
        OUTCOME_VERIFIED: pd.Series(dtype=bool),
        FOLD: pd.Series(dtype=np.int64),
        EARLY_STOPPING: pd.Series(dtype=bool),
    }
    empty = pd.DataFrame(columns)
    empty.attrs = {"field_labels": None, "verification_labels": None}
    return empty


def summed_counts(counts: Sequence[dict[str, int] | None]) -> dict[str, int] | None:
    """Counts of several parts added key by key; None when no part had any. Pure."""
    present = [one for one in counts if one is not None]
    if not present:
        return None
    total: dict[str, int] = {}
    for one in present:
        for key, value in one.items():
            total[key] = total.get(key, 0) + int(value)
    return total


def province_rows(client: Any, parts: Sequence[RowPart], job: TrainJob) -> ProvinceRows:
    """The task's rows of every part, built and kept on the workers (module docstring)."""
    import dask.dataframe as dd
    from dask.base import tokenize
    from distributed import wait

    from features.frame import task_feature_names

    policy = _policy(job.policy_file)
    meta = _empty_rows(job.task, policy)
    token = tokenize(job)  # two jobs on one scheduler never share a part's rows
    futures = client.map(
        part_rows, list(parts), job=job, key=[f"povrisk-rows-{p.name}-{token}" for p in parts]
    )
    wait(futures)
    counts = client.gather(client.map(_attrs_of, futures))
    frame = dd.from_delayed(futures, meta=meta, verify_meta=False).persist()
    rows = int(frame.shape[0].compute())
    return ProvinceRows(
        frame=frame,
        feature_names=tuple(task_feature_names(policy, job.task)),
        rows=rows,
        field_labels=summed_counts([one["field_labels"] for one in counts]),
        verification_labels=summed_counts([one["verification_labels"] for one in counts]),
    )


def _attrs_of(frame: pd.DataFrame) -> dict[str, Any]:
    return {str(key): value for key, value in frame.attrs.items()}


# ------------------------------------------------------------------------------------- boosters


def staged_log_loss(booster: lgb.Booster, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The summed log-loss of the rows after each iteration of `booster` (one value per tree), from the
    trees' leaf values (`pred_leaf`): one pass, not one prediction per iteration. Pure."""
    if len(y) == 0:
        return np.zeros(booster.num_trees())
    leaves = np.asarray(booster.predict(X, pred_leaf=True, num_threads=1)).reshape(len(y), -1)
    values = _leaf_values(booster.model_to_string())
    margins = np.cumsum(np.take_along_axis(values, leaves.T, axis=1), axis=0)  # (trees, rows)
    losses = np.logaddexp(0.0, margins) - y[None, :] * margins  # -log p(y) in log-odds
    return np.asarray(losses.sum(axis=1))


@cache
def _leaf_values(model: str) -> np.ndarray:
    """Leaf values of every tree, padded (trees x most leaves), read from the model text."""
    rows = [
        np.array(line.split("=", 1)[1].split(), dtype=np.float64)
        for line in model.splitlines()
        if line.startswith("leaf_value=")
    ]
    table = np.zeros((len(rows), max((len(row) for row in rows), default=1)))
    for number, row in enumerate(rows):
        table[number, : len(row)] = row
    return table


def early_stopped_iterations(losses: np.ndarray, rounds: int) -> int:
    """The iterations LightGBM's early stopping keeps for this validation-loss curve: the best one
    before `rounds` iterations in a row without a strict improvement (1-based). Pure."""
    best, best_at = np.inf, 0
    for iteration, loss in enumerate(losses):
        if loss < best:
            best, best_at = float(loss), iteration
        elif iteration - best_at >= rounds:
            break
    return best_at + 1


def fit_on_cluster(frame: Any, names: Sequence[str], spec: LightGBMSpec, seed: int, rows: int) -> lgb.Booster:
    """A booster trained by `lightgbm.dask` on the rows of `frame` outside the early-stopping
    households, cut where early stopping on those households would have stopped (`models.fit`'s rule:
    with too few of them, or one class among them, every row for the full `n_estimators`)."""
    from lightgbm.dask import DaskLGBMClassifier

    stopping = frame[frame[EARLY_STOPPING]]
    held = stopping[LABEL].compute().to_numpy()
    usable = len(held) >= MIN_VALIDATION_ROWS and len(np.unique(held)) == 2
    fitted_on = frame[~frame[EARLY_STOPPING]] if usable else frame
    params = spec.params(seed, n_rows=rows)
    constraints = spec.monotone_constraints(list(names))
    if any(constraints):
        params["monotone_constraints"] = constraints
    for name in ("metric", "num_threads"):  # the log-loss curve is ours; Dask gives each worker its threads
        params.pop(name, None)
    model = DaskLGBMClassifier(n_estimators=spec.n_estimators, **params)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        model.fit(fitted_on[list(names)], fitted_on[LABEL])
    booster = model.to_local().booster_
    if not usable:
        return booster
    model_text = booster.model_to_string()
    losses = stopping.map_partitions(
        _partition_losses, model_text, list(names), meta=("loss", np.float64)
    ).compute()
    curve = np.asarray(losses, dtype=np.float64).reshape(-1, booster.num_trees()).sum(axis=0)
    kept = early_stopped_iterations(curve, spec.early_stopping_rounds)
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=kept))


def _partition_losses(partition: pd.DataFrame, model_text: str, names: list[str]) -> pd.Series:
    booster = _booster(model_text)
    values = partition[names].to_numpy(dtype=np.float64)
    if len(values) == 0:
        return pd.Series(dtype=np.float64)
    return pd.Series(staged_log_loss(booster, values, partition[LABEL].to_numpy(dtype=np.float64)))


@cache
def _booster(model_text: str) -> lgb.Booster:
    return lgb.Booster(model_str=model_text)


def margins_on_cluster(
    frame: Any,
    names: Sequence[str],
    boosters: Sequence[lgb.Booster],
    linears: Sequence[LinearModel] | None = None,
) -> pd.DataFrame:
    """Each row's label, fold, outcome-verified mark and round, its booster margin (`margin`) from the
    booster of its fold (one booster: every row's from it) and, with `linears`, the logistic margin
    (`linear_margin`) likewise: the few bytes a row the client needs to calibrate."""
    texts = [booster.model_to_string() for booster in boosters]
    columns: dict[str, Any] = {
        LABEL: pd.Series(dtype=np.float64),
        FOLD: pd.Series(dtype=np.int64),
        OUTCOME_VERIFIED: pd.Series(dtype=bool),
        "round": pd.Series(dtype=np.int64),
        "margin": pd.Series(dtype=np.float64),
    }
    if linears is not None:
        columns["linear_margin"] = pd.Series(dtype=np.float64)
    meta = pd.DataFrame(columns)
    return frame.map_partitions(
        _partition_margins, texts, list(linears or []), list(names), meta=meta
    ).compute()


def _partition_margins(
    partition: pd.DataFrame, texts: list[str], linears: list[LinearModel], names: list[str]
) -> pd.DataFrame:
    values = partition[names].to_numpy(dtype=np.float64)
    fold = partition[FOLD].to_numpy(dtype=np.int64)
    margins = {
        "margin": _by_fold(
            fold,
            len(texts),
            lambda n, rows: _booster(texts[n]).predict(values[rows], raw_score=True, num_threads=1),
        )
    }
    if linears:
        margins["linear_margin"] = _by_fold(
            fold, len(linears), lambda n, rows: linears[n].margin_of(values[rows])
        )
    return pd.DataFrame(
        {
            LABEL: partition[LABEL].to_numpy(dtype=np.float64),
            FOLD: fold,
            OUTCOME_VERIFIED: partition[OUTCOME_VERIFIED].to_numpy(dtype=bool),
            "round": partition["round"].to_numpy(dtype=np.int64),
            **margins,
        }
    )


def _by_fold(fold: np.ndarray, models: int, margin_of: Callable[[int, np.ndarray], Any]) -> np.ndarray:
    """Each row's margin from the model of its fold (one model: every row's from it)."""
    margin = np.empty(len(fold))
    for number in range(models):
        rows = (fold == number) if models > 1 else np.ones(len(fold), dtype=bool)
        if rows.any():
            margin[rows] = margin_of(number, rows)
    return margin


def linear_models(
    sample: pd.DataFrame,
    names: Sequence[str],
    folds: int | None,
    settings: TrainingSettings,
    spec: LightGBMSpec,
) -> list[LinearModel]:
    """The logistic regression (`models.linear`) fitted on a sample of the rows: one per fold on the
    other folds' sampled rows (`folds`), or one on all of them (None). Its few coefficients per indicator
    are estimated from `LINEAR_ROWS` rows as well as from millions."""
    values = sample[list(names)].to_numpy(dtype=np.float64)
    y = sample[LABEL].to_numpy(dtype=np.float64)
    c, names_ = settings.candidates.logistic_c, tuple(names)
    if folds is None:
        return [fit_linear(values, y, names_, c, spec.monotone)]
    fold = sample[FOLD].to_numpy()
    return [fit_linear(values[fold != n], y[fold != n], names_, c, spec.monotone) for n in range(folds)]


# ----------------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class ClusterFit:
    """The chosen spec's booster on all the given rows, its calibrator on the out-of-fold margins, and
    what chose them (as `training.train.CalibratedFit`, without the logistic part)."""

    booster: lgb.Booster
    choice: CandidateChoice
    spec: LightGBMSpec
    margins: pd.DataFrame
    calibrated_on: np.ndarray
    candidate_brier: dict[str, float] = field(default_factory=dict)
    linear: LinearModel | None = None

    @property
    def calibrator(self) -> Any:
        y = self.margins[LABEL].to_numpy()
        return new_calibrator(self.choice.calibrator).fit(
            self.choice.margin[self.calibrated_on], y[self.calibrated_on]
        )


def calibration_mask(margins: pd.DataFrame, task: Task, settings: TrainingSettings) -> np.ndarray:
    """The rows the calibrator is fitted on: the verified ones where the task calibrates on verified
    outcomes and they hold enough of each class (`training.train.calibration_rows`), else all. Pure."""
    everyone = np.ones(len(margins), dtype=bool)
    rule = settings.verified_calibration
    if task not in rule.tasks:
        return everyone
    verified = margins[OUTCOME_VERIFIED].to_numpy(dtype=bool)
    labels = margins[LABEL].to_numpy()[verified]
    if min((labels == 1).sum(), (labels == 0).sum()) < rule.min_per_class:
        return everyone
    return verified


def fit_calibrated_on_cluster(
    frame: Any,
    names: Sequence[str],
    specs: Sequence[LightGBMSpec],
    job: TrainJob,
    settings: TrainingSettings,
    rows: int,
    progress: Callable[[str], None] | None = None,
) -> ClusterFit:
    """For each spec, one booster per fold and each row's out-of-fold margin, beside the logistic
    regression's (fitted per fold on a sample, `linear_models`); the candidate (spec, blend weight) and
    calibrator of lowest cross-fitted Brier (`training.candidates.choose_candidate`) refitted on every
    row of `frame` (the logistic part on the sample)."""
    blend = any(weight > 0 for weight in settings.candidates.blend_weights)
    sample = sample_rows(frame, rows, LINEAR_ROWS, job.seed) if blend else None
    best: tuple[CandidateChoice, LightGBMSpec, pd.DataFrame, np.ndarray] | None = None
    candidate_brier: dict[str, float] = {}
    for number, spec in enumerate(specs):
        boosters = []
        for fold in range(job.folds):
            if progress is not None:
                progress(f"candidate {number + 1}/{len(specs)}, fold {fold + 1}/{job.folds}")
            boosters.append(fit_on_cluster(frame[frame[FOLD] != fold], names, spec, job.seed, rows))
        linears = None if sample is None else linear_models(sample, names, job.folds, settings, spec)
        margins = margins_on_cluster(frame, names, boosters, linears)
        scored = calibration_mask(margins, job.task, settings)
        y, fold_ids = margins[LABEL].to_numpy(), margins[FOLD].to_numpy()
        linear_margin = None if linears is None else margins["linear_margin"].to_numpy()
        choice = choose_candidate(
            margins["margin"].to_numpy(),
            linear_margin,
            y,
            fold_ids,
            settings.candidates.blend_weights,
            scored,
        )
        for label, score in choice.candidate_brier.items():
            candidate_brier[label] = min(score, candidate_brier.get(label, np.inf))
        if best is None or choice.brier < best[0].brier:
            best = (choice, spec, margins, scored)
    assert best is not None
    choice, spec, margins, scored = best
    if progress is not None:
        progress("final model")
    booster = fit_on_cluster(frame, names, spec, job.seed, rows)
    linear = (
        linear_models(sample, names, None, settings, spec)[0]
        if sample is not None and choice.weight > 0
        else None
    )
    return ClusterFit(booster, choice, spec, margins, scored, candidate_brier, linear)


# ---------------------------------------------------------------------------------------- training


def sample_rows(frame: Any, rows: int, wanted: int, seed: int) -> pd.DataFrame:
    """About `wanted` rows of the province (all when it has fewer), drawn by household hash: the same
    sample whoever draws it."""
    share = min(1.0, wanted / max(rows, 1))

    def chosen(partition: pd.DataFrame) -> pd.DataFrame:
        draw = household_draw(partition["county_id"], partition["household_id"], seed, "sample")
        return partition[draw < share]

    return frame.map_partitions(chosen, meta=frame._meta).compute()


def held_out_and_final(
    data: ProvinceRows,
    job: TrainJob,
    specs: Sequence[LightGBMSpec],
    settings: TrainingSettings,
    progress: Any,
) -> tuple[pd.DataFrame, Any, ClusterFit]:
    """The held-out rows (keys, `label`, `held_out_risk`, outcome verified) and the final fit: for
    `poverty` one fit gives both (cross-fitted out-of-fold risks), for `relapse` a fit on the rounds
    before the latest labelled one scores it, then a fit on every round is the model."""
    frame, names = data.frame, data.feature_names
    if job.task == "poverty":
        fit = fit_calibrated_on_cluster(frame, names, specs, job, settings, data.rows, progress)
        y, fold = fit.margins[LABEL].to_numpy(), fit.margins[FOLD].to_numpy()
        risk = cross_fitted_probabilities(
            fit.choice.margin, y, fold, fit.choice.calibrator, fit.calibrated_on
        )
        rows = frame[list(KEYS)].compute().reset_index(drop=True)
        return _held_out(rows, fit.margins, risk), frame, fit
    rounds = sorted(int(r) for r in frame["round"].unique().compute())
    if len(rounds) < 2:
        raise ValueError("relapse needs labelled rows in at least two rounds (a province of 3+ rounds)")
    latest = rounds[-1]
    past_frame = frame[frame["round"] < latest]
    past = fit_calibrated_on_cluster(past_frame, names, specs, job, settings, data.rows, progress)
    test = frame[frame["round"] == latest]
    margins = margins_on_cluster(test, names, [past.booster], None if past.linear is None else [past.linear])
    linear_margin = margins["linear_margin"].to_numpy() if past.linear is not None else None
    risk = past.calibrator.transform(blended(margins["margin"].to_numpy(), linear_margin, past.choice.weight))
    rows = test[list(KEYS)].compute().reset_index(drop=True)
    final = fit_calibrated_on_cluster(frame, names, specs, job, settings, data.rows, progress)
    return _held_out(rows, margins, risk), test, final


def _held_out(keys: pd.DataFrame, margins: pd.DataFrame, risk: np.ndarray) -> pd.DataFrame:
    return keys.assign(
        **{
            LABEL: margins[LABEL].to_numpy(),
            HELD_OUT_RISK: risk,
            OUTCOME_VERIFIED: margins[OUTCOME_VERIFIED].to_numpy(),
        }
    )


def logged_held_out(
    held_out: pd.DataFrame, test_frame: Any, rows: int, names: Sequence[str], seed: int
) -> pd.DataFrame:
    """The held-out rows logged with the run (at most about `HELD_OUT_ROWS_LOGGED`, by household hash):
    the model's features, `label`, `held_out_risk`, outcome verified, indexed (household key, round)."""
    sample = sample_rows(test_frame, rows, HELD_OUT_ROWS_LOGGED, seed)[[*KEYS, *names]]
    joined = sample.merge(held_out, on=list(KEYS), how="inner", validate="one_to_one")
    joined["household_id"] = joined["county_id"].astype(str) + "/" + joined["household_id"].astype(str)
    return joined.drop(columns="county_id").set_index(["household_id", "round"])


def county_keyed(survey: Survey, county_id: str) -> Survey:
    """The county's survey with household and village ids prefixed by the county (`C001/H00012`), as the
    province keys its rows: two counties' surveys then make one. Pure."""

    def prefixed(frame: pd.DataFrame | None, columns: tuple[str, ...]) -> pd.DataFrame | None:
        if frame is None:
            return None
        return frame.assign(**{c: county_id + "/" + frame[c].astype(str) for c in columns if c in frame})

    return Survey(
        households=prefixed(survey.households, ("household_id", "village_id")),  # type: ignore[arg-type]
        members=prefixed(survey.members, ("household_id",)),
        villages=prefixed(survey.villages, ("village_id",)),
        verification=prefixed(survey.verification, ("household_id",)),
    )


def province_as_one_survey(engine: Any, counties: Sequence[str]) -> Survey:
    """The counties' register as one survey keyed by county (`county_keyed`): what one machine trains on
    to compare with the cluster (it must fit in memory)."""
    from store.register import read_register

    surveys = [county_keyed(read_register(engine, county_id), county_id) for county_id in counties]

    def joined(name: str) -> pd.DataFrame | None:
        frames = [getattr(one, name) for one in surveys if getattr(one, name) is not None]
        return pd.concat(frames, ignore_index=True) if frames else None

    return conform(  # type: ignore[return-value]
        Survey(
            households=joined("households"),  # type: ignore[arg-type]
            members=joined("members"),
            villages=joined("villages"),
            verification=joined("verification"),
        )
    )


def province_data_hash(rounds: pd.DataFrame) -> str:
    """A short hash of the register versions trained on (county, round, content hash). Pure."""
    keys = rounds[["county_id", "round", "content_hash"]].astype(str).sort_values(["county_id", "round"])
    text = json.dumps(keys.to_numpy().tolist())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train_province_task(
    client: Any,
    parts: Sequence[RowPart],
    job: TrainJob,
    policy: Policy,
    data_hash: str,
    settings: TrainingSettings | None = None,
    spec: LightGBMSpec | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainedTask:
    """The task trained on the province's rows on the cluster (module docstring): a `TrainedTask` like
    `training.train.train_task`'s, logged and registered by the same `training.tracking.log_and_register`."""
    if not parts:
        raise ValueError(f"{job.task}: no part of the province to train on")
    settings = settings or load_training_settings()
    specs = candidate_specs(spec, settings)
    if progress is not None:
        progress("rows")
    data = province_rows(client, parts, job)
    positives = int(data.frame[LABEL].sum().compute()) if data.rows else 0
    if positives in (0, data.rows):
        raise ValueError(
            f"{job.task}: the labelled rows hold a single class ({data.rows} rows); cannot train"
        )
    held_out, test_frame, final = held_out_and_final(data, job, specs, settings, progress)
    labels, risk = held_out[LABEL].to_numpy(), held_out[HELD_OUT_RISK].to_numpy()
    metrics = binary_metrics(labels, risk, policy.flag_coverage) | verified_metrics(
        held_out, policy.flag_coverage, settings.verified_calibration.min_per_class
    )
    names = data.feature_names
    sample = sample_rows(data.frame, data.rows, REFERENCE_ROWS, job.seed)
    features = sample[list(names)]
    model = TaskModel(
        task=job.task,
        booster=final.booster,
        calibrator=final.calibrator,
        feature_names=names,
        metrics=metrics,
        trained_rounds=tuple(sorted(int(r) for r in data.frame["round"].unique().compute())),
        data_hash=data_hash,
        spec=final.spec,
        reference_values=reference_values(features),
        policy_version=policy.version,
        linear=final.linear,
        blend_weight=final.choice.weight,
        candidate_brier=final.candidate_brier,
    )
    shap_rows = features.sample(n=min(len(features), settings.shap_summary_rows), random_state=job.seed)
    importance = mean_abs_contribution(model, shap_rows)
    model = replace(model, explanatory_weight=blend_explanatory_weight(model, shap_rows))
    logged = logged_held_out(held_out, test_frame, len(held_out), names, job.seed)
    figures = {
        "shap_summary.png": mean_abs_contribution_figure(importance, len(shap_rows)),
        "calibration.png": reliability_figure(labels, risk, verified=held_out[OUTCOME_VERIFIED].to_numpy()),
    }
    return TrainedTask(
        model,
        metrics,
        logged,
        figures,
        final.choice.calibrator_brier,
        policy,
        job.seed,
        data.field_labels,
        data.verification_labels,
        int(final.calibrated_on.sum()),
        "verified" if final.calibrated_on.sum() < len(final.calibrated_on) else "survey",
    )


# ------------------------------------------------------------------------------------ worker state


@cache
def _policy(policy_file: str | None) -> Policy:
    return load_policy(Path(policy_file)) if policy_file else load_policy()


def _field_decisions(db_url: str, county_id: str) -> pd.DataFrame | None:
    from store.cases import field_decisions

    decisions = field_decisions(worker_engine(db_url), county_id=county_id)
    return decisions if len(decisions) else None


def plan_row_parts(
    rounds_of: dict[str, list[int]],
    sizes_of: Callable[[str, int], dict[str, int]],
    task: Task,
    households_per_part: int,
) -> list[RowPart]:
    """The parts whose rows make the task: for `poverty` each county's latest round, for `relapse` every
    round whose next round the county holds; each cut by `store.parts.plan_parts`."""

    parts = []
    for county_id, rounds in rounds_of.items():
        held = sorted(rounds)
        wanted = held[-1:] if task == "poverty" else [r for r in held if r + 1 in held]
        for round_ in wanted:
            sizes = {county_id: sizes_of(county_id, round_)}
            parts += [RowPart(round_, part) for part in plan_parts(sizes, households_per_part)]
    return parts
