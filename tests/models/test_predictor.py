import pickle
from dataclasses import replace

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from features.frame import FEATURE_NAMES
from features.policy import load_policy
from models.calibration import PlattCalibrator
from models.explain import contributions, load_phrases
from models.predictor import BOOSTER_ARTIFACT, PackagedPredictor, RiskPredictor, TaskModel, risk_tier
from models.spec import LightGBMSpec


def _task_model(booster, X, y, task: str = "poverty") -> TaskModel:
    margin = booster.predict(X.to_numpy(), raw_score=True)
    return TaskModel(
        task=task,
        booster=booster,
        calibrator=PlattCalibrator().fit(margin, y.to_numpy()),
        feature_names=tuple(X.columns),
        metrics={"roc_auc": 0.8},
        trained_rounds=(0,),
        data_hash="abc",
        spec=LightGBMSpec(),
        reference_values=X.median().to_dict(),
    )


@pytest.fixture(scope="module")
def task_model(synthetic, booster) -> TaskModel:
    X, y = synthetic
    return _task_model(booster, X, y)


def test_every_indicator_has_a_phrase():
    assert set(FEATURE_NAMES) <= set(load_phrases()["indicators"])


def test_predict_proba_selects_columns_and_tolerates_missing_ones(synthetic, task_model):
    X, _ = synthetic
    shuffled = X[X.columns[::-1]].assign(extra=1.0)
    np.testing.assert_allclose(task_model.predict_proba(shuffled), task_model.predict_proba(X))
    without_noise = task_model.predict_proba(X.drop(columns="distance_market_km"))
    assert without_noise.shape == (len(X),)
    assert np.all((without_noise >= 0) & (without_noise <= 1))
    assert task_model.predict_proba(X.iloc[:0]).shape == (0,)


def test_household_id_does_not_change_the_score(synthetic, task_model):
    X, _ = synthetic
    renamed = X.iloc[:5].rename(index=lambda hh: f"other-{hh}", level="household_id")
    np.testing.assert_array_equal(task_model.predict_proba(renamed), task_model.predict_proba(X.iloc[:5]))


def test_serious_illness_does_not_lower_the_risk(synthetic, task_model):
    X, _ = synthetic
    healthy = X.assign(shock_serious_illness=0.0)
    ill = X.assign(shock_serious_illness=1.0)
    assert np.all(task_model.predict_proba(ill) >= task_model.predict_proba(healthy) - 1e-12)


def test_risk_tier_bounds_from_policy():
    policy = load_policy()
    high, medium = policy.risk_tiers.high, policy.risk_tiers.medium
    tiers = risk_tier(np.array([high, high - 1e-9, medium, medium - 1e-9, np.nan]), policy)
    assert tiers.tolist() == ["high", "medium", "medium", "low", "unknown"]


def test_score_features_explains_the_model_that_sets_the_tier(synthetic, booster, task_model):
    X, y = synthetic
    relapse = _task_model(booster, X, 1.0 - y, task="relapse")  # an inverse model: high where poverty is low
    predictor = RiskPredictor(load_policy(), poverty=task_model, relapse=relapse)
    scores = predictor.score_features(X.iloc[:40], lang="en", top_k=2)
    assert list(scores.columns) == ["poverty_risk", "relapse_risk", "risk_tier", "reason_model", "reasons"]
    assert scores.index.equals(X.index[:40])
    expected = np.where(scores["relapse_risk"] > scores["poverty_risk"], "relapse", "poverty")
    assert scores["reason_model"].tolist() == expected.tolist()
    for reasons in scores["reasons"]:
        assert len(reasons) <= 2
        assert all(reason["contribution"] > 0 and reason["sentence"] for reason in reasons)
    assert set(scores["risk_tier"]) <= {"high", "medium", "low"}


def test_risk_predictor_needs_a_model():
    with pytest.raises(ValueError, match="at least one"):
        RiskPredictor(load_policy())


def test_reasons_only_for_the_rows_asked_and_the_same_as_one_at_a_time(synthetic, task_model):
    X, _ = synthetic
    predictor = RiskPredictor(load_policy(), poverty=task_model)
    rows = X.iloc[:30]
    explain = np.arange(30) % 3 == 0
    scores = predictor.score_features(rows, lang="en", explain=explain)
    assert all(reasons == [] for reasons in scores["reasons"][~explain])
    for position in np.flatnonzero(explain):
        alone = predictor.score_features(rows.iloc[[position]], lang="en")["reasons"].iloc[0]
        assert scores["reasons"].iloc[position] == alone


def test_packaged_predictor_pickles_without_booster_and_round_trips(tmp_path, synthetic, task_model):
    X, _ = synthetic
    packaged = PackagedPredictor(task_model, load_policy())
    restored = pickle.loads(pickle.dumps(packaged))
    assert restored.task_model.booster is None

    booster_file = tmp_path / "booster.txt"
    booster_file.write_text(task_model.booster.model_to_string())
    example = X.head(3).reset_index(drop=True)
    mlflow.pyfunc.save_model(
        path=str(tmp_path / "model"),
        python_model=packaged,
        artifacts={BOOSTER_ARTIFACT: str(booster_file)},
        signature=mlflow.models.infer_signature(example, packaged.predict(None, example)),
        input_example=example,
    )
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    output = loaded.predict(X.reset_index(drop=True))
    assert isinstance(output, pd.DataFrame) and list(output.columns) == ["risk"]
    np.testing.assert_allclose(output["risk"].to_numpy(), task_model.predict_proba(X), rtol=0, atol=1e-12)
    assert loaded.unwrap_python_model().task_model.feature_names == task_model.feature_names


def test_the_array_paths_answer_as_the_frame_paths(synthetic, task_model):
    X, _ = synthetic
    shuffled = X[X.columns[::-1]]
    values = task_model.feature_values(shuffled)
    np.testing.assert_array_equal(values, task_model.feature_matrix(X).to_numpy())
    np.testing.assert_array_equal(
        task_model.contribution_values(values), contributions(task_model.booster, X).to_numpy()
    )
    np.testing.assert_array_equal(task_model.proba_of(values), task_model.predict_proba(X))


def test_a_booster_whose_columns_differ_from_the_model_is_refused(task_model):
    renamed = replace(task_model, feature_names=tuple(reversed(task_model.feature_names)))
    with pytest.raises(ValueError, match="other columns"):
        RiskPredictor(load_policy(), poverty=renamed)
