"""The linear candidate: an L2-regularised logistic regression on the model's indicators, kept as plain
arrays so it travels inside the packaged predictor and explains itself exactly.

Inputs: each indicator's missing values are filled with its training median and its values held within
the training range (a household beyond the range the model saw is treated as at its edge, as a tree
treats it: no straight line is extrapolated to an extreme ratio), then standardised with the training
mean and standard deviation of the filled column; every indicator missing in some training rows
also gets a missing-value indicator (1 = missing). The margin is the log-odds
`intercept + z @ coef + missing @ missing_coef`.

Contributions (the linear model's exact SHAP values, features taken as independent): an indicator's share
of the margin is `coef_j * z_j + missing_coef_j * (missing_j - training missing rate_j)`; the base value
is `intercept + sum_j missing_coef_j * training missing rate_j` (every standardised column has training
mean 0). For every row the contributions plus the base value sum to the margin, as TreeSHAP's do for the
booster, so a blend of the two explains itself by the same blend of both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

MAX_ITERATIONS = 2000


@dataclass(frozen=True)
class LinearModel:
    """A fitted logistic regression over `feature_names` (module docstring); arrays in that order."""

    feature_names: tuple[str, ...]
    fill: np.ndarray
    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    missing_columns: np.ndarray
    missing_coef: np.ndarray
    missing_rate: np.ndarray
    intercept: float

    def _standardised(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        missing = np.isnan(values)
        filled = np.clip(np.where(missing, self.fill[None, :], values), self.low[None, :], self.high[None, :])
        return (filled - self.mean[None, :]) / self.scale[None, :], missing[:, self.missing_columns]

    def margin_of(self, values: np.ndarray) -> np.ndarray:
        """Log-odds of rows of indicator values (float64, columns in `feature_names` order, NaN missing)."""
        z, missing = self._standardised(np.asarray(values, dtype=np.float64))
        return self.intercept + _weighted_sum(z, self.coef) + _weighted_sum(missing, self.missing_coef)

    def contribution_values(self, values: np.ndarray) -> np.ndarray:
        """Each indicator's contribution to the margin, then the base value as the last column."""
        z, missing = self._standardised(np.asarray(values, dtype=np.float64))
        contributions = np.empty((len(z), len(self.feature_names) + 1))
        contributions[:, :-1] = z * self.coef[None, :]
        contributions[:, self.missing_columns] += (
            missing.astype(np.float64) - self.missing_rate[None, :]
        ) * self.missing_coef[None, :]
        contributions[:, -1] = self.intercept + float(self.missing_rate @ self.missing_coef)
        return contributions


def _weighted_sum(matrix: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`matrix @ weights`, added up column by column in a fixed order: a matrix product or a row
    reduction may round a row differently depending on the rows beside it (blocking, SIMD), and a
    household must get the same answer alone as in a batch, to the last bit."""
    total = np.zeros(len(matrix))
    for column, weight in enumerate(weights):
        total += matrix[:, column] * weight
    return total


def fit_linear(
    values: np.ndarray,
    y: np.ndarray,
    feature_names: tuple[str, ...],
    c: float = 1.0,
    monotone: Mapping[str, int] | None = None,
) -> LinearModel:
    """The logistic regression of `y` on the indicator `values` (rows x `feature_names`, NaN missing),
    L2 penalty of inverse strength `c` on the standardised inputs. `monotone` gives directions the
    model must respect (+1: a rise never lowers the risk, -1: never raises it), as the booster's monotone
    constraints do: an indicator whose fitted coefficient goes the other way is left out and the
    regression refitted without it (its coefficient 0)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[1] != len(feature_names):
        raise ValueError(f"values have {values.shape[1]} columns for {len(feature_names)} feature names")
    missing = np.isnan(values)
    observed = ~missing.all(axis=0)
    fill = np.zeros(values.shape[1])
    fill[observed] = np.nanmedian(values[:, observed], axis=0)
    filled = np.where(missing, fill[None, :], values)
    low, high = filled.min(axis=0), filled.max(axis=0)
    mean = filled.mean(axis=0)
    scale = filled.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    missing_columns = np.flatnonzero(missing.any(axis=0) & observed)
    design = np.hstack([(filled - mean) / scale, missing[:, missing_columns].astype(np.float64)])
    directions = np.array([(monotone or {}).get(name, 0) for name in feature_names], dtype=np.float64)
    kept = np.ones(design.shape[1], dtype=bool)
    regression = LogisticRegression(C=c, max_iter=MAX_ITERATIONS).fit(design, y)
    wrong = directions * regression.coef_[0][: len(feature_names)] < 0
    if wrong.any():
        kept[: len(feature_names)] = ~wrong
        regression = LogisticRegression(C=c, max_iter=MAX_ITERATIONS).fit(design[:, kept], y)
    coefficients = np.zeros(design.shape[1])
    coefficients[kept] = regression.coef_[0]
    return LinearModel(
        feature_names=tuple(feature_names),
        fill=fill,
        low=low,
        high=high,
        mean=mean,
        scale=scale,
        coef=coefficients[: values.shape[1]].copy(),
        missing_columns=missing_columns,
        missing_coef=coefficients[values.shape[1] :].copy(),
        missing_rate=missing[:, missing_columns].mean(axis=0),
        intercept=float(regression.intercept_[0]),
    )
