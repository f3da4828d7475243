"""The paired cluster bootstrap of `training.metrics`' metrics, vectorised (what `povrisk compare` and the
promotion rule use).

Rows are (household, round): a replicate draws as many households as there are, with replacement, and a
household drawn k times brings each of its rows k times. A replicate is not built as a new frame but held
as a row of weights (how many times each row is in it), and every metric is computed for a block of
replicates at once, from each model's rows sorted once:

- brier and ece: weighted sums (ece from the per-bin sums of label minus probability);
- roc_auc and pr_auc: weighted positives and negatives through each group of tied probabilities
  (cumulative sums), tied rows counted as scikit-learn's `roc_auc_score` / `average_precision_score` do;
- flagging the top share (exclusion_error, inclusion_error, macro_f1, recall_at_*, precision_at_10pct):
  the first `ceil(share x rows)` rows of the sorted resample, a row drawn k times counting k times.

With every weight 1 each metric equals `binary_metrics` on the same rows; with integer weights, it equals
`binary_metrics` on the resample written out (ties in probability broken by row order). Both models are
scored on the same resamples, so what they share cancels in the difference: identical models differ by
exactly 0 in every replicate. 1,000 replicates of 50,000 rows take seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from training.metrics import ECE_BINS, METRIC_KEYS

BLOCK_CELLS = 4_000_000
"""Replicates x rows held at once (each such float64 matrix is 32 MB): what bounds memory."""


@dataclass(frozen=True)
class SortedScores:
    """One model's rows in descending probability (ties in row order), with the last position of each
    group of equal probabilities and each row's label minus probability in its calibration bin's column."""

    order: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    tie_ends: np.ndarray
    calibration_gap: np.ndarray

    @classmethod
    def of(cls, y: np.ndarray, p: np.ndarray) -> SortedScores:
        order = np.argsort(-p, kind="stable")
        labels, probabilities = y[order], p[order]
        tie_ends = np.flatnonzero(np.r_[probabilities[1:] != probabilities[:-1], True])
        bins = np.minimum((probabilities * ECE_BINS).astype(int), ECE_BINS - 1)
        gap = np.zeros((len(p), ECE_BINS))
        gap[np.arange(len(p)), bins] = labels - probabilities
        return cls(order, labels, probabilities, tie_ends, gap)


def household_weights(groups: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """`replicates` x rows: how many times each row is in each cluster bootstrap resample."""
    codes = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    households = int(codes.max()) + 1 if len(codes) else 0
    drawn = rng.integers(0, households, size=(replicates, households))
    drawn += households * np.arange(replicates)[:, None]
    counts = np.bincount(drawn.ravel(), minlength=replicates * households).reshape(replicates, households)
    return counts[:, codes].astype(np.float64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0."""
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, np.nan)


def _flag_count(share: np.ndarray | float, rows: np.ndarray) -> np.ndarray:
    """`top_share_mask`'s count: ceil(share x rows), at most all rows."""
    return np.minimum(rows, np.ceil(share * rows - 1e-9))


def _top_share_hits(
    labels: np.ndarray, cumulative: np.ndarray, cumulative_positives: np.ndarray, flagged: np.ndarray
) -> np.ndarray:
    """Positives among the first `flagged[j]` rows of sorted resample j; the row at which the count
    reaches `flagged[j]` may be taken only in part (some of its copies)."""
    replicates = np.arange(cumulative.shape[0])
    last = np.minimum((cumulative < flagged[:, None]).sum(axis=1), len(labels) - 1)
    left_out = cumulative[replicates, last] - flagged
    hits = cumulative_positives[replicates, last] - left_out * labels[last]
    return np.where(flagged > 0, hits, 0.0)


def weighted_metrics(
    scores: SortedScores, weights: np.ndarray, coverage: float | None = None
) -> dict[str, np.ndarray]:
    """Every metric of `METRIC_KEYS` for each row of `weights` (replicates x rows, rows in their original
    order): one value per replicate, NaN where undefined (e.g. a resample with a single class)."""
    ordered = weights[:, scores.order]
    labels = scores.labels
    positive_weight = ordered * labels
    cumulative = np.cumsum(ordered, axis=1)
    cumulative_positives = np.cumsum(positive_weight, axis=1)
    rows, positives = cumulative[:, -1], cumulative_positives[:, -1]
    negatives = rows - positives
    both_classes = (positives > 0) & (negatives > 0)

    brier = _ratio(ordered @ (scores.probabilities - labels) ** 2, rows)
    ece = _ratio(np.abs(ordered @ scores.calibration_gap).sum(axis=1), rows)

    # A threshold flags a group of tied probabilities whole or not at all: the counts that matter for the
    # curves are those through the end of each group.
    if len(scores.tie_ends) == len(labels):
        true_through, flagged_through = cumulative_positives, cumulative
        tied_positives, tied_negatives = positive_weight, ordered - positive_weight
    else:
        true_through = cumulative_positives[:, scores.tie_ends]
        flagged_through = cumulative[:, scores.tie_ends]
        tied_positives = np.diff(true_through, axis=1, prepend=0.0)
        tied_negatives = np.diff(flagged_through - true_through, axis=1, prepend=0.0)
    negatives_through = flagged_through - true_through
    pairs_won = (tied_positives * (negatives[:, None] - negatives_through + 0.5 * tied_negatives)).sum(axis=1)
    # Weights are counts: where nothing is flagged yet there is no positive either (its precision counts 0).
    precision = true_through / np.maximum(flagged_through, 1.0)
    average_precision = (tied_positives * precision).sum(axis=1)

    share = coverage if coverage is not None else _ratio(positives, rows)
    flagged = _flag_count(np.nan_to_num(share), rows)
    hits = _top_share_hits(labels, cumulative, cumulative_positives, flagged)
    negatives_unflagged = negatives - (flagged - hits)
    f1_positive = _ratio(2.0 * hits, flagged + positives)
    f1_negative = _ratio(2.0 * negatives_unflagged, (rows - flagged) + negatives)
    top_5, top_10 = _flag_count(0.05, rows), _flag_count(0.10, rows)
    hits_5 = _top_share_hits(labels, cumulative, cumulative_positives, top_5)
    hits_10 = _top_share_hits(labels, cumulative, cumulative_positives, top_10)
    return {
        "roc_auc": np.where(both_classes, _ratio(pairs_won, positives * negatives), np.nan),
        "pr_auc": np.where(both_classes, _ratio(average_precision, positives), np.nan),
        "brier": brier,
        "ece": ece,
        "exclusion_error": _ratio(positives - hits, positives),
        "inclusion_error": _ratio(flagged - hits, flagged),
        # with both classes neither F1 has a zero denominator
        "macro_f1": np.where(both_classes, (f1_positive + f1_negative) / 2.0, np.nan),
        "recall_at_5pct": _ratio(hits_5, positives),
        "recall_at_10pct": _ratio(hits_10, positives),
        "precision_at_10pct": _ratio(hits_10, top_10),
    }


def bootstrap_differences(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    groups: np.ndarray,
    coverage: float | None = None,
    replicates: int = 1000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Each metric's difference a - b in each of `replicates` paired cluster bootstrap resamples of the
    households `groups` (the same resample scores both models), seeded."""
    if replicates < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    labels = np.asarray(y, dtype=np.float64)
    if len(labels) == 0:
        return {key: np.full(replicates, math.nan) for key in METRIC_KEYS}
    a = SortedScores.of(labels, np.asarray(p_a, dtype=np.float64))
    b = SortedScores.of(labels, np.asarray(p_b, dtype=np.float64))
    rng = np.random.default_rng(seed)
    block = max(1, BLOCK_CELLS // len(labels))
    parts: dict[str, list[np.ndarray]] = {key: [] for key in METRIC_KEYS}
    for start in range(0, replicates, block):
        weights = household_weights(groups, min(block, replicates - start), rng)
        of_a, of_b = weighted_metrics(a, weights, coverage), weighted_metrics(b, weights, coverage)
        for key in METRIC_KEYS:
            parts[key].append(of_a[key] - of_b[key])
    return {key: np.concatenate(values) for key, values in parts.items()}


def percentile_interval(differences: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval (`level`) of the replicates; NaN when more than a tenth of them are
    undefined (resamples without both classes), since the rest would be a biased sample."""
    finite = differences[~np.isnan(differences)]
    if len(finite) == 0 or len(finite) < 0.9 * len(differences):
        return (math.nan, math.nan)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return (float(low), float(high))


def paired_bootstrap(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    groups: np.ndarray,
    coverage: float | None = None,
    replicates: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Per metric, the percentile interval (`level`) of the difference a - b over a paired cluster
    bootstrap of households (`bootstrap_differences`)."""
    differences = bootstrap_differences(y, p_a, p_b, groups, coverage, replicates, seed)
    return {key: percentile_interval(values, level) for key, values in differences.items()}
