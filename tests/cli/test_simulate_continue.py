"""`povrisk simulate --continue DIR --rounds K`: one more turn of the round cycle on a small county."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from survey.io import TABLE_NAMES, read_survey

runner = CliRunner()
SIZE = ("--households", "300", "--villages", "3", "--seed", "4", "--draws", "10")


def invoke(*arguments: str) -> tuple[int, str]:
    result = runner.invoke(app, list(arguments))
    return result.exit_code, result.output


def simulated(folder: Path, rounds: int) -> Path:
    code, output = invoke("simulate", "--out", str(folder), *SIZE, "--rounds", str(rounds))
    assert code == 0, output
    return folder


def files_of(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_continue_appends_the_round_a_longer_simulation_has(tmp_path: Path) -> None:
    county = simulated(tmp_path / "county", rounds=2)

    code, output = invoke("simulate", "--continue", str(county), "--rounds", "1")

    assert code == 0, output
    assert "appended round 2" in output
    continued, fresh = read_survey(county), read_survey(simulated(tmp_path / "fresh", rounds=3))
    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(getattr(continued, name), getattr(fresh, name), obj=name)
    manifest = json.loads((county / "simulation.json").read_text(encoding="utf-8"))
    assert manifest == json.loads((tmp_path / "fresh" / "simulation.json").read_text(encoding="utf-8"))
    assert manifest["settings"]["rounds"] == 3
    assert invoke("validate", str(county)) == (0, f"{county}: valid\n")


def test_a_tampered_folder_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    county = simulated(tmp_path / "county", rounds=2)
    households = pd.read_parquet(county / "households.parquet")
    households.loc[7, "debt"] = 123.0
    households.to_parquet(county / "households.parquet", index=False)
    before = files_of(county)

    code, output = invoke("simulate", "--continue", str(county))

    assert code == 1
    assert "households.parquet" in output and "nothing was written" in output
    assert len(output.strip().splitlines()) == 1
    assert files_of(county) == before


def test_a_folder_without_manifest_is_refused(tmp_path: Path) -> None:
    county = simulated(tmp_path / "county", rounds=2)
    (county / "simulation.json").unlink()
    before = files_of(county)

    code, output = invoke("simulate", "--continue", str(county), "--rounds", "1")

    assert code == 1 and "no simulation.json" in output
    assert files_of(county) == before


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (("--continue", "DIR", "--out", "OTHER"), "one of them"),
        ((), "one of them"),
        (("--continue", "DIR", "--seed", "1", "--households", "500"), "--households, --seed cannot be given"),
        (("--continue", "DIR", "--survey-noise", "0"), "--survey-noise cannot be given"),
        (("--out", "OTHER", "--rounds", "1"), "at least 2 rounds"),
    ],
)
def test_conflicting_options_are_refused(tmp_path: Path, arguments: tuple[str, ...], named: str) -> None:
    folder, other = tmp_path / "county", tmp_path / "other"
    arguments = tuple({"DIR": str(folder), "OTHER": str(other)}.get(part, part) for part in arguments)

    code, output = invoke("simulate", *arguments)

    assert code == 1 and named in output
    assert not folder.exists() and not other.exists()


def test_a_province_is_simulated_and_ingested_county_by_county(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POVRISK_DB_URL", f"sqlite:///{tmp_path / 'register.db'}")
    province = tmp_path / "province"
    code, output = invoke("simulate", "--out", str(province), *SIZE, "--rounds", "2", "--counties", "2")
    assert code == 0, output
    assert "C002:" in output and "a province of 2 counties" in output
    code, output = invoke("ingest", str(province), "--county", "C002")
    assert code == 0, output
    assert "county C002 round 1: added; 300 households" in output
    code, output = invoke("ingest", str(province), "--county", "C007")
    assert code == 1 and "no county 'C007'" in output
    code, output = invoke(
        "simulate", "--out", str(tmp_path / "x"), *SIZE, "--counties", "2", "--export", "xlsx"
    )
    assert code == 1 and "--export" in output
