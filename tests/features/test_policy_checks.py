"""A survey checked against the policy: survey years without a poverty line, money beyond the bounds."""

from __future__ import annotations

import pandas as pd
import pytest

from features.frame import build_features
from features.labels import poor_now
from features.policy import Policy, PolicyError, policy_from_mapping
from features.policy_checks import check_against_policy, one_line
from survey.io import Survey
from survey.validate import FAILURE_COLUMNS, ValidationReport, validate_survey

from .conftest import full_households, full_members


def _with(policy: Policy, **changes: object) -> Policy:
    """The policy with some settings replaced, validated as a file's would be."""
    return policy_from_mapping({**policy.model_dump(), **changes}, source="test")


def households(**columns: list[object]) -> pd.DataFrame:
    rows = len(next(iter(columns.values())))
    return pd.DataFrame({"household_id": [f"h{i}" for i in range(rows)], "village_id": "v1", **columns})


def test_the_shipped_policy_accepts_the_hand_built_survey(policy: Policy) -> None:
    assert check_against_policy(full_households(), policy, "shipped").ok


def test_a_survey_year_before_the_first_line_is_named_with_the_policy(policy: Policy) -> None:
    table = households(round=[0, 0, 1, 1], survey_year=[2008, 2008, 2009, 2014])
    report = check_against_policy(table, policy, "features/policy.yaml")
    assert list(report.failures.columns) == list(FAILURE_COLUMNS)
    assert list(report.failures["value"]) == [2008, 2009]  # one failure per year, each once
    assert set(report.failures["column"]) == {"survey_year"}
    line = one_line(report)
    assert "2008, 2009" in line
    assert f"policy {policy.version} (features/policy.yaml) has lines from 2010" in line


def test_without_survey_year_the_year_is_base_year_plus_round(policy: Policy) -> None:
    late_lines = _with(policy, poverty_lines={2016: 3000, 2020: 4000})  # base_year 2014: rounds 0, 1 lack one
    report = check_against_policy(households(round=[0, 1, 2, 3]), late_lines, "late.yaml")
    assert list(report.failures["value"]) == [2014, 2015]
    assert "(base_year 2014 + round)" in one_line(report) and "round" in set(report.failures["column"])
    assert check_against_policy(households(round=[0, 1, 2, 3]), policy, "shipped").ok


def test_a_recorded_survey_year_wins_over_base_year_plus_round(policy: Policy) -> None:
    table = households(round=[0, 0], survey_year=[2016, None])  # the second row: 2014 + 0
    late_lines = _with(policy, poverty_lines={2015: 3000})
    assert list(check_against_policy(table, late_lines, "late.yaml").failures["value"]) == [2014]


def test_money_beyond_the_policys_bounds_is_named_by_column_and_row(policy: Policy) -> None:
    table = households(
        round=[0, 0, 0],
        income_wages=[5_000.0, 2e8, None],
        income_business=[-2e7, 0.0, -5e6],
        debt=[0.0, 0.0, 1e9],
    )
    report = check_against_policy(table, policy, "shipped")
    failures = report.failures.set_index("column")
    assert failures.loc["income_wages", "row"] == 1 and failures.loc["income_wages", "value"] == 2e8
    assert failures.loc["income_business", "row"] == 0  # below the net lower bound; -5e6 is within
    assert failures.loc["debt", "row"] == 2
    assert "at_most 100,000,000 CNY" in one_line(report)
    assert "at_least -10,000,000 CNY" in one_line(report)


def test_another_currency_has_its_own_bounds(policy: Policy) -> None:
    """A peso survey: amounts of hundreds of millions are ordinary, so they are not refused."""
    pesos = _with(
        policy,
        currency={"code": "COP", "unit": "pesos per person per year"},
        money_bounds={"max_yearly_amount": 5e10, "min_net_yearly_amount": -5e9},
        poverty_lines={2018: 3_000_000},
    )
    table = households(round=[4, 4], income_wages=[2e8, 6e10])
    report = check_against_policy(table, pesos, "colombia.yaml")
    assert list(report.failures["row"]) == [1]
    assert "COP" in one_line(report)
    assert not check_against_policy(table.head(1), pesos, "colombia.yaml").failures.size
    assert not check_against_policy(table.head(1), policy, "shipped").ok  # 2e8 yuan is implausible


def test_values_that_are_not_numbers_are_left_to_the_schema(policy: Policy) -> None:
    table = households(round=[0, "x"], income_wages=["lots", 1.0])
    assert check_against_policy(table, policy, "shipped").ok


def test_reports_combine_with_the_schema_report(policy: Policy) -> None:
    table = households(round=[0, 1], survey_year=[2009, 2015]).assign(cooking_fuel=["dung", "gas"])
    report = ValidationReport.combined(
        validate_survey(Survey(households=table)), check_against_policy(table, policy, "shipped")
    )
    assert {"cooking_fuel", "survey_year"} <= set(report.failures["column"])


def test_a_policy_from_a_file_changes_the_labels(policy: Policy) -> None:
    """A higher poverty line makes a household poor that the shipped line does not."""
    features = build_features(full_households(), full_members(), policy)
    higher = _with(policy, poverty_lines={year: 10 * line for year, line in policy.poverty_lines.items()})
    assert (
        poor_now(build_features(full_households(), full_members(), higher), higher).sum()
        > poor_now(features, policy).sum()
    )


def test_a_year_without_a_line_raises_when_features_are_built(policy: Policy) -> None:
    table = full_households().assign(survey_year=2005)
    with pytest.raises(PolicyError, match="no poverty line for year 2005"):
        build_features(table, full_members(), policy)
