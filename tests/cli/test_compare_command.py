"""`povrisk compare` end to end on a small county: the table a person reads, the JSON, the figures, that
nothing moves, and that `promote` then does what compare said it would (a real MLflow SQLite store)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from cli.main import PROMOTION_REFUSED, app

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_stores")]

runner = CliRunner()


@pytest.fixture(scope="module")
def county(workplace: Path) -> Path:
    out = workplace / "county"
    arguments = ["simulate", "--out", str(out), "--households", "600", "--villages", "8", "--rounds", "3"]
    result = runner.invoke(app, [*arguments, "--seed", "5", "--draws", "20"])
    assert result.exit_code == 0, result.output
    return out


def test_compare_shows_every_difference_with_its_interval_and_changes_nothing(
    county: Path, tmp_path: Path
) -> None:
    alone = runner.invoke(app, ["compare", "--task", "poverty"])
    assert alone.exit_code == 1
    assert (
        alone.output.splitlines()[-1]
        == "error: povrisk-poverty has no 'challenger' version: nothing to compare"
    )
    for seed in ("0", "1"):
        trained = runner.invoke(app, ["train", "--data", str(county), "--task", "poverty", "--seed", seed])
        assert trained.exit_code == 0, trained.output
        if seed == "0":
            assert runner.invoke(app, ["promote", "--task", "poverty"]).exit_code == 0
    client = mlflow.MlflowClient()
    before = {
        alias: client.get_model_version_by_alias("povrisk-poverty", alias).version
        for alias in ("champion", "challenger")
    }

    document_path, figures = tmp_path / "comparison.json", tmp_path / "figures"
    result = runner.invoke(
        app,
        [
            "compare",
            "--task",
            "poverty",
            "--replicates",
            "300",
            "--json",
            str(document_path),
            "--figures",
            str(figures),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "challenger v2 vs champion v1" in result.output
    assert "95% interval" in result.output and "300 resamples of households" in result.output
    for metric in ("roc_auc", "pr_auc", "brier", "ece", "exclusion_error", "macro_f1", "recall_at_10pct"):
        assert any(line.startswith(metric) for line in result.output.splitlines()), metric
    assert "survey labels" in result.output and "calibrated on" in result.output
    assert "by township and village" in result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    written = json.loads(document_path.read_text(encoding="utf-8"))
    assert last == written and (written["challenger_version"], written["champion_version"]) == (2, 1)
    roc_auc = next(row for row in written["metrics"] if row["metric"] == "roc_auc")
    assert roc_auc["low"] <= roc_auc["difference"] <= roc_auc["high"]
    assert sorted(path.name for path in figures.iterdir()) == ["calibration.png", "differences.png"]
    after = {alias: client.get_model_version_by_alias("povrisk-poverty", alias).version for alias in before}
    assert after == before, "compare changes nothing"

    promoted = runner.invoke(app, ["promote", "--task", "poverty"])
    # promote takes the decision compare foresaw, and says on which interval
    assert promoted.exit_code == (0 if written["decision"]["promoted"] else PROMOTION_REFUSED), (
        promoted.output
    )
    assert "95% interval of the difference" in " ".join(promoted.output.split())
