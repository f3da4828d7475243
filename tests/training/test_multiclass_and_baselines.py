"""Unit tests: macro-F1 over levels, class multipliers, the multiclass booster, baseline column choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from models.multiclass import class_probabilities, fit_multiclass_booster
from models.spec import LightGBMSpec
from training.baselines import AF_POOR, AF_SCORE, baseline_columns, fit_predict_baseline
from training.fold_model import class_multipliers, logit_of_share, predicted_levels
from training.metrics import multiclass_macro_f1
from training.settings import BaselineColumns, TuningSettings


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_f1_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, 200)
    predicted = np.where(rng.random(200) < 0.5, truth, rng.integers(0, 3, 200))  # class 3 under-predicted
    expected = f1_score(truth, predicted, average="macro", labels=[0, 1, 2, 3], zero_division=0)
    assert multiclass_macro_f1(truth, predicted, np.arange(4)) == pytest.approx(expected)


def test_macro_f1_counts_a_never_predicted_class_as_zero():
    assert multiclass_macro_f1(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0]), np.arange(2)) == pytest.approx(
        (2 * 2 / (2 + 4) + 0.0) / 2
    )


def test_macro_f1_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        multiclass_macro_f1(np.array([0, 1]), np.array([0]))


def test_class_multipliers_raise_macro_f1_on_a_rare_class():
    rng = np.random.default_rng(0)
    levels = rng.choice(4, size=600, p=[0.1, 0.2, 0.3, 0.4])
    logits = rng.normal(size=(600, 4)) + np.eye(4)[levels] * 0.8 + np.log([0.1, 0.2, 0.3, 0.4])
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    plain = multiclass_macro_f1(levels, predicted_levels(probabilities, np.ones(4)), np.arange(4))
    multipliers = class_multipliers(probabilities, levels)
    tuned = multiclass_macro_f1(levels, predicted_levels(probabilities, multipliers), np.arange(4))
    assert tuned > plain
    assert multipliers[0] > multipliers[3]  # the rare extreme-poor class is boosted


def test_logit_of_share_sums_the_poor_classes():
    probabilities = np.array([[0.1, 0.4, 0.3, 0.2]])
    assert logit_of_share(probabilities, (0, 1))[0] == pytest.approx(0.0)


def test_multiclass_booster_learns_levels_and_rejects_bad_levels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    levels = np.digitize(x + rng.normal(scale=0.3, size=400), [-1.0, 0.0, 1.0])
    X = pd.DataFrame({"x": x, "noise": rng.normal(size=400)})
    groups = np.arange(400)
    booster = fit_multiclass_booster(X, levels, groups, LightGBMSpec(n_estimators=60), 0, 4)
    probabilities = class_probabilities(booster, X)
    assert probabilities.shape == (400, 4)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert (probabilities.argmax(axis=1) == levels).mean() > 0.6
    with pytest.raises(ValueError, match="levels must be integers"):
        fit_multiclass_booster(X, levels + 1, groups, LightGBMSpec(), 0, 4)


def test_baseline_columns_take_the_first_present_candidate_once():
    frame = pd.DataFrame(
        {
            "assets": [1.0, 2.0, 3.0],
            "workers": [1.0, 0.0, 2.0],
            "income": [np.nan, np.nan, np.nan],
            AF_SCORE: [0.0, 0.25, 0.5],
            AF_POOR: [0.0, 0.0, 1.0],
        }
    )
    settings = BaselineColumns(
        traditional_three={"income": ("income", "assets"), "labour": ("workers",), "assets": ("assets",)},
        proxy_means_test=("workers", "missing"),
    )
    columns = baseline_columns(frame, settings)
    assert columns["traditional_three"] == ["assets", "workers"]
    assert columns["proxy_means_test"] == ["workers"]
    with pytest.raises(ValueError, match="proxy_means_test"):
        baseline_columns(frame, BaselineColumns(traditional_three={"labour": ("workers",)}))


def test_baseline_uses_only_training_rows():
    # the test rows carry labels opposite to the pattern of the training rows: a model that saw them
    # would not rank them perfectly backwards
    x = np.r_[np.linspace(0, 1, 40), np.linspace(0, 1, 10)]
    y = np.r_[(np.linspace(0, 1, 40) > 0.5).astype(float), (np.linspace(0, 1, 10) <= 0.5).astype(float)]
    frame = pd.DataFrame({"x": x})
    train, test = np.arange(40), np.arange(40, 50)
    p_poor, level = fit_predict_baseline(frame, ["x"], y, None, train, test)
    assert level is None
    assert np.all(np.diff(p_poor) > 0)  # rising with x, as in the training rows only


def test_tuning_settings_reject_nonsense():
    with pytest.raises(ValueError, match="n_trials"):
        TuningSettings(n_trials=0)
    with pytest.raises(ValueError, match="inner_folds"):
        TuningSettings(inner_folds=1)
