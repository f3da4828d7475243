"""Metrics for a binary risk score, as targeting practice reads them.

- roc_auc, pr_auc (average precision): ranking quality.
- brier: mean squared error of the probability.
- ece: expected calibration error over 10 equal-width probability bins [0, 0.1), ..., [0.9, 1.0]:
  sum over bins of (bin share of rows) x |mean label - mean probability|.
- Flagging the top `coverage` share of rows by probability (ties broken by row order):
  exclusion_error = share of true positives not flagged; inclusion_error = share of flagged rows that
  are negative; macro_f1 = mean F1 of the two classes under that flagging. `coverage` defaults to the
  observed positive share (so as many are flagged as are poor).
- recall_at_5pct / recall_at_10pct: share of positives among the top 5 % / 10 % (rounded up to whole rows);
  precision_at_10pct: share of positives among the top 10 %.
Any metric that is undefined for the data (e.g. AUC with one class) is NaN.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

ECE_BINS = 10
METRIC_KEYS = (
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
    "exclusion_error",
    "inclusion_error",
    "macro_f1",
    "recall_at_5pct",
    "recall_at_10pct",
    "precision_at_10pct",
)


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per non-empty equal-width probability bin (the last includes 1.0): its lower bound `bin`, row
    count `n`, mean predicted probability `predicted` and observed positive rate `observed`."""
    bin_of_row = np.minimum((p * bins).astype(int), bins - 1)
    table = []
    for bin_index in np.unique(bin_of_row):
        in_bin = bin_of_row == bin_index
        table.append(
            {
                "bin": float(bin_index / bins),
                "n": int(in_bin.sum()),
                "predicted": float(p[in_bin].mean()),
                "observed": float(y[in_bin].mean()),
            }
        )
    return table


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over `bins` equal-width bins of the probability (the last bin includes 1.0)."""
    if len(y) == 0:
        return math.nan
    table = reliability_table(y, p, bins)
    return float(sum(row["n"] * abs(row["observed"] - row["predicted"]) for row in table) / len(y))


def top_share_mask(p: np.ndarray, share: float) -> np.ndarray:
    """Boolean mask of the ceil(share x n) rows with the highest probability (stable on ties)."""
    n_flagged = min(len(p), math.ceil(share * len(p) - 1e-9))
    order = np.argsort(-p, kind="stable")
    mask = np.zeros(len(p), dtype=bool)
    mask[order[:n_flagged]] = True
    return mask


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else math.nan


def _f1(true_positive: float, flagged: float, actual: float) -> float:
    return _ratio(2.0 * true_positive, flagged + actual)


def binary_metrics(y: np.ndarray, p: np.ndarray, coverage: float | None = None) -> dict[str, float]:
    """All metrics of a probability `p` against 0/1 labels `y` (see the module docstring)."""
    labels = np.asarray(y, dtype=np.float64)
    probabilities = np.asarray(p, dtype=np.float64)
    if labels.shape != probabilities.shape:
        raise ValueError(f"y and p differ in shape: {labels.shape} vs {probabilities.shape}")
    if np.isnan(labels).any() or np.isnan(probabilities).any():
        raise ValueError("y and p must not hold NaN; drop unlabelled rows first")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("y must be 0/1")
    if ((probabilities < 0) | (probabilities > 1)).any():
        raise ValueError("p must be probabilities in [0, 1]")
    if coverage is not None and not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    if len(labels) == 0:
        return dict.fromkeys(METRIC_KEYS, math.nan)

    both_classes = len(np.unique(labels)) == 2
    positives = labels.sum()
    share = coverage if coverage is not None else labels.mean()
    flagged = top_share_mask(probabilities, share)
    hits = labels[flagged].sum()
    negatives_unflagged = ((~flagged) & (labels == 0)).sum()
    top_5, top_10 = top_share_mask(probabilities, 0.05), top_share_mask(probabilities, 0.10)
    return {
        "roc_auc": float(roc_auc_score(labels, probabilities)) if both_classes else math.nan,
        "pr_auc": float(average_precision_score(labels, probabilities)) if both_classes else math.nan,
        "brier": float(np.mean((probabilities - labels) ** 2)),
        "ece": expected_calibration_error(labels, probabilities),
        "exclusion_error": _ratio(positives - hits, positives),
        "inclusion_error": _ratio(flagged.sum() - hits, flagged.sum()),
        "macro_f1": float(
            np.nanmean(
                [
                    _f1(hits, flagged.sum(), positives),
                    _f1(negatives_unflagged, (~flagged).sum(), len(labels) - positives),
                ]
            )
        )
        if both_classes
        else math.nan,
        "recall_at_5pct": _ratio(labels[top_5].sum(), positives),
        "recall_at_10pct": _ratio(labels[top_10].sum(), positives),
        "precision_at_10pct": _ratio(labels[top_10].sum(), top_10.sum()),
    }


def multiclass_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray | None = None) -> float:
    """Unweighted mean over `classes` (default: the classes in `y_true`) of each class's F1 =
    2 TP / (2 TP + FP + FN); a class never true nor predicted has F1 0 (as scikit-learn's
    `f1_score(average="macro", labels=classes, zero_division=0)`). NaN for no rows."""
    truth = np.asarray(y_true)
    predicted = np.asarray(y_pred)
    if truth.shape != predicted.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {truth.shape} vs {predicted.shape}")
    if len(truth) == 0:
        return math.nan
    labels = np.unique(truth) if classes is None else np.asarray(classes)
    scores = []
    for label in labels:
        true_positive = float(((truth == label) & (predicted == label)).sum())
        denominator = float((truth == label).sum() + (predicted == label).sum())
        scores.append(2.0 * true_positive / denominator if denominator > 0 else 0.0)
    return float(np.mean(scores))
