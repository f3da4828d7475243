"""Assistance measures chosen by a household's causes of poverty (policy table `assistance`)."""

from __future__ import annotations

import math

import pytest

from features.frame import FEATURE_NAMES
from features.policy import AssistanceTable, Bound, PolicyError, load_policy, policy_from_mapping
from monitoring.assistance import recommend_measures
from monitoring.causes import load_cause_settings

NAN = math.nan


@pytest.fixture(scope="module")
def table() -> AssistanceTable:
    return load_policy().assistance


def _codes(
    main: str, secondary: tuple[str, ...], indicators: dict[str, float], table: AssistanceTable
) -> list[str]:
    found = recommend_measures(main, secondary, indicators, table, load_cause_settings(), "en")
    return [recommendation.measure for recommendation in found]


def test_an_uninsured_seriously_ill_household_gets_insurance_then_treatment(table: AssistanceTable) -> None:
    indicators = {"medical_insurance": 0.0, "serious_illness_members": 1.0, "dangerous_house": 1.0}
    assert _codes("illness", ("disaster",), indicators, table) == [
        "medical_insurance_enrolment",
        "serious_illness_assistance",
        "dangerous_house_renovation",  # the secondary cause fills the third place
    ]


def test_measures_whose_conditions_fail_or_are_unknown_are_skipped(table: AssistanceTable) -> None:
    insured = {"medical_insurance": 1.0, "serious_illness_members": 1.0, "chronic_illness_members": NAN}
    assert _codes("illness", (), insured, table) == ["serious_illness_assistance"]


def test_at_most_three_each_once_and_the_why_names_the_cause(table: AssistanceTable) -> None:
    indicators = {
        "labour_capable_members": 2.0,
        "members_in_migrant_work": 0.0,
        "mean_adult_education_years": 6.0,
    }
    found = recommend_measures(
        "lack_of_skills", ("lack_of_capital", "lack_of_land"), indicators, table, load_cause_settings(), "en"
    )
    assert [r.measure for r in found] == ["vocational_training", "job_placement", "industry_support"]
    assert found[0].why == "main cause lack of skills: adults have little schooling"
    zh = recommend_measures("lack_of_capital", (), indicators, table, load_cause_settings(), "zh")
    assert zh[0].measure == "microcredit" and zh[0].why.startswith("主要致贫原因“缺资金”")
    assert "4万元以下" in zh[0].name


def test_other_always_gets_temporary_assistance(table: AssistanceTable) -> None:
    assert _codes("other", (), {}, table) == ["temporary_assistance"]


def test_the_table_covers_every_cause_and_reads_only_registered_indicators(table: AssistanceTable) -> None:
    causes = load_cause_settings().causes
    assert set(table.by_cause) == set(causes)
    for code, measure in table.measures.items():
        unknown = set(measure.when) - set(FEATURE_NAMES)
        assert not unknown, f"{code} reads unknown indicator(s) {unknown}"
    used = {code for codes in table.by_cause.values() for code in codes}
    assert used == set(table.measures), "every measure is offered for some cause"


def test_a_malformed_table_is_refused_with_the_reason() -> None:
    raw = load_policy().model_dump()
    raw["assistance"]["by_cause"]["illness"] = ["no_such_measure"]
    with pytest.raises(PolicyError, match="no_such_measure"):
        policy_from_mapping(raw)
    with pytest.raises(ValueError, match="at_least or at_most"):
        Bound()
    assert Bound(at_least=1).holds(2.0) and not Bound(at_least=1).holds(NAN)
