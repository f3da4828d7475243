"""The `povrisk` commands end to end on a small county: the contracts of DESIGN.md, run for real
(a real MLflow SQLite store and a real SQLite flag store in a temporary folder)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import PROMOTION_REFUSED, app

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_stores")]

runner = CliRunner()


@pytest.fixture(scope="module")
def county(workplace: Path) -> Path:
    out = workplace / "county"
    arguments = ["simulate", "--out", str(out), "--households", "600", "--villages", "8", "--rounds", "3"]
    result = runner.invoke(app, [*arguments, "--seed", "3", "--draws", "20"])
    assert result.exit_code == 0, result.output
    return out


def invoke(*arguments: str) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr)."""
    result = runner.invoke(app, list(arguments))
    return result.exit_code, result.output


def last_json_line(*arguments: str) -> dict:
    """Run a command that must succeed and parse the last line of its standard output."""
    result = runner.invoke(app, list(arguments))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_simulate_writes_a_valid_panel_with_ground_truth(county: Path) -> None:
    assert {p.name for p in county.iterdir()} >= {"households.parquet", "members.parquet", "truth.parquet"}
    households = pd.read_parquet(county / "households.parquet")
    assert sorted(households["round"].unique()) == [0, 1, 2]
    assert invoke("validate", str(county)) == (0, f"{county}: valid\n")


def test_validate_names_every_bad_column_and_exits_1(county: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    members = pd.read_parquet(county / "members.parquet")
    members.loc[members.index[0], "age"] = -5
    members.to_parquet(bad / "members.parquet")
    households = pd.read_parquet(county / "households.parquet")
    households.loc[households.index[1], "sex_of_head"] = "n/a"  # an extra column is allowed
    households.loc[households.index[2], "cooking_fuel"] = "dung"
    pd.concat([households, households.head(1)]).to_parquet(bad / "households.parquet")

    code, output = invoke("validate", str(bad))

    assert code == 1
    for named in ("age", "cooking_fuel", "household_id"):
        assert named in output
    assert "sex_of_head" not in output


def test_validate_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    code, output = invoke("validate", str(tmp_path / "nowhere"))
    assert code == 1
    assert "nowhere" in output


def test_train_evaluate_promote_score_and_follow_a_flag(county: Path, workplace: Path) -> None:
    for task in ("poverty", "relapse"):
        metrics = last_json_line("train", "--data", str(county), "--task", task)
        assert metrics["task"] == task
        assert 0.5 <= metrics["roc_auc"] <= 1.0
        assert last_json_line("promote", "--task", task)["promoted"] is True

    evaluation = workplace / "relapse.json"
    arguments = ("--data", str(county), "--task", "relapse", "--seed", "0,1", "--json", str(evaluation))
    code, output = invoke("evaluate", *arguments)
    assert code == 0, output
    document = json.loads(evaluation.read_text())
    assert document["task"] == "relapse"
    assert {"roc_auc", "pr_auc", "ece", "roc_auc_std"} <= set(document["model"])
    assert document["baselines"] and "roc_auc" in document["oracle"]

    flags_file = workplace / "flags.csv"
    arguments = ("--data", str(county), "--round", "2", "--out", str(flags_file), "--lang", "en")
    code, output = invoke("score", *arguments)
    assert code == 0, output
    flags = pd.read_csv(flags_file)
    assert len(flags) == len(pd.read_parquet(flags_file.with_suffix(".parquet"))) > 0
    assert set(flags["round"]) == {2}
    # most flags carry reasons; a household on a flat step of an isotonic calibrator has none that
    # measurably raises its risk, and is shown none rather than a reason worth 0 points (73 % of this
    # small county's flags have reasons)
    assert flags["reasons"].str.len().gt(0).mean() > 0.6

    code, output = invoke("flags", "list", "--status", "flagged")
    assert code == 0 and "flagged" in output
    first_id = output.splitlines()[1].split()[0]
    assert invoke("flags", "set", first_id, "verified", "--by", "cadre Li", "--note", "visited")[0] == 0
    code, output = invoke("flags", "set", first_id, "risk_eliminated", "--by", "cadre Li")
    assert code == 1
    assert "verified" in output and "risk_eliminated" in output


def test_score_a_round_that_is_not_there(county: Path, tmp_path: Path) -> None:
    code, output = invoke("score", "--data", str(county), "--round", "9", "--out", str(tmp_path / "f.csv"))
    assert code == 1
    assert "no round 9" in output
    assert not (tmp_path / "f.csv").exists()


def test_seeds_must_be_integers(county: Path, tmp_path: Path) -> None:
    evaluation = tmp_path / "e.json"
    arguments = ("--data", str(county), "--task", "relapse", "--seed", "0,x", "--json", str(evaluation))
    code, output = invoke("evaluate", *arguments)
    assert code != 0
    assert "seeds must be integers" in output


def test_promote_refuses_a_challenger_trained_on_drifted_data_unless_forced(
    county: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from survey.io import read_survey, write_survey

    from ..drifted_survey import drifted_survey

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # a registry of its own
    drifted = tmp_path / "drifted"
    write_survey(drifted_survey(read_survey(county)), drifted)
    last_json_line("train", "--data", str(county), "--task", "poverty")
    assert last_json_line("promote", "--task", "poverty")["promoted"] is True
    last_json_line("train", "--data", str(drifted), "--task", "poverty")

    result = runner.invoke(app, ["promote", "--task", "poverty"])

    assert result.exit_code == PROMOTION_REFUSED == 3, result.output
    assert "refused" in result.output and "--force" in result.output
    refused = json.loads(result.stdout.strip().splitlines()[-1])
    assert refused["promoted"] is False and refused["refused_by"] == "drift"
    assert refused["drift"]["summary"]["share_drifted"] > refused["drift"]["thresholds"]["max_drifted_share"]
    assert refused["champion_version"] == 1

    unexplained = runner.invoke(app, ["promote", "--task", "poverty", "--force"])
    assert unexplained.exit_code == 1 and "--reason" in unexplained.output
    forced = last_json_line(
        "promote", "--task", "poverty", "--force", "--reason", "drift expected: new villages", "--by", "Zhao"
    )
    assert forced["forced"] is True and forced["promoted"] is True and "refused_by" not in forced
    assert forced["drift"]["exceeds_policy"] is True and "drift expected: new villages" in forced["reason"]
    client = mlflow.MlflowClient()
    crowned = client.get_model_version_by_alias("povrisk-poverty", "champion")
    assert str(crowned.version) == "2" and crowned.tags["previous_champion"] == "1"
    assert crowned.tags["promoted_by"] == "Zhao" and "new villages" in crowned.tags["promotion_reason"]

    again = runner.invoke(app, ["promote", "--task", "poverty"])  # nothing new to promote: not a success
    assert again.exit_code == PROMOTION_REFUSED, again.output
    assert json.loads(again.stdout.strip().splitlines()[-1])["promoted"] is False

    back = last_json_line("rollback", "--task", "poverty", "--by", "Zhao")
    assert (back["rolled_back_from"], back["champion_version"]) == (2, 1)
    assert str(client.get_model_version_by_alias("povrisk-poverty", "champion").version) == "1"
    assert client.get_model_version("povrisk-poverty", "2").tags["rolled_back_by"] == "Zhao"
    first = runner.invoke(app, ["rollback", "--task", "poverty"])  # version 1 replaced nobody
    assert first.exit_code == 1 and "nothing to roll back to" in " ".join(first.output.split())


def test_serve_refuses_before_starting_without_keys_or_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POVRISK_API_KEYS_FILE", "")
    monkeypatch.delenv("POVRISK_API_KEYS", raising=False)
    monkeypatch.setenv("POVRISK_WORKERS", "1")  # `--workers` sets it; setenv has it removed after the test
    code, output = invoke("serve")
    assert code == 1
    assert "no API keys" in output
    code, output = invoke(
        "keys", "add", "--file", str(tmp_path / "keys.yaml"), "--id", "a", "--role", "analyst"
    )
    assert code == 0, output
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("POVRISK_MODEL_CACHE", str(tmp_path / "no-copy"))
    code, output = invoke("serve", "--keys", str(tmp_path / "keys.yaml"))
    assert code == 1
    assert "no usable champion" in " ".join(output.split())
    code, output = invoke("serve", "--keys", str(tmp_path / "keys.yaml"), "--workers", "0")
    assert code == 1
    assert "POVRISK_WORKERS='0'" in output
