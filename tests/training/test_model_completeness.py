"""A registered version never points at a partial model: registration checks the logged model's files
and status first, and loading the champion refuses a version whose files are gone."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient

from training import tracking
from training.tracking import IncompleteModel, logged_model_problems


def client() -> MlflowClient:
    return MlflowClient(tracking_uri=tracking.tracking_uri())


def model_folder(model_id: str) -> Path:
    """Where the SQLite store's logged model keeps its files."""
    return Path(urlparse(client().get_logged_model(model_id).artifact_location).path)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("remove", "artifacts/booster.txt is missing"),
        ("truncate", "artifacts/booster.txt holds 100 bytes, not"),
    ],
)
def test_a_model_whose_files_are_incomplete_is_not_registered(trained, policy, monkeypatch, damage, problem):
    log_model = mlflow.pyfunc.log_model

    def logged_then_damaged(*arguments, **keywords):
        info = log_model(*arguments, **keywords)
        booster = model_folder(info.model_id) / "artifacts" / "booster.txt"
        if damage == "remove":
            booster.unlink()
        else:
            booster.write_bytes(booster.read_bytes()[:100])
        return info

    monkeypatch.setattr(mlflow.pyfunc, "log_model", logged_then_damaged)
    with pytest.raises(IncompleteModel, match=problem) as raised:
        tracking.log_and_register(trained["poverty"], policy)
    assert "nothing was registered" in str(raised.value)
    assert client().search_model_versions(f"name = '{tracking.registered_name('poverty')}'") == []
    (run,) = client().search_runs([client().get_experiment_by_name(tracking.EXPERIMENT_NAME).experiment_id])
    assert run.info.status == "FAILED"


def test_a_pending_logged_model_is_incomplete():
    experiment_id = tracking._experiment_id(tracking._client())
    pending = client().create_logged_model(experiment_id, name="model")
    assert pending.status == LoggedModelStatus.PENDING
    problems = logged_model_problems(client(), pending.model_id)
    assert problems[0] == "its status is PENDING, not READY (it was never finished)"
    assert problems[1:] == [
        "MLmodel is missing",
        "python_model.pkl is missing",
        "artifacts/booster.txt is missing",
    ]


@pytest.mark.integration
def test_a_champion_whose_files_are_gone_is_refused(trained, policy):
    registered = tracking.log_and_register(trained["poverty"], policy)
    assert tracking.promote("poverty", policy)["promoted"]
    assert tracking.load_champion("poverty").registered_version == str(registered["version"])
    version = client().get_model_version(registered["model_name"], str(registered["version"]))
    (model_folder(version.source.removeprefix("models:/")) / "python_model.pkl").unlink()
    with pytest.raises(IncompleteModel, match=r"version 1\) cannot be loaded: python_model.pkl is missing"):
        tracking.load_champion("poverty")
