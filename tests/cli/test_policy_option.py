"""`--policy FILE` and POVRISK_POLICY: the policy is data, read from the file a person names.

A small simulated county surveyed in 2008 and 2009, before the shipped policy's first poverty line
(2010): the shipped policy refuses it (validate names the years and the policy, the other commands stop
with one line), a policy whose lines start earlier accepts it."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from features.policy import DEFAULT_POLICY_PATH, POLICY_VARIABLE
from survey.io import read_survey, write_survey
from survey.simulate import CountySettings, simulate_county

from .invoking import invoke_lines as invoke
from .invoking import one_error_line

SHIPPED: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def no_policy_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POLICY_VARIABLE, raising=False)


def write_policy(path: Path, **changes: Any) -> Path:
    settings = copy.deepcopy(SHIPPED)
    settings.update(changes)
    path.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def early_county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 households surveyed in 2008 and 2009."""
    out = tmp_path_factory.mktemp("early") / "county"
    settings = CountySettings(
        households=60, villages=3, rounds=2, seed=1, first_year=2008, monte_carlo_draws=10
    )
    write_survey(simulate_county(settings), out)
    return out


@pytest.fixture
def early_lines(tmp_path: Path) -> Path:
    """The shipped policy with lines from 2005 (a province's own line, say)."""
    lines = {2005: 1800, **SHIPPED["poverty_lines"]}
    return write_policy(tmp_path / "early.yaml", version="province-2005", poverty_lines=lines)


def test_validate_names_the_years_without_a_line_and_the_policy(early_county: Path) -> None:
    code, lines = invoke("validate", str(early_county))
    assert code == 1
    failure = next(line for line in lines if "poverty_line_for_year" in line)
    assert failure.endswith("2 failure(s) - 2008, 2009")
    assert f"policy {SHIPPED['version']} ({DEFAULT_POLICY_PATH}) has lines from 2010" in failure


def test_a_policy_file_with_earlier_lines_validates_the_survey(early_county: Path, early_lines: Path) -> None:
    assert invoke("validate", str(early_county), "--policy", str(early_lines)) == (
        0,
        [f"{early_county}: valid"],
    )


def test_povrisk_policy_is_honoured_and_the_option_beats_it(
    early_county: Path, early_lines: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(POLICY_VARIABLE, str(early_lines))
    assert invoke("validate", str(early_county))[0] == 0
    code, lines = invoke("validate", str(early_county), "--policy", str(DEFAULT_POLICY_PATH))
    assert code == 1 and any("2008, 2009" in line for line in lines)


@pytest.mark.parametrize("command", ["evaluate", "train", "score"])
def test_commands_stop_with_one_line_on_a_year_without_a_line(
    command: str, early_county: Path, tmp_path: Path
) -> None:
    arguments = {
        "evaluate": ["--task", "poverty", "--json", str(tmp_path / "evaluation.json")],
        "train": ["--task", "poverty"],
        "score": ["--round", "1", "--out", str(tmp_path / "flags.csv")],
    }[command]
    line = one_error_line(command, "--data", str(early_county), *arguments)
    assert line.startswith(f"error: {early_county} does not fit the policy: ")
    assert "2008, 2009" in line and f"policy {SHIPPED['version']}" in line
    assert list(tmp_path.iterdir()) == []


def test_ingest_checks_the_policy_as_validate_does(
    early_county: Path, early_lines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POVRISK_DB_URL", f"sqlite:///{tmp_path / 'register.db'}")
    code, lines = invoke("ingest", str(early_county), "--county", "early")
    assert code == 1
    assert any("survey_year" in line and "2008, 2009" in line for line in lines), lines
    assert f"error: {early_county}: the survey is invalid; nothing was written to the register" in lines
    assert invoke("rounds", "--county", "early")[1] == ["the register holds no rounds of county early"]
    code, lines = invoke("ingest", str(early_county), "--county", "early", "--policy", str(early_lines))
    assert code == 0, lines
    assert [line.split(":")[0] for line in lines] == ["county early round 0", "county early round 1"]


def test_validate_names_money_above_the_policys_bound(
    early_county: Path, early_lines: Path, tmp_path: Path
) -> None:
    households = pd.read_parquet(early_county / "households.parquet")
    households.loc[households.index[4], "income_wages"] = 2e8
    bad = tmp_path / "bad"
    write_survey(replace(read_survey(early_county), households=households), bad)
    code, lines = invoke("validate", str(bad), "--policy", str(early_lines))
    assert code == 1
    expected = (
        "[at_most 100,000,000 CNY: policy province-2005 money_bounds]: 1 failure(s) - row 4: 200000000.0"
    )
    assert f"  households.income_wages {expected}" in lines
    richer = write_policy(
        tmp_path / "richer.yaml",
        version="richer",
        poverty_lines={2005: 1800, 2010: 2300},
        money_bounds={"max_yearly_amount": 1e9, "min_net_yearly_amount": -1e8},
    )
    assert invoke("validate", str(bad), "--policy", str(richer))[0] == 0


def test_an_invalid_policy_file_is_one_clear_line(early_county: Path, tmp_path: Path) -> None:
    bad = write_policy(tmp_path / "bad.yaml", ages={"working_age": {"at_least": 16, "below": 65}})
    line = one_error_line("validate", str(early_county), "--policy", str(bad))
    assert str(bad) in line and "invalid policy" in line and "ages" in line
    line = one_error_line("validate", str(early_county), "--policy", str(tmp_path / "absent.yaml"))
    assert "absent.yaml: cannot read policy file" in line
    (tmp_path / "broken.yaml").write_text("version: [unclosed\n", encoding="utf-8")
    line = one_error_line(
        "train", "--data", str(early_county), "--task", "poverty", "--policy", str(tmp_path / "broken.yaml")
    )
    assert "broken.yaml: not valid YAML" in line


def test_a_bad_policy_variable_stops_serve_before_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(POLICY_VARIABLE, str(tmp_path / "absent.yaml"))
    assert "absent.yaml: cannot read policy file" in one_error_line("serve")
