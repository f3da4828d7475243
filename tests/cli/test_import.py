"""`povrisk import costa-rica`: the real file becomes a valid survey folder and a log; a wrong or missing
file exits 1 with a clear message and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from survey.io import read_survey
from survey.validate import validate_survey

from ..shared_data import costa_rica_train_csv

runner = CliRunner()


def printed(output: str) -> str:
    """The output with line wrapping undone (the console wraps long messages)."""
    return " ".join(output.split())


@pytest.mark.realdata
def test_import_writes_a_valid_survey_and_prints_the_log(tmp_path: Path) -> None:
    source = costa_rica_train_csv()
    if not source.is_file():
        pytest.skip(f"shared Costa Rica data absent: {source}")
    out = tmp_path / "costa-rica"
    result = runner.invoke(app, ["import", "costa-rica", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = set(result.stdout.splitlines())
    for line in (
        "persons: 9557",
        "households: 2988",
        "households_without_head: 15",
        "households_with_disagreeing_targets: 85",
        "households_without_label: 0",
    ):
        assert line in lines
    survey = read_survey(out)
    assert validate_survey(survey).ok
    assert len(survey.households) == 2988 and survey.members is not None and len(survey.members) == 9557


def test_missing_path_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["import", "costa-rica", str(tmp_path / "absent.csv"), "--out", str(out)])
    assert result.exit_code == 1
    assert "absent.csv: no such file" in printed(result.output)
    assert not out.exists()


def test_a_csv_of_another_format_exits_1(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    pd.DataFrame({"household": ["a", "b"], "income": [100.0, 200.0]}).to_csv(other, index=False)
    out = tmp_path / "out"
    result = runner.invoke(app, ["import", "costa-rica", str(other), "--out", str(out)])
    assert result.exit_code == 1
    assert "not the Costa Rica survey format: missing column(s)" in printed(result.output)
    assert "'idhogar'" in result.output
    assert not out.exists()


def test_a_binary_file_exits_1(tmp_path: Path) -> None:
    binary = tmp_path / "train.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    result = runner.invoke(app, ["import", "costa-rica", str(binary), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "train.csv is not a readable CSV file" in printed(result.output)
