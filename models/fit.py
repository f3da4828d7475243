"""Fit one LightGBM booster with early stopping on an inner validation split grouped by household."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.spec import LightGBMSpec

MIN_VALIDATION_ROWS = 20


def inner_validation_mask(groups: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Boolean mask of rows whose group (household) falls in a random `share` of the groups."""
    unique_groups = np.unique(groups)
    rng = np.random.default_rng(seed)
    n_validation = max(1, round(share * len(unique_groups)))
    validation_groups = rng.choice(unique_groups, size=n_validation, replace=False)
    return np.isin(groups, validation_groups)


def train_early_stopped(
    params: dict[str, object],
    features: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    validation: np.ndarray | None,
    spec: LightGBMSpec,
) -> lgb.Booster:
    """Train on the rows outside `validation`, stopping early on the `validation` rows, and keep only the
    trees up to the best iteration (so every later predict uses the early-stopped model); with no
    validation mask, train on all rows for the full `spec.n_estimators` rounds."""
    if validation is None:
        train_set = lgb.Dataset(features, labels, feature_name=names, free_raw_data=True)
        return lgb.train(params, train_set, num_boost_round=spec.n_estimators)
    train_set = lgb.Dataset(features[~validation], labels[~validation], feature_name=names)
    valid_set = lgb.Dataset(features[validation], labels[validation], reference=train_set)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=spec.n_estimators,
        valid_sets=[valid_set],
        valid_names=["inner_validation"],
        callbacks=[lgb.early_stopping(spec.early_stopping_rounds, verbose=False)],
    )
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))


def fit_booster(
    X: pd.DataFrame, y: pd.Series | np.ndarray, groups: pd.Series | np.ndarray, spec: LightGBMSpec, seed: int
) -> lgb.Booster:
    """Train a binary LightGBM booster on float features `X` and 0/1 labels `y`.

    A share `spec.validation_share` of the households (`groups`) is held out for early stopping; no
    household is on both sides. When the held-out part is too small or has one class only, the model is
    trained on all rows for the full `spec.n_estimators` rounds instead.
    """
    labels = np.asarray(y, dtype=np.float64)
    group_ids = np.asarray(groups)
    if len(X) != len(labels) or len(X) != len(group_ids):
        raise ValueError(f"X, y and groups differ in length: {len(X)}, {len(labels)}, {len(group_ids)}")
    if np.isnan(labels).any():
        raise ValueError("y holds missing labels; drop those rows before fitting")
    if len(np.unique(labels)) < 2:
        raise ValueError("y holds a single class; a binary model needs both 0 and 1")
    features = X.to_numpy(dtype=np.float64)
    names = [str(column) for column in X.columns]
    params = spec.params(seed, n_rows=len(X))
    constraints = spec.monotone_constraints(names)
    if any(constraints):
        params["monotone_constraints"] = constraints

    validation = inner_validation_mask(group_ids, spec.validation_share, seed)
    usable = (
        validation.sum() >= MIN_VALIDATION_ROWS
        and len(np.unique(labels[validation])) == 2
        and len(np.unique(labels[~validation])) == 2
    )
    return train_early_stopped(params, features, labels, names, validation if usable else None, spec)
