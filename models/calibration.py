"""Map a booster's raw margin (log-odds) to a calibrated probability.

Both calibrators are fitted on out-of-fold margins: margins a model produced for rows it was not trained
on. Fitting on a model's in-sample margins would learn its overconfidence on training rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression


class Calibrator(Protocol):
    """Anything that turns margins into probabilities after being fitted."""

    name: str

    def fit(self, margin: np.ndarray, y: np.ndarray) -> Calibrator: ...

    def transform(self, margin: np.ndarray) -> np.ndarray: ...


def _checked(margin: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    margins = np.asarray(margin, dtype=np.float64)
    labels = np.asarray(y, dtype=np.float64)
    if margins.shape != labels.shape or margins.ndim != 1:
        raise ValueError(f"margin and y must be 1-d of equal length, got {margins.shape} and {labels.shape}")
    if np.isnan(margins).any() or np.isnan(labels).any():
        raise ValueError("margin and y must not hold NaN")
    if len(np.unique(labels)) < 2:
        raise ValueError("calibration needs both classes in y")
    return margins, labels


def _log_loss_and_gradient(
    coefficients: np.ndarray, margins: np.ndarray, labels: np.ndarray
) -> tuple[float, np.ndarray]:
    z = coefficients[0] * margins + coefficients[1]
    # -log p(label): log(1 + e^z) for 0, log(1 + e^-z) for 1 (finite for any z the line search tries)
    loss = np.mean(np.logaddexp(0.0, np.where(labels == 1.0, -z, z)))
    residual = expit(z) - labels
    return float(loss), np.array([np.mean(residual * margins), np.mean(residual)])


@dataclass
class PlattCalibrator:
    """p = 1 / (1 + exp(-(slope * margin + intercept))), slope >= 0, fitted by maximum likelihood.

    The slope is bounded at zero so that calibration never reverses the model's ranking: when the
    out-of-fold margins carry no signal (slope 0) every row gets the base rate.
    """

    slope: float = 1.0
    intercept: float = 0.0
    name: str = "platt"

    def fit(self, margin: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        margins, labels = _checked(margin, y)
        base_rate = labels.mean()
        start = np.array([1.0, math.log(base_rate / (1.0 - base_rate))])
        result = minimize(
            _log_loss_and_gradient,
            start,
            args=(margins, labels),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, None), (None, None)],
        )
        self.slope, self.intercept = float(result.x[0]), float(result.x[1])
        return self

    def transform(self, margin: np.ndarray) -> np.ndarray:
        z = self.slope * np.asarray(margin, dtype=np.float64) + self.intercept
        return np.asarray(expit(z), dtype=np.float64)


@dataclass
class IsotonicCalibrator:
    """Monotone step function of the margin (isotonic regression), linear between fitted thresholds.

    Stored as two plain arrays so the fitted calibrator pickles without scikit-learn objects.
    """

    thresholds: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    name: str = "isotonic"

    def fit(self, margin: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        margins, labels = _checked(margin, y)
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(margins, labels)
        self.thresholds = np.asarray(model.X_thresholds_, dtype=np.float64)
        self.probabilities = np.asarray(model.y_thresholds_, dtype=np.float64)
        return self

    def transform(self, margin: np.ndarray) -> np.ndarray:
        if self.thresholds is None or self.probabilities is None:
            raise RuntimeError("IsotonicCalibrator.transform called before fit")
        return np.interp(np.asarray(margin, dtype=np.float64), self.thresholds, self.probabilities)


def new_calibrator(name: str) -> Calibrator:
    """An unfitted calibrator by name: `platt` or `isotonic`."""
    if name == "platt":
        return PlattCalibrator()
    if name == "isotonic":
        return IsotonicCalibrator()
    raise ValueError(f"unknown calibrator {name!r}; expected 'platt' or 'isotonic'")


CALIBRATOR_NAMES = ("platt", "isotonic")
