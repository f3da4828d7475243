"""Drift between two training runs' data, and the promotion it gates: on a small simulated county, a
challenger trained on a clearly shifted population is refused without --force and considered with it;
a challenger trained on the same population is not held back. MLflow runs in a temporary SQLite store."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from features.policy import Policy, load_policy
from models.spec import LightGBMSpec
from monitoring.training_drift import held_out_drift, shared_features, training_data_drift
from survey.io import Survey
from survey.simulate import CountySettings, simulate_county
from training.tracking import (
    DRIFT_ARTIFACT,
    champion_run_id,
    load_champion,
    log_and_register,
    promote,
    tracking_uri,
)
from training.train import HELD_OUT_RISK, LABEL, TrainedTask, train_task

from ..drifted_survey import drifted_survey

QUICK = replace(LightGBMSpec(), n_estimators=60, num_leaves=7)


@pytest.fixture(autouse=True)
def private_mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test logs to its own SQLite store, never to the working folder's."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def county() -> Survey:
    return simulate_county(CountySettings(households=600, villages=8, rounds=3, seed=3, monte_carlo_draws=20))


@pytest.fixture(scope="module")
def champion_training(county: Survey, policy: Policy) -> TrainedTask:
    return train_task(county, "poverty", policy, spec=QUICK)


def test_shared_features_leave_out_label_and_risk_and_name_the_unshared() -> None:
    reference = pd.DataFrame(columns=["a", "b", LABEL, HELD_OUT_RISK])
    current = pd.DataFrame(columns=["b", "c", LABEL, HELD_OUT_RISK])
    assert shared_features(reference, current) == (["b"], ["a", "c"])


def test_held_out_rows_of_one_run_do_not_drift_from_themselves(
    champion_training: TrainedTask, policy: Policy
) -> None:
    rows = champion_training.held_out
    report, not_compared = held_out_drift(rows, rows, policy.drift)
    assert not_compared == []
    assert report.summary.drifted_features == () and not report.exceeds_policy
    assert report.summary.n_features == len(champion_training.model.feature_names)
    assert report.score is not None and report.score.psi == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="share no feature"):
        held_out_drift(rows[[LABEL, HELD_OUT_RISK]], rows, policy.drift)


@pytest.mark.integration
def test_promote_refuses_a_drifted_challenger_unless_forced(
    county: Survey, champion_training: TrainedTask, policy: Policy
) -> None:
    first = log_and_register(champion_training, policy)
    assert promote("poverty", policy)["promoted"]
    challenger_training = train_task(drifted_survey(county), "poverty", policy, spec=QUICK)
    second = log_and_register(challenger_training, policy)
    check = partial(training_data_drift, "poverty", policy=policy)

    refused = promote("poverty", policy, drift_check=check)

    assert refused["promoted"] is False and refused["refused_by"] == "drift"
    assert "--force" in refused["reason"] and "drifted" in refused["reason"]
    drift = refused["drift"]
    assert drift["exceeds_policy"] and drift["summary"]["share_drifted"] > policy.drift.max_drifted_share
    assert {"distance_road_km", "head_age"} <= set(drift["summary"]["drifted_features"])
    assert drift["reference_run_id"] == first["run_id"]
    assert load_champion("poverty").registered_version == "1", "the champion did not move"
    assert champion_run_id("poverty") == first["run_id"]

    client = MlflowClient(tracking_uri=tracking_uri())
    logged = client.get_run(drift["drift_run_id"])
    assert logged.data.tags["kind"] == "drift"
    assert logged.data.tags["reference_run_id"] == first["run_id"]
    assert logged.data.tags["current_run_id"] == second["run_id"]
    assert logged.data.metrics["drift_share_drifted"] == pytest.approx(drift["summary"]["share_drifted"])
    assert logged.data.metrics["drift_max_psi"] > policy.drift.psi_threshold
    document = mlflow.artifacts.load_dict(f"runs:/{drift['drift_run_id']}/{DRIFT_ARTIFACT}")
    assert len(document["features"]) == len(champion_training.model.feature_names)
    assert document["exceeds_policy"] is True and document["policy_version"] == policy.version

    forced = promote("poverty", policy, drift_check=check, force=True)

    assert forced["forced"] is True and "refused_by" not in forced
    assert forced["drift"]["exceeds_policy"], "the drift is still reported"
    assert "challenger_value" in forced and "champion_value" in forced, "the metric still decides"
    expected_champion = "2" if forced["promoted"] else "1"
    assert load_champion("poverty").registered_version == expected_champion
    if forced["promoted"]:
        assert "overridden by --force" in forced["reason"]


@pytest.mark.integration
def test_a_challenger_from_the_same_population_is_not_held_back_by_drift(
    champion_training: TrainedTask, policy: Policy
) -> None:
    other = simulate_county(
        CountySettings(households=600, villages=8, rounds=3, seed=4, monte_carlo_draws=20)
    )
    log_and_register(champion_training, policy)
    promote("poverty", policy)
    log_and_register(train_task(other, "poverty", policy, spec=QUICK), policy)

    decision = promote("poverty", policy, drift_check=partial(training_data_drift, "poverty", policy=policy))

    assert "refused_by" not in decision and decision["forced"] is False
    assert not decision["drift"]["exceeds_policy"]
    assert decision["drift"]["summary"]["share_drifted"] <= policy.drift.max_drifted_share
    assert "challenger_value" in decision, "the metric comparison ran"
