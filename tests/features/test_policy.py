"""Policy settings: the packaged YAML, line look-ups, and clear errors for bad settings."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from features.frame import FEATURE_NAMES
from features.policy import DEFAULT_POLICY_PATH, GUARANTEES, Policy, PolicyError, load_policy


def test_packaged_policy_loads(policy: Policy) -> None:
    assert policy.version == "2026.7"
    assert policy.base_year == 2014
    assert policy.poverty_lines[2010] == 2300 and policy.poverty_lines[2020] == 4000
    assert policy.deprivation_cutoff == 0.4
    assert list(policy.deprivation_weights) == list(GUARANTEES)
    assert sum(policy.deprivation_weights.values()) == pytest.approx(1.0)
    assert (policy.risk_tiers.high, policy.risk_tiers.medium) == (0.5, 0.2)
    assert policy.flag_coverage is None
    assert policy.monitoring.marginal_relapse_risk == 0.2
    assert policy.monitoring.hardship_expense_share == 0.5
    assert policy.monitoring.unstable_after_exit_rounds == 3


def test_poverty_line_by_year(policy: Policy) -> None:
    assert policy.poverty_line(2014) == 2800
    assert policy.poverty_line(2017) == 3335
    assert policy.poverty_line(2026) == 4000  # after the last line: the last line


def test_poverty_line_before_the_first_year_raises(policy: Policy) -> None:
    with pytest.raises(PolicyError, match="2009"):
        policy.poverty_line(2009)


def test_monitoring_line_is_one_and_a_half_lines(policy: Policy) -> None:
    assert policy.monitoring_line(2016) == pytest.approx(4500.0)


def test_task_exclusions_name_real_features(policy: Policy) -> None:
    excluded = policy.excluded_features("poverty")
    assert set(excluded) <= set(FEATURE_NAMES)
    assert {"per_capita_net_income", "deprived_food_clothing", "deprivation_score"} <= set(excluded)
    income_ratios = {
        "production_cost_share",
        "medical_expense_share",
        "schooling_expense_share",
        "debt_to_income",
    }
    assert income_ratios <= set(excluded)  # they divide by income and so restate the label's income test
    assert policy.excluded_features("relapse") == ()
    with pytest.raises(PolicyError, match="unknown task"):
        policy.excluded_features("housing")


def test_policy_is_frozen(policy: Policy) -> None:
    with pytest.raises(pydantic.ValidationError):
        policy.base_year = 2015  # type: ignore[misc]


def _settings() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8")))


def _write(tmp_path: Path, settings: Any) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def test_a_written_copy_round_trips(tmp_path: Path, policy: Policy) -> None:
    assert load_policy(_write(tmp_path, _settings())) == policy


def test_missing_key_is_named(tmp_path: Path) -> None:
    settings = _settings()
    del settings["deprivation_cutoff"]
    with pytest.raises(PolicyError, match="deprivation_cutoff"):
        load_policy(_write(tmp_path, settings))


def test_negative_poverty_line_is_named(tmp_path: Path) -> None:
    settings = _settings()
    settings["poverty_lines"][2015] = -2855
    with pytest.raises(PolicyError, match=r"poverty_lines.*2015"):
        load_policy(_write(tmp_path, settings))


def test_weights_not_summing_to_one_are_named(tmp_path: Path) -> None:
    settings = _settings()
    settings["deprivation_weights"]["safe_water"] = 0.3
    with pytest.raises(PolicyError, match=r"deprivation_weights.*sum to 1"):
        load_policy(_write(tmp_path, settings))


def test_unknown_guarantee_is_named(tmp_path: Path) -> None:
    settings = _settings()
    settings["deprivation_weights"]["happiness"] = settings["deprivation_weights"].pop("safe_water")
    with pytest.raises(PolicyError, match="deprivation_weights"):
        load_policy(_write(tmp_path, settings))


def test_risk_tiers_out_of_order(tmp_path: Path) -> None:
    settings = _settings()
    settings["risk_tiers"] = {"high": 0.2, "medium": 0.5}
    with pytest.raises(PolicyError, match="risk_tiers"):
        load_policy(_write(tmp_path, settings))


def test_unexpected_key_is_named(tmp_path: Path) -> None:
    settings = _settings()
    settings["monitoring"]["marginal_relapse_riks"] = 0.3
    with pytest.raises(PolicyError, match="marginal_relapse_riks"):
        load_policy(_write(tmp_path, settings))


def test_missing_task_is_named(tmp_path: Path) -> None:
    settings = _settings()
    del settings["tasks"]["relapse"]
    with pytest.raises(PolicyError, match="relapse"):
        load_policy(_write(tmp_path, settings))


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(broken)
    with pytest.raises(PolicyError, match="mapping"):
        load_policy(_write(tmp_path, ["a", "list"]))


def test_monitoring_changes_by_year_load_and_bad_ones_are_named(tmp_path: Path) -> None:
    settings = _settings()
    settings["monitoring_changes"] = {2021: {"marginal_relapse_risk": 0.3}}
    policy = load_policy(_write(tmp_path, settings))
    assert policy.monitoring_for_year(2021).marginal_relapse_risk == 0.3
    assert policy.monitoring_for_year(2020).marginal_relapse_risk == policy.monitoring.marginal_relapse_risk
    settings["monitoring_changes"] = {2021: {"marginal_relapse_risk": 1.5}}
    with pytest.raises(PolicyError, match=r"monitoring_changes.*2021.*marginal_relapse_risk"):
        load_policy(_write(tmp_path, settings))
    settings["monitoring_changes"] = {2021: {"marginal_relapse": 0.3}}
    with pytest.raises(PolicyError, match="marginal_relapse"):
        load_policy(_write(tmp_path, settings))
