"""`povrisk train` with field decisions: simulate -> train -> score -> decide flags -> retrain, with the
label corrections checked in the MLflow run and in the run's held-out rows."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from click.testing import Result
from typer.testing import CliRunner

from cli.main import app
from features.policy import load_policy
from store.cases import field_decisions, list_flags
from store.database import make_engine
from survey.io import read_survey
from training.pseudonyms import household_key, household_ref
from training.tracking import held_out_rows, key_folder, tracking_uri
from training.train import task_data

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_stores")]

runner = CliRunner()


def invoke(*arguments: str) -> Result:
    result = runner.invoke(app, list(arguments))
    assert result.exit_code == 0, result.output
    return result


def last_json_line(result: Result) -> dict:
    """What a command that prints a JSON line last on stdout (train, promote) printed there."""
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(*arguments: str) -> dict:
    return last_json_line(invoke(*arguments))


@pytest.fixture(scope="module")
def county(workplace: Path) -> Path:
    out = workplace / "county"
    size = ("--households", "600", "--villages", "8", "--rounds", "3", "--seed", "7", "--draws", "10")
    result = runner.invoke(app, ["simulate", "--out", str(out), *size])
    assert result.exit_code == 0, result.output
    return out


def _held_out_label(run_id: str, household_id: str, round: int) -> float:
    """A household's label among a run's held-out rows, which MLflow keeps under a keyed hash."""
    reference = household_ref(household_id, household_key(key_folder(tracking_uri())))
    return float(held_out_rows(run_id)["label"][(reference, round)])


def _run_record(run_id: str) -> mlflow.entities.Run:
    return mlflow.MlflowClient().get_run(run_id)


def test_training_without_a_flag_store_uses_no_field_labels(
    county: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = tmp_path / "no-flags.db"
    monkeypatch.setenv("POVRISK_DB_URL", f"sqlite:///{absent}")
    result = invoke("train", "--data", str(county), "--task", "poverty")
    assert "not used (the flag store holds no field decisions)" in " ".join(result.stderr.split())
    trained = last_json_line(result)
    assert trained["field_labels"] is None
    assert _run_record(trained["run_id"]).data.params["field_labels"] == "not used"
    assert not absent.exists()  # training does not make a flag store


def test_retraining_uses_field_decisions_and_logs_their_counts(county: Path, workplace: Path) -> None:
    for task in ("poverty", "relapse"):
        run("train", "--data", str(county), "--task", task)
        run("promote", "--task", task, "--force", "--reason", "the tests retrain on the same county")
    # round 2 first: a household keeps one open case, so round 1 adds cases only for the others
    for round_ in ("2", "1"):
        invoke(
            "score", "--data", str(county), "--round", round_, "--out", str(workplace / f"flags-{round_}.csv")
        )

    labels = task_data(read_survey(county), "poverty", load_policy()).label  # the rule's labels, round 2
    flags = pd.read_csv(workplace / "flags-2.csv", dtype={"household_id": str})
    poor_flags = flags[flags["category"] == "poor"]
    label_of = poor_flags["household_id"].map(lambda household: labels.get((household, 2)))
    poor_by_rule = poor_flags.loc[label_of == 1.0, "household_id"].tolist()
    not_poor_by_rule = poor_flags.loc[label_of == 0.0, "household_id"].tolist()
    watched = flags.loc[flags["category"] != "poor", "household_id"].tolist()
    assert len(poor_by_rule) >= 2 and not_poor_by_rule and watched
    earlier = pd.read_csv(workplace / "flags-1.csv", dtype={"household_id": str})
    earlier_poor = next(
        household
        for household in earlier.loc[earlier["category"] == "poor", "household_id"]
        if household not in set(flags["household_id"])
    )

    decide = {
        (poor_by_rule[0], 2): "verified",  # confirmed
        (poor_by_rule[1], 2): "rejected",  # 1 -> 0
        (not_poor_by_rule[0], 2): "verified",  # 0 -> 1
        (watched[0], 2): "verified",  # a watched category: not a poverty outcome
        (earlier_poor, 1): "verified",  # round 1: no poverty training row
    }
    stored = list_flags(make_engine()).set_index(["household_id", "round"])["id"]
    for key, status in decide.items():
        invoke("flags", "set", str(stored[key]), status, "--by", "cadre Wang")

    result = invoke("train", "--data", str(county), "--task", "poverty")
    assert "3 used: 1 confirmed, 1 flipped 0 -> 1, 1 flipped 1 -> 0" in " ".join(result.stderr.split())
    retrained = last_json_line(result)
    expected = {
        "decisions": 5,
        "not_about_poverty": 1,
        "used": 3,
        "confirmed": 1,
        "flipped_to_poor": 1,
        "flipped_to_not_poor": 1,
        "filled": 0,
        "unmatched": 1,
    }
    assert retrained["field_labels"] == expected
    record = _run_record(retrained["run_id"])
    assert record.data.params["field_labels"] == "used"
    assert {name: record.data.metrics[f"field_labels_{name}"] for name in expected} == expected
    assert _held_out_label(retrained["run_id"], poor_by_rule[1], 2) == 0.0
    assert _held_out_label(retrained["run_id"], not_poor_by_rule[0], 2) == 1.0

    relapse = run("train", "--data", str(county), "--task", "relapse")["field_labels"]
    # relapse labels come from every round's poverty status: the round-1 decision is used too
    assert relapse["not_about_poverty"] == 1
    assert relapse["used"] == 4 and relapse["unmatched"] == 0

    result = invoke("train", "--data", str(county), "--task", "poverty", "--no-field-labels")
    assert "field labels: not used (--no-field-labels)" in " ".join(result.stderr.split())
    ignored = last_json_line(result)
    assert ignored["field_labels"] is None
    assert _run_record(ignored["run_id"]).data.params["field_labels"] == "not used"
    assert _held_out_label(ignored["run_id"], poor_by_rule[1], 2) == 1.0


def test_training_logs_the_verification_findings_it_used(county: Path) -> None:
    """The simulated county carries a verification sample: its findings correct labels, and the run
    says how many and on how many rows the calibrator was fitted."""
    trained = run("train", "--data", str(county), "--task", "relapse")
    counts = trained["verification_labels"]
    survey = read_survey(county)
    assert counts["findings"] == len(survey.verification)
    record = _run_record(trained["run_id"])
    assert record.data.params["verification_labels"] == "used"
    assert record.data.metrics["verification_labels_findings"] == counts["findings"]
    # 600 households x 5 % verified hold too few falls to calibrate on: all out-of-fold rows are used
    # (the rows of the run: the flag store still holds the field decisions of the test above)
    data = task_data(survey, "relapse", load_policy(), field_decisions(make_engine()))
    assert record.data.metrics["calibrated_on_rows"] == len(data.y)
