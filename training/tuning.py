"""Hyper-parameter tuning and feature selection inside one training fold (never the evaluation fold).

`inner_out_of_fold` scores a spec by a grouped cross-validation of the *training rows it is given*: each
row's prediction comes from an inner model that did not see its household, and every inner model stops
early on its own grouped split of its inner training rows (`models.fit`), so the inner validation rows
are not used for early stopping either.

`tune_spec` runs Optuna's TPE sampler (seeded) over num_leaves, min_child_samples, learning_rate,
n_estimators (an upper bound; early stopping picks the number kept), feature_fraction and the L2 penalty
lambda, minimising the inner cross-validated log-loss (binary or multiclass). The base spec is always the
first trial, so tuning can only keep or improve the inner score. Bounded by `TuningSettings.n_trials` and
`timeout_seconds`.

Feature selection (`selected_features`): a feature that none of the chosen configuration's inner models
ever split on (total gain 0 over the inner folds) is dropped from the fold's final model. This is a
conservative pass — it removes indicators that are constant or absent in the survey (e.g. the income
block of a survey without incomes) and redundant ones the trees never pick — chosen on the training fold
only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.fit import fit_booster
from models.multiclass import class_probabilities, fit_multiclass_booster
from models.spec import LightGBMSpec
from training.settings import TuningSettings
from training.splits import grouped_kfold

Kind = Literal["binary", "multiclass"]
PROBABILITY_FLOOR = 1e-12


@dataclass(frozen=True)
class InnerFit:
    """A spec with its inner out-of-fold predictions on the training rows.

    `oof`: raw margins (binary, shape (n,)) or class probabilities (multiclass, shape (n, K)); `fold`: the
    inner fold of each row; `gain`: total split gain of each feature summed over the inner models;
    `loss`: the inner cross-validated log-loss; `trials`: how many Optuna trials ran (0 = not tuned).
    """

    spec: LightGBMSpec
    oof: np.ndarray
    fold: np.ndarray
    gain: pd.Series
    loss: float
    trials: int = 0


def log_loss(kind: Kind, target: np.ndarray, oof: np.ndarray) -> float:
    """Mean negative log-likelihood of `target` under the inner predictions (margins or probabilities)."""
    if kind == "binary":
        return float(np.mean(np.logaddexp(0.0, oof) - target * oof))
    chosen = oof[np.arange(len(target)), target.astype(int)]
    return float(-np.mean(np.log(np.clip(chosen, PROBABILITY_FLOOR, 1.0))))


def _fit(
    kind: Kind,
    X: pd.DataFrame,
    target: np.ndarray,
    groups: np.ndarray,
    spec: LightGBMSpec,
    seed: int,
    num_class: int,
) -> lgb.Booster:
    if kind == "binary":
        return fit_booster(X, target, groups, spec, seed)
    return fit_multiclass_booster(X, target, groups, spec, seed, num_class)


def _predict(kind: Kind, booster: lgb.Booster, X: pd.DataFrame) -> np.ndarray:
    if kind == "binary":
        return np.asarray(booster.predict(X.to_numpy(dtype=np.float64), raw_score=True, num_threads=1))
    return class_probabilities(booster, X)


def inner_out_of_fold(
    kind: Kind,
    X: pd.DataFrame,
    target: np.ndarray,
    groups: np.ndarray,
    spec: LightGBMSpec,
    seed: int,
    splits: list[tuple[np.ndarray, np.ndarray]],
    num_class: int = 2,
) -> InnerFit:
    """Inner out-of-fold predictions of `spec` over the given (inner) splits of the training rows."""
    oof = np.empty(len(target)) if kind == "binary" else np.empty((len(target), num_class))
    fold = np.empty(len(target), dtype=int)
    gain = pd.Series(0.0, index=[str(c) for c in X.columns])
    for fold_id, (train, test) in enumerate(splits):
        booster = _fit(kind, X.iloc[train], target[train], groups[train], spec, seed, num_class)
        oof[test] = _predict(kind, booster, X.iloc[test])
        fold[test] = fold_id
        gain += pd.Series(booster.feature_importance("gain"), index=booster.feature_name()).reindex(
            gain.index, fill_value=0.0
        )
    return InnerFit(spec, oof, fold, gain, log_loss(kind, target, oof))


def suggested_spec(trial: Any, base: LightGBMSpec) -> LightGBMSpec:
    """The trial's point of the search space, over `base` (see the module docstring for the ranges)."""
    return replace(
        base,
        num_leaves=trial.suggest_int("num_leaves", 4, 48, log=True),
        min_child_samples=trial.suggest_int("min_child_samples", 5, 120, log=True),
        learning_rate=trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        n_estimators=trial.suggest_int("n_estimators", 150, 800, step=50),
        feature_fraction=trial.suggest_float("feature_fraction", 0.3, 1.0),
        reg_lambda=trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
    )


TUNED_FIELDS = (
    "num_leaves",
    "min_child_samples",
    "learning_rate",
    "n_estimators",
    "feature_fraction",
    "reg_lambda",
)


def tune_spec(
    kind: Kind,
    X: pd.DataFrame,
    target: np.ndarray,
    groups: np.ndarray,
    base: LightGBMSpec,
    seed: int,
    settings: TuningSettings,
    num_class: int = 2,
) -> InnerFit:
    """The best spec of an Optuna search on the training rows, or `base` when tuning is disabled."""
    splits = grouped_kfold(groups, target, settings.inner_folds, seed)
    if not settings.enabled:
        return inner_out_of_fold(kind, X, target, groups, base, seed, splits, num_class)
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    fits: dict[int, InnerFit] = {}

    def objective(trial: optuna.Trial) -> float:
        fit = inner_out_of_fold(kind, X, target, groups, suggested_spec(trial, base), seed, splits, num_class)
        fits[trial.number] = fit
        return fit.loss

    study = optuna.create_study(
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=settings.seed + seed)
    )
    study.enqueue_trial({name: getattr(base, name) for name in TUNED_FIELDS}, skip_if_exists=True)
    study.optimize(objective, n_trials=settings.n_trials, timeout=settings.timeout_seconds)
    best = fits[study.best_trial.number]
    return replace(best, trials=len(study.trials))


def selected_features(gain: pd.Series) -> list[str]:
    """Features with positive total inner gain (all features when none has any)."""
    kept = [str(name) for name, value in gain.items() if value > 0]
    return kept or [str(name) for name in gain.index]
