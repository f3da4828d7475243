"""Real MLflow round trip in a temporary SQLite store."""

from dataclasses import replace

import numpy as np
import pytest

from models.spec import LightGBMSpec
from training.tracking import (
    artifact_root,
    load_champion,
    load_champion_predictor,
    log_and_register,
    promote,
    tracking_uri,
)
from training.train import train_task


def test_tracking_uri_defaults_to_sqlite_in_cwd(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert artifact_root(tracking_uri()) == (tmp_path / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert tracking_uri() == "http://tracking.example:5000"
    assert artifact_root(tracking_uri()) is None


@pytest.mark.integration
def test_register_promote_and_load_champion(monkeypatch, tmp_path, county, policy, trained):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    good = trained["poverty"]

    first = log_and_register(good, policy)
    assert first["version"] == 1 and first["alias"] == "challenger"
    assert (tmp_path / "mlartifacts").is_dir()
    decision = promote("poverty", policy)
    assert decision["promoted"] and "no champion" in decision["reason"]

    champion = load_champion("poverty")
    np.testing.assert_allclose(
        champion.predict_proba(good.held_out), good.model.predict_proba(good.held_out), rtol=0, atol=1e-12
    )
    assert champion.feature_names == good.model.feature_names

    stumps = replace(LightGBMSpec(), num_leaves=2, n_estimators=2, feature_fraction=0.1)
    worse = train_task(county, "poverty", policy, spec=stumps)
    assert worse.metrics["roc_auc"] < good.metrics["roc_auc"]
    second = log_and_register(worse, policy)
    assert second["version"] == 2
    refused = promote("poverty", policy)
    assert not refused["promoted"]
    assert refused["champion_version"] == 1 and refused["challenger_value"] < refused["champion_value"]
    assert load_champion("poverty").metrics == champion.metrics

    predictor = load_champion_predictor(policy)
    assert predictor.relapse is None and predictor.poverty is not None

    third = log_and_register(good, policy)
    repeat = promote("poverty", policy)
    assert not repeat["promoted"], "an equal model does not win by more than the margin"
    assert third["version"] == 3


@pytest.mark.integration
def test_promote_or_load_without_models_raises(monkeypatch, tmp_path, policy):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(LookupError, match="challenger"):
        promote("relapse", policy)
    with pytest.raises(LookupError, match="no champion"):
        load_champion_predictor(policy)
