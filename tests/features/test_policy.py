"""Policy settings: the packaged YAML, line look-ups, and clear errors for bad settings."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from features.frame import FEATURE_NAMES
from features.policy import (
    DEFAULT_POLICY_PATH,
    GUARANTEES,
    POLICY_VARIABLE,
    Policy,
    PolicyError,
    load_policy,
    policy_path,
)


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


def test_the_shipped_policy_holds_the_ages_and_money_the_code_used_before(policy: Policy) -> None:
    """The values the members aggregation and the schema had built in: no result changes."""
    assert (policy.currency.code, policy.currency.unit) == ("CNY", "yuan per person per year")
    assert (policy.money_bounds.max_yearly_amount, policy.money_bounds.min_net_yearly_amount) == (1e8, -1e7)
    assert (policy.ages.working_age.at_least, policy.ages.working_age.below) == (16, 65)
    assert (policy.ages.compulsory_school_age.at_least, policy.ages.compulsory_school_age.below) == (7, 16)
    assert policy.ages.elderly_from == 65


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"currency": {"code": "yuan", "unit": "yuan per person per year"}}, "currency.code"),
        ({"money_bounds": {"max_yearly_amount": 1000, "min_net_yearly_amount": 0}}, "money_bounds"),
        ({"money_bounds": {"max_yearly_amount": 1e8, "min_net_yearly_amount": 5}}, "min_net_yearly_amount"),
        ({"ages": {"working_age": {"at_least": 65, "below": 16}}}, "ages.working_age"),
        ({"ages": {"elderly_from": 60}}, "elderly_from"),
        ({"ages": {"compulsory_school_age": {"at_least": 6, "below": 200}}}, "compulsory_school_age.below"),
    ],
)
def test_bad_currency_money_and_ages_are_named(tmp_path: Path, change: dict[str, Any], named: str) -> None:
    settings = _settings()
    for key, value in change.items():
        settings[key] = {**settings[key], **value} if isinstance(settings[key], dict) else value
    with pytest.raises(PolicyError, match=named):
        load_policy(_write(tmp_path, settings))


def test_missing_ages_are_named(tmp_path: Path) -> None:
    settings = _settings()
    del settings["ages"]
    with pytest.raises(PolicyError, match="ages"):
        load_policy(_write(tmp_path, settings))


def test_the_option_beats_the_variable_which_beats_the_shipped_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(POLICY_VARIABLE, raising=False)
    assert policy_path() == policy_path(None) == DEFAULT_POLICY_PATH
    named = tmp_path / "province.yaml"
    monkeypatch.setenv(POLICY_VARIABLE, str(named))
    assert policy_path() == named
    assert policy_path(tmp_path / "option.yaml") == tmp_path / "option.yaml"
    monkeypatch.setenv(POLICY_VARIABLE, "  ")
    assert policy_path() == DEFAULT_POLICY_PATH


def test_load_policy_honours_povrisk_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the service does at start-up (`load_policy()`), so that `povrisk serve --policy` reaches it."""
    settings = _settings()
    settings["version"] = "province-1"
    monkeypatch.setenv(POLICY_VARIABLE, str(_write(tmp_path, settings)))
    assert load_policy().version == "province-1"
    assert load_policy(DEFAULT_POLICY_PATH).version != "province-1"
    monkeypatch.setenv(POLICY_VARIABLE, str(tmp_path / "absent.yaml"))
    with pytest.raises(PolicyError, match=r"absent\.yaml"):
        load_policy()
