"""The logistic candidate: fitted like sklearn's pipeline, explained exactly, carried by TaskModel."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from models.linear import fit_linear


def _rows(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1]
    values[rng.random(n) < 0.2, 1] = np.nan
    margin = 0.8 * values[:, 0] - 1.5 * (values[:, 2] / 0.1)
    y = (rng.random(n) < 1 / (1 + np.exp(-margin))).astype(float)
    return values, y


def test_the_margin_is_sklearn_logistic_regression_on_the_standardised_inputs() -> None:
    values, y = _rows()
    model = fit_linear(values, y, ("a", "b", "c"), c=0.5)
    filled = np.where(np.isnan(values), np.nanmedian(values, axis=0), values)
    z = (filled - filled.mean(axis=0)) / filled.std(axis=0)
    design = np.hstack([z, np.isnan(values[:, [1]]).astype(float)])
    reference = LogisticRegression(C=0.5, max_iter=2000).fit(design, y)
    np.testing.assert_allclose(model.margin_of(values), reference.decision_function(design), atol=1e-6)
    assert model.missing_columns.tolist() == [1]


def test_contributions_and_base_value_sum_to_the_margin() -> None:
    values, y = _rows()
    model = fit_linear(values, y, ("a", "b", "c"))
    contributions = model.contribution_values(values)
    assert contributions.shape == (len(values), 4)
    np.testing.assert_allclose(contributions.sum(axis=1), model.margin_of(values), atol=1e-9)
    # over the training rows every indicator's contribution averages to zero (the base value is the mean)
    np.testing.assert_allclose(contributions[:, :-1].mean(axis=0), 0.0, atol=1e-9)


def test_an_indicator_missing_in_every_training_row_is_inert() -> None:
    values, y = _rows()
    values[:, 2] = np.nan
    model = fit_linear(values, y, ("a", "b", "c"))
    assert model.coef[2] == 0.0
    seen = values.copy()
    seen[:, 2] = 5.0
    np.testing.assert_allclose(model.margin_of(seen), model.margin_of(values))


def test_a_column_count_that_does_not_match_the_names_is_refused() -> None:
    values, y = _rows()
    with pytest.raises(ValueError, match="3 columns for 2 feature names"):
        fit_linear(values, y, ("a", "b"))


def test_a_blended_task_model_explains_its_own_margin_and_survives_pickling(synthetic, booster) -> None:
    from models.calibration import PlattCalibrator
    from models.predictor import TaskModel
    from models.spec import LightGBMSpec

    X, y = synthetic
    values = X.to_numpy(dtype=np.float64)
    model = TaskModel(
        task="poverty",
        booster=booster,
        calibrator=PlattCalibrator().fit(booster.predict(values, raw_score=True), y.to_numpy()),
        feature_names=tuple(X.columns),
        metrics={},
        trained_rounds=(0,),
        data_hash="abc",
        spec=LightGBMSpec(),
    )
    linear = fit_linear(values, y.to_numpy(), tuple(X.columns))
    for weight, name in ((0.0, "lightgbm"), (0.5, "blend"), (1.0, "logistic")):
        blend = replace(model, linear=linear, blend_weight=weight)
        assert blend.candidate == name
        contributions = blend.contribution_values(values)
        np.testing.assert_allclose(contributions.sum(axis=1), blend.margin_of(values), atol=1e-6)
        expected = (1 - weight) * booster.predict(values, raw_score=True) + weight * linear.margin_of(values)
        np.testing.assert_allclose(blend.margin_of(values), expected, atol=1e-9)
        again = pickle.loads(pickle.dumps(blend.without_booster()))
        assert again.blend_weight == weight and (again.linear is not None)
    with pytest.raises(ValueError, match="needs the linear model"):
        replace(model, blend_weight=0.5)


def test_values_beyond_the_training_range_are_held_at_its_edge() -> None:
    values, y = _rows()
    model = fit_linear(values, y, ("a", "b", "c"))
    edge = values[np.argmax(values[:, 0])].copy()
    beyond = edge.copy()
    beyond[0] = 1e12
    np.testing.assert_allclose(model.margin_of(beyond[None, :]), model.margin_of(edge[None, :]))


def test_a_direction_the_policy_is_sure_of_is_respected() -> None:
    values, y = _rows()
    free = fit_linear(values, y, ("a", "b", "c"))
    assert free.coef[0] > 0  # the label rises with a
    bound = fit_linear(values, y, ("a", "b", "c"), monotone={"a": -1, "c": -1})
    assert bound.coef[0] == 0.0, "a rise of a may not raise the risk: left out"
    assert bound.coef[2] < 0, "c already lowers it: kept"


def test_a_row_gets_the_same_margin_alone_or_among_others() -> None:
    values, y = _rows(n=2000)
    model = fit_linear(values, y, ("a", "b", "c"))
    together = model.margin_of(values)
    alone = np.array([model.margin_of(values[[row]])[0] for row in range(0, 2000, 97)])
    assert np.array_equal(together[::97], alone)
