"""Choosing among the LightGBM model, the logistic regression and their blend, inside the training rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.candidates import candidate_label, choice_summary, choose_candidate
from training.settings import ModelCandidates, TrainingSettings
from training.train import fit_calibrated


def _households(n: int, seed: int, truth: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Five standard-normal indicators (one with missing values); the label's log-odds are linear in two
    of them (`linear`) or an interaction no linear model can express (`interaction`)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, 5))
    if truth == "linear":
        margin = -1.0 + 1.2 * values[:, 0] - 0.9 * values[:, 1]
    else:
        margin = -1.0 + 3.0 * np.sign(values[:, 0] * values[:, 1])
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-margin))).astype(float)
    values[rng.random(n) < 0.1, 4] = np.nan
    X = pd.DataFrame(values, columns=[f"indicator_{j}" for j in range(5)])
    return X, y, np.array([f"h{i}" for i in range(n)])


def _fit(truth: str, n: int = 600):  # type: ignore[no-untyped-def]
    from models.spec import load_spec

    X, y, groups = _households(n, 0, truth)
    return fit_calibrated(X, y, groups, (load_spec(),), seed=0, folds=4, settings=TrainingSettings())


def test_on_a_small_sample_with_a_linear_truth_the_logistic_regression_is_chosen() -> None:
    fit = _fit("linear")
    assert fit.blend_weight == 1.0
    assert fit.linear is not None
    assert min(fit.candidate_brier, key=fit.candidate_brier.__getitem__) == "logistic"
    assert fit.candidate_brier["logistic"] < fit.candidate_brier["lightgbm"]


def test_where_the_truth_is_an_interaction_the_booster_carries_the_model() -> None:
    fit = _fit("interaction", n=1500)
    assert fit.blend_weight <= 0.25
    assert fit.candidate_brier["lightgbm"] < fit.candidate_brier["logistic"]


def test_the_chosen_candidates_out_of_fold_margins_are_the_blend_of_both() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(400) < 0.3).astype(float)
    tree, linear = rng.normal(size=400) + y, rng.normal(size=400) + 2 * y
    fold = np.arange(400) % 4
    choice = choose_candidate(tree, linear, y, fold, (0.0, 0.5, 1.0))
    assert set(choice.candidate_brier) == {"lightgbm", "blend_0.5", "logistic"}
    np.testing.assert_allclose(choice.margin, (1 - choice.weight) * tree + choice.weight * linear)
    assert choice.brier == min(choice.candidate_brier.values())
    without_linear = choose_candidate(tree, None, y, fold, (0.0, 0.5, 1.0))
    assert without_linear.weight == 0.0 and list(without_linear.candidate_brier) == ["lightgbm"]


def test_the_summary_names_the_kept_candidate_and_the_others_scores() -> None:
    line = choice_summary({"lightgbm": 0.101, "blend_0.5": 0.099, "logistic": 0.1}, candidate_label(0.5))
    assert line.startswith("blend_0.5 kept: lowest cross-fitted out-of-fold Brier 0.09900")
    assert "lightgbm 0.10100" in line and "logistic 0.10000" in line


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"blend_weights": ()}, "at least one weight"),
        ({"blend_weights": (1.5,)}, r"\[0, 1\]"),
        ({"logistic_c": 0.0}, "logistic_c"),
    ],
)
def test_bad_candidate_settings_are_refused(overrides, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        ModelCandidates(**overrides)
