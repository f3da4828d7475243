"""Real MLflow round trip in a temporary SQLite store."""

import logging
import os
from dataclasses import replace

import numpy as np
import pytest

from features.policy import PolicyError
from models.predictor import load_task_model, registry_reference
from models.spec import LightGBMSpec
from training.tracking import (
    artifact_root,
    load_champion,
    load_champion_predictor,
    log_and_register,
    promote,
    quiet_mlflow,
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


def test_registry_reference_reads_name_version_and_alias():
    assert registry_reference("models:/povrisk-poverty/3") == ("povrisk-poverty", "3", None)
    assert registry_reference("models:/povrisk-relapse@champion") == ("povrisk-relapse", None, "champion")
    assert registry_reference("runs:/abc123/model") is None
    assert registry_reference("models:/povrisk-poverty/latest") is None
    assert registry_reference("/tmp/some/model") is None


@pytest.mark.integration
def test_register_promote_and_load_champion(monkeypatch, tmp_path, county, policy, trained, capfd):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    good = trained["poverty"]

    first = log_and_register(good, policy)
    assert first["version"] == 1 and first["alias"] == "challenger"
    assert (tmp_path / "mlartifacts").is_dir()
    decision = promote("poverty", policy)
    assert decision["promoted"] and "no champion" in decision["reason"]

    champion = load_champion("poverty")
    assert (champion.registered_name, champion.registered_version) == ("povrisk-poverty", "1")
    assert good.model.registered_name is None and good.model.registered_version is None
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
    assert load_champion("poverty").registered_version == "1", "the champion is still version 1"
    assert load_task_model("models:/povrisk-poverty/2").registered_version == "2"
    assert load_task_model("models:/povrisk-poverty@challenger").registered_version == "2"

    predictor = load_champion_predictor(policy)
    assert predictor.relapse is None and predictor.poverty is not None

    third = log_and_register(good, policy)
    repeat = promote("poverty", policy)
    assert not repeat["promoted"], "an equal model does not win by more than the margin"
    assert third["version"] == 3

    printed = capfd.readouterr().err
    assert "Downloading artifacts" not in printed, "no MLflow progress bars while logging and loading"
    assert "CloudPickle" not in printed
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ, "the variable is restored"


def test_a_champion_of_retired_policy_settings_gives_way(monkeypatch, tmp_path, county, policy, trained):
    """The service refuses a champion trained under other policy settings, so a challenger trained under
    the settings in force replaces it even without beating it."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    old_policy = policy.model_copy(update={"version": "2000.1"})
    log_and_register(replace(trained["poverty"], policy=old_policy), old_policy)
    promote("poverty", old_policy)
    stumps = replace(LightGBMSpec(), num_leaves=2, n_estimators=2, feature_fraction=0.1)
    log_and_register(train_task(county, "poverty", policy, spec=stumps), policy)
    decision = promote("poverty", policy)
    assert decision["promoted"] and "'2000.1', which is no longer in force" in decision["reason"]
    assert load_champion("poverty").registered_version == "2"


def test_champions_score_only_under_the_policy_they_were_trained_under(
    monkeypatch, tmp_path, policy, trained
):
    """As the service refuses them: `score` and `monitor` must not score a champion under other lines."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    log_and_register(trained["poverty"], policy)
    promote("poverty", policy)
    assert load_champion_predictor(policy).policy is policy
    other = policy.model_copy(update={"version": "province-1"})
    with pytest.raises(PolicyError, match=f"trained under policy '{policy.version}' but policy 'province-1'"):
        load_champion_predictor(other)


@pytest.mark.integration
def test_promote_or_load_without_models_raises(monkeypatch, tmp_path, policy):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(LookupError, match="challenger"):
        promote("relapse", policy)
    with pytest.raises(LookupError, match="no champion"):
        load_champion_predictor(policy)


def test_quiet_mlflow_is_scoped_and_keeps_a_callers_setting(monkeypatch, caplog):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    pyfunc_logger = logging.getLogger("mlflow.pyfunc")
    with caplog.at_level(logging.WARNING, logger="mlflow.pyfunc"), quiet_mlflow():
        assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
        pyfunc_logger.warning("Passing a Python object as `python_model` causes it to be serialized")
        pyfunc_logger.warning("another warning")
    assert [record.getMessage() for record in caplog.records] == ["another warning"]
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
    assert not pyfunc_logger.filters

    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    with quiet_mlflow():
        assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"
