from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.fit import fit_booster, inner_validation_mask
from models.spec import LightGBMSpec, load_spec


def test_default_yaml_matches_dataclass_defaults_plus_directions():
    assert replace(load_spec(), monotone={}) == LightGBMSpec()


def test_params_carry_seed_and_determinism():
    params = LightGBMSpec().params(seed=7)
    assert params["seed"] == 7
    assert params["deterministic"] is True
    assert params["objective"] == "binary"
    assert params["min_data_in_leaf"] == 20
    assert params["num_threads"] == 2


def test_small_data_trains_on_one_thread():
    assert LightGBMSpec().params(seed=0, n_rows=500)["num_threads"] == 1
    assert LightGBMSpec().params(seed=0, n_rows=50_000)["num_threads"] == 2


def test_load_spec_rejects_unknown_keys(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("num_leaves: 15\nleaves_typo: 3\n")
    with pytest.raises(ValueError, match="leaves_typo"):
        load_spec(path)


def test_spec_rejects_bad_values():
    with pytest.raises(ValueError, match="learning_rate"):
        LightGBMSpec(learning_rate=0.0)


def test_inner_validation_keeps_households_whole():
    groups = np.repeat(np.arange(50), 3)
    mask = inner_validation_mask(groups, 0.2, seed=1)
    assert mask.sum() == 30
    for group in np.unique(groups):
        assert len(set(mask[groups == group])) == 1


def test_fit_booster_learns_signal_and_stops_early(synthetic, booster):
    X, y = synthetic
    margin = booster.predict(X.to_numpy(), raw_score=True)
    assert roc_auc_score(y, margin) > 0.75
    assert booster.num_trees() < LightGBMSpec().n_estimators
    assert booster.feature_name() == list(X.columns)


def test_fit_booster_is_deterministic(synthetic):
    X, y = synthetic
    groups = X.index.get_level_values("household_id").to_numpy()
    spec = replace(LightGBMSpec(), n_estimators=50)
    first = fit_booster(X, y, groups, spec, seed=3).predict(X.to_numpy())
    second = fit_booster(X, y, groups, spec, seed=3).predict(X.to_numpy())
    np.testing.assert_array_equal(first, second)


def test_fit_booster_rejects_single_class_and_missing_labels(synthetic):
    X, y = synthetic
    groups = X.index.get_level_values("household_id").to_numpy()
    with pytest.raises(ValueError, match="single class"):
        fit_booster(X, np.zeros(len(y)), groups, LightGBMSpec(), seed=0)
    bad = y.to_numpy().copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="missing labels"):
        fit_booster(X, bad, groups, LightGBMSpec(), seed=0)


def test_monotone_directions_map_to_columns_and_are_checked():
    spec = LightGBMSpec(monotone={"shock_serious_illness": 1, "per_capita_net_income": -1})
    assert spec.monotone_constraints(["per_capita_net_income", "x", "shock_serious_illness"]) == [-1, 0, 1]
    assert load_spec().monotone["shock_serious_illness"] == 1
    with pytest.raises(ValueError, match="monotone"):
        LightGBMSpec(monotone={"shock_disaster": 2})
