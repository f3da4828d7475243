"""The poverty model of one outer cross-validation fold, chosen and fitted on that fold's training rows.

Everything below sees the training rows only; the evaluation rows are touched once, to predict.

Without poverty levels (binary survey label):
1. tune the binary booster (`training.tuning.tune_spec`, inner grouped CV on the training rows);
2. drop features with zero inner gain (`training.tuning.selected_features`);
3. choose a Platt or isotonic calibrator by cross-fitted Brier on the inner out-of-fold margins and fit it
   on all of them; fit the booster on all training rows; predict.
   The tuned booster is one candidate: an L2 logistic regression on all the indicators and blends of the
   two (`training.candidates`) are scored on the same inner folds, and the candidate + calibrator of
   lowest cross-fitted Brier is the fold's model.

With poverty levels (`label_level`, K ordered classes of which the poor ones are `poor_classes`):
1. tune a K-class booster (softmax) on the inner CV's multi-log-loss;
2. drop zero-gain features;
3. per-class probability multipliers `w` (predicted level = argmax_k w_k p_k) maximising the inner
   out-of-fold macro-F1 over the K levels, by coordinate ascent on a log grid — this is the class
   weighting, chosen on the training rows only;
4. the poor-vs-not probability: either P(level in poor_classes) of the K-class model or a separate binary
   booster (same tuned spec and features), whichever ranks the inner out-of-fold rows better (ROC-AUC);
   then calibrated as above, as one candidate among the logistic regression and the blends (binary path).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from models.calibration import Calibrator, new_calibrator
from models.fit import fit_booster
from models.linear import fit_linear
from models.multiclass import class_probabilities, fit_multiclass_booster
from models.spec import LightGBMSpec
from training.candidates import blended, choose_candidate, linear_out_of_fold
from training.metrics import multiclass_macro_f1
from training.settings import ModelCandidates, TuningSettings
from training.splits import grouped_kfold
from training.train import raw_margin
from training.tuning import TUNED_FIELDS, inner_out_of_fold, selected_features, tune_spec

MULTIPLIER_GRID = np.geomspace(0.25, 4.0, 25)
MULTIPLIER_PASSES = 3
PROBABILITY_FLOOR = 1e-9


@dataclass(frozen=True)
class FoldPrediction:
    """The fold model's predictions on the evaluation rows and what was chosen on the training rows."""

    p_poor: np.ndarray
    level: np.ndarray | None
    params: dict[str, Any] = field(default_factory=dict)


def predicted_levels(probabilities: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    """argmax over classes of multiplier x probability (ties: the lowest class)."""
    return np.argmax(probabilities * multipliers[None, :], axis=1)


def class_multipliers(probabilities: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Per-class multipliers maximising macro-F1 of `predicted_levels` on these (out-of-fold) rows.

    Coordinate ascent: for each class in turn, the grid value that maximises macro-F1 with the others
    fixed (a strict improvement is needed to move), `MULTIPLIER_PASSES` passes, starting from all ones.
    """
    n_classes = probabilities.shape[1]
    classes = np.arange(n_classes)
    multipliers = np.ones(n_classes)
    best = multiclass_macro_f1(levels, predicted_levels(probabilities, multipliers), classes)
    for _ in range(MULTIPLIER_PASSES):
        for k in range(n_classes):
            for value in MULTIPLIER_GRID:
                trial = multipliers.copy()
                trial[k] = value
                score = multiclass_macro_f1(levels, predicted_levels(probabilities, trial), classes)
                if score > best + 1e-12:
                    best, multipliers = score, trial
    return multipliers


def logit_of_share(probabilities: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """log-odds of the summed probability of `classes` (the poor levels)."""
    share = np.clip(probabilities[:, list(classes)].sum(axis=1), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return np.log(share / (1.0 - share))


@dataclass(frozen=True)
class FoldCandidate:
    """The fold's chosen candidate: logistic weight, its fitted calibrator, and what was compared."""

    weight: float
    calibrator: Calibrator
    params: dict[str, Any]


def choose_fold_candidate(
    tree_margin: np.ndarray,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    fold: np.ndarray,
    candidates: ModelCandidates,
    monotone: Mapping[str, int],
) -> FoldCandidate:
    """The candidate (booster, logistic, blend) of lowest cross-fitted Brier on the inner folds."""
    names = tuple(str(c) for c in X_train.columns)
    linear_margin = (
        linear_out_of_fold(
            X_train.to_numpy(dtype=np.float64), y_train, fold, names, candidates.logistic_c, monotone
        )
        if any(weight > 0 for weight in candidates.blend_weights)
        else None
    )
    choice = choose_candidate(tree_margin, linear_margin, y_train, fold, candidates.blend_weights)
    calibrator = new_calibrator(choice.calibrator).fit(choice.margin, y_train)
    params = {"candidate": choice.candidate, "blend_weight": choice.weight} | {
        f"inner_brier_{label}": score for label, score in choice.candidate_brier.items()
    }
    return FoldCandidate(choice.weight, calibrator, params)


def candidate_margin(
    weight: float,
    tree_test_margin: np.ndarray,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_test: pd.DataFrame,
    candidates: ModelCandidates,
    monotone: Mapping[str, int],
) -> np.ndarray:
    """The chosen candidate's margins on the test rows (the logistic regression fitted on every training
    row when it has weight)."""
    if weight == 0.0:
        return tree_test_margin
    names = tuple(str(c) for c in X_train.columns)
    linear = fit_linear(X_train.to_numpy(dtype=np.float64), y_train, names, candidates.logistic_c, monotone)
    return blended(tree_test_margin, linear.margin_of(X_test.to_numpy(dtype=np.float64)), weight)


def _spec_params(spec: LightGBMSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in TUNED_FIELDS}


def _roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else float("nan")


def fit_binary_fold(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    groups_train: np.ndarray,
    X_test: pd.DataFrame,
    base: LightGBMSpec,
    seed: int,
    tuning: TuningSettings,
    candidates: ModelCandidates | None = None,
) -> FoldPrediction:
    """Binary path (module docstring)."""
    candidates = candidates or ModelCandidates()
    tuned = tune_spec("binary", X_train, y_train, groups_train, base, seed, tuning)
    kept = selected_features(tuned.gain)
    chosen = choose_fold_candidate(tuned.oof, X_train, y_train, tuned.fold, candidates, base.monotone)
    calibrator = chosen.calibrator
    booster = fit_booster(X_train[kept], y_train, groups_train, tuned.spec, seed)
    margin = candidate_margin(
        chosen.weight, raw_margin(booster, X_test[kept]), X_train, y_train, X_test, candidates, base.monotone
    )
    p_poor = calibrator.transform(margin)
    params = (
        _spec_params(tuned.spec)
        | chosen.params
        | {
            "tuning_trials": tuned.trials,
            "inner_log_loss": tuned.loss,
            "n_features": len(kept),
            "n_features_dropped": len(tuned.gain) - len(kept),
            "calibrator": calibrator.name,
            "binary_source": "binary_booster",
        }
    )
    return FoldPrediction(p_poor, None, params)


def fit_levels_fold(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    levels_train: np.ndarray,
    groups_train: np.ndarray,
    X_test: pd.DataFrame,
    base: LightGBMSpec,
    seed: int,
    tuning: TuningSettings,
    num_class: int,
    poor_classes: tuple[int, ...],
    candidates: ModelCandidates | None = None,
) -> FoldPrediction:
    """K-level path (module docstring)."""
    candidates = candidates or ModelCandidates()
    tuned = tune_spec("multiclass", X_train, levels_train, groups_train, base, seed, tuning, num_class)
    kept = selected_features(tuned.gain)
    multipliers = class_multipliers(tuned.oof, levels_train)
    inner_macro_f1 = multiclass_macro_f1(
        levels_train, predicted_levels(tuned.oof, multipliers), np.arange(num_class)
    )
    levels_margin = logit_of_share(tuned.oof, poor_classes)
    splits = grouped_kfold(groups_train, levels_train, tuning.inner_folds, seed)
    binary_inner = inner_out_of_fold("binary", X_train[kept], y_train, groups_train, tuned.spec, seed, splits)
    auc_levels, auc_binary = _roc_auc(y_train, levels_margin), _roc_auc(y_train, binary_inner.oof)
    use_binary = auc_binary > auc_levels
    margin, fold = (binary_inner.oof, binary_inner.fold) if use_binary else (levels_margin, tuned.fold)
    chosen = choose_fold_candidate(margin, X_train, y_train, fold, candidates, base.monotone)
    calibrator = chosen.calibrator

    booster = fit_multiclass_booster(X_train[kept], levels_train, groups_train, tuned.spec, seed, num_class)
    probabilities = class_probabilities(booster, X_test[kept])
    if use_binary:
        binary_booster = fit_booster(X_train[kept], y_train, groups_train, tuned.spec, seed)
        test_margin = raw_margin(binary_booster, X_test[kept])
    else:
        test_margin = logit_of_share(probabilities, poor_classes)
    test_margin = candidate_margin(
        chosen.weight, test_margin, X_train, y_train, X_test, candidates, base.monotone
    )
    params = (
        _spec_params(tuned.spec)
        | chosen.params
        | {
            "tuning_trials": tuned.trials,
            "inner_log_loss": tuned.loss,
            "inner_macro_f1": inner_macro_f1,
            "inner_roc_auc_levels": auc_levels,
            "inner_roc_auc_binary": auc_binary,
            "n_features": len(kept),
            "n_features_dropped": len(tuned.gain) - len(kept),
            "calibrator": calibrator.name,
            "binary_source": "binary_booster" if use_binary else "levels_model",
            "class_multipliers": ",".join(f"{m:.3g}" for m in multipliers),
        }
    )
    return FoldPrediction(
        calibrator.transform(test_margin), predicted_levels(probabilities, multipliers), params
    )
