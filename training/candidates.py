"""Which model to keep, chosen inside the training rows: the LightGBM model, an L2 logistic regression on
the same indicators (`models.linear`), or a blend of their log-odds.

Every candidate is scored the same way, on rows it did not see: the training rows' out-of-fold margins of
the booster and of the logistic regression (the same grouped folds), blended as
`(1 - w) * booster + w * logistic` for each weight `w` of `training/settings.yaml`'s
`candidates.blend_weights`, calibrated across folds by each calibrator, and scored by Brier. The lowest
Brier wins; the scores of all candidates are kept so the model card can say why. On small samples the
logistic regression or a blend often wins: a booster's extra flexibility costs more variance than it
buys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.calibration import CALIBRATOR_NAMES, new_calibrator
from models.linear import fit_linear
from models.predictor import candidate_name


@dataclass(frozen=True)
class CandidateChoice:
    """The chosen blend weight and calibrator, the chosen candidate's out-of-fold margins, its calibrator
    Brier scores, and the best Brier of every candidate (`candidate_label` -> score)."""

    weight: float
    calibrator: str
    margin: np.ndarray
    calibrator_brier: dict[str, float]
    candidate_brier: dict[str, float]

    @property
    def brier(self) -> float:
        return self.calibrator_brier[self.calibrator]

    @property
    def candidate(self) -> str:
        return candidate_name(self.weight)


def candidate_label(weight: float) -> str:
    """`lightgbm`, `logistic`, or `blend_0.25` (the logistic model's weight) — a metric-safe key."""
    name = candidate_name(weight)
    return f"{name}_{weight:g}" if name == "blend" else name


def linear_out_of_fold(
    values: np.ndarray,
    y: np.ndarray,
    fold: np.ndarray,
    feature_names: tuple[str, ...],
    c: float,
    monotone: Mapping[str, int] | None = None,
) -> np.ndarray:
    """Each row's logistic-regression margin from the model fitted on the other folds' rows."""
    margin = np.empty(len(y))
    for fold_id in np.unique(fold):
        inside = fold == fold_id
        model = fit_linear(values[~inside], y[~inside], feature_names, c, monotone)
        margin[inside] = model.margin_of(values[inside])
    return margin


def blended(tree_margin: np.ndarray, linear_margin: np.ndarray | None, weight: float) -> np.ndarray:
    """`(1 - weight) * tree + weight * linear` (the tree margin alone at weight 0)."""
    if weight == 0.0 or linear_margin is None:
        return tree_margin
    if weight == 1.0:
        return linear_margin
    return (1.0 - weight) * tree_margin + weight * linear_margin


def cross_fitted_probabilities(
    margin: np.ndarray, y: np.ndarray, fold: np.ndarray, name: str, rows: np.ndarray | None = None
) -> np.ndarray:
    """Each fold's margins calibrated by a `name` calibrator fitted on the other folds' margins (only
    on those among `rows`, when given)."""
    usable = np.ones(len(margin), dtype=bool) if rows is None else rows
    probabilities = np.empty_like(margin)
    for fold_id in np.unique(fold):
        inside = fold == fold_id
        fitted_on = ~inside & usable
        calibrator = new_calibrator(name).fit(margin[fitted_on], y[fitted_on])
        probabilities[inside] = calibrator.transform(margin[inside])
    return probabilities


def cross_fitted_brier(
    margin: np.ndarray, y: np.ndarray, fold: np.ndarray, scored: np.ndarray | None = None
) -> dict[str, float]:
    """Brier score of each calibrator fitted across folds on `margin` (on the `scored` rows only)."""
    rows = np.ones(len(y), dtype=bool) if scored is None else scored
    return {
        name: float(np.mean((cross_fitted_probabilities(margin, y, fold, name, rows)[rows] - y[rows]) ** 2))
        for name in CALIBRATOR_NAMES
    }


def choose_candidate(
    tree_margin: np.ndarray,
    linear_margin: np.ndarray | None,
    y: np.ndarray,
    fold: np.ndarray,
    weights: Sequence[float],
    scored: np.ndarray | None = None,
) -> CandidateChoice:
    """The blend weight and calibrator of lowest cross-fitted Brier (module docstring). Without a linear
    margin only the booster (weight 0) is a candidate."""
    tried = list(weights) if linear_margin is not None else [0.0]
    best: CandidateChoice | None = None
    scores: dict[str, float] = {}
    for weight in tried:
        margin = blended(tree_margin, linear_margin, weight)
        brier = cross_fitted_brier(margin, y, fold, scored)
        calibrator = min(brier, key=brier.__getitem__)
        scores[candidate_label(weight)] = brier[calibrator]
        if best is None or brier[calibrator] < best.brier:
            best = CandidateChoice(weight, calibrator, margin, brier, {})
    if best is None:
        raise ValueError("choose_candidate needs at least one blend weight")
    return CandidateChoice(best.weight, best.calibrator, best.margin, best.calibrator_brier, scores)


def choice_summary(candidate_brier: dict[str, float], chosen: str) -> str:
    """One line saying which candidate was kept and by how much it beat the others (Brier)."""
    others = ", ".join(f"{label} {score:.5f}" for label, score in candidate_brier.items() if label != chosen)
    kept = candidate_brier.get(chosen, float("nan"))
    return f"{chosen} kept: lowest cross-fitted out-of-fold Brier {kept:.5f} among the candidates" + (
        f" ({others})" if others else ""
    )
