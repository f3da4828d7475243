"""Fit one multiclass LightGBM booster (ordered poverty levels) with grouped early stopping.

Levels are coded 0..K-1 (for the Costa Rica Target: 0 extreme poor, 1 moderate poor, 2 vulnerable,
3 not vulnerable). The hyper-parameters come from the same `LightGBMSpec` as the binary model; the
objective becomes `multiclass` (softmax over K classes, multi-log-loss for early stopping). Monotone
constraints are not applied: a direction on one indicator has no single meaning across K class scores.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.fit import MIN_VALIDATION_ROWS, inner_validation_mask, train_early_stopped
from models.spec import LightGBMSpec


def multiclass_params(spec: LightGBMSpec, seed: int, num_class: int, n_rows: int) -> dict[str, Any]:
    """`spec.params` with the softmax objective over `num_class` classes."""
    return spec.params(seed, n_rows=n_rows) | {
        "objective": "multiclass",
        "metric": "multi_logloss",
        "num_class": num_class,
    }


def fit_multiclass_booster(
    X: pd.DataFrame,
    levels: np.ndarray,
    groups: np.ndarray,
    spec: LightGBMSpec,
    seed: int,
    num_class: int,
) -> lgb.Booster:
    """Train a `num_class`-class booster on float features `X` and integer levels 0..num_class-1.

    As `models.fit.fit_booster`: `spec.validation_share` of the households is held out for early stopping
    (no household on both sides); when that part is too small the full `spec.n_estimators` are used.
    """
    classes = np.asarray(levels)
    group_ids = np.asarray(groups)
    if len(X) != len(classes) or len(X) != len(group_ids):
        raise ValueError(f"X, levels and groups differ in length: {len(X)}, {len(classes)}, {len(group_ids)}")
    if not np.isin(classes, np.arange(num_class)).all():
        raise ValueError(f"levels must be integers in 0..{num_class - 1}")
    features = X.to_numpy(dtype=np.float64)
    names = [str(column) for column in X.columns]
    params = multiclass_params(spec, seed, num_class, len(X))
    validation = inner_validation_mask(group_ids, spec.validation_share, seed)
    usable = validation.sum() >= MIN_VALIDATION_ROWS and not validation.all()
    labels = classes.astype(np.float64)
    return train_early_stopped(params, features, labels, names, validation if usable else None, spec)


def class_probabilities(booster: lgb.Booster, X: pd.DataFrame) -> np.ndarray:
    """(rows, classes) softmax probabilities, predicted on one thread."""
    return np.asarray(booster.predict(X.to_numpy(dtype=np.float64), num_threads=1)).reshape(len(X), -1)
