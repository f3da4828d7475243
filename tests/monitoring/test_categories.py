"""Monitoring categories on hand-built frames: one household per rule, then precedence and edge cases.

Thresholds come from the packaged policy: high tier 0.5, monitoring line 1.5x the poverty line,
marginal relapse risk 0.2, hardship expense share 0.5.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.policy import MonitoringChanges, Policy, load_policy
from monitoring.categories import CATEGORIES, monitoring_category

NAN = math.nan
# A household that is comfortably non-poor and meets no rule; each case changes a few of these.
_BASELINE = {
    "registered_poor": 0.0,
    "exited_poverty": 0.0,
    "income_to_line_ratio": 3.0,
    "income_change_since_last_round": 0.05,
    "rounds_since_exit": NAN,
    "shock_count": 0.0,
    "medical_expense_share": 0.05,
    "schooling_expense_share": 0.05,
    "poverty_risk": 0.05,
    "relapse_risk": 0.05,
}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def _frames(*households: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [{**_BASELINE, **household} for household in households]
    index = pd.MultiIndex.from_tuples(
        [(f"h{i}", 3) for i in range(len(rows))], names=["household_id", "round"]
    )
    frame = pd.DataFrame(rows, index=index)
    return frame.drop(columns=["poverty_risk", "relapse_risk"]), frame[["poverty_risk", "relapse_risk"]]


def _categorise(policy: Policy, *households: dict[str, float]) -> pd.DataFrame:
    features, scores = _frames(*households)
    return monitoring_category(features, scores, policy)


@pytest.mark.parametrize(
    ("household", "category", "rule_fragment"),
    [
        ({"registered_poor": 1.0}, "poor", "registered poor"),
        ({"income_to_line_ratio": 0.8}, "poor", "0.80x the poverty line < 1"),
        ({"poverty_risk": 0.73}, "poor", "poverty risk 0.73 >= 0.50"),
        (
            {"exited_poverty": 1.0, "income_to_line_ratio": 1.2},
            "unstable_after_exit",
            "1.20x the poverty line < 1.5x",
        ),
        ({"exited_poverty": 1.0, "relapse_risk": 0.34}, "unstable_after_exit", "relapse risk 0.34 >= 0.20"),
        (
            {"exited_poverty": 1.0, "rounds_since_exit": 2.0, "income_to_line_ratio": 1.2},
            "unstable_after_exit",
            "exited poverty 2 round(s) ago (< 3) and per-capita income 1.20x",
        ),
        (  # exited three rounds ago: the watch after exit is over, the low income still makes it marginal
            {"exited_poverty": 1.0, "rounds_since_exit": 3.0, "income_to_line_ratio": 1.2},
            "marginal",
            "1.20x the poverty line < 1.5x",
        ),
        ({"exited_poverty": 1.0, "rounds_since_exit": 5.0}, "not_monitored", "no monitoring rule"),
        (
            {"shock_count": 1.0, "medical_expense_share": 0.4, "schooling_expense_share": 0.2},
            "sudden_hardship",
            "expenses 0.60 of net income >= 0.50",
        ),
        (
            {"shock_count": 2.0, "income_change_since_last_round": -0.4, "income_to_line_ratio": 1.3},
            "sudden_hardship",
            "income fell -40% to 1.30x",
        ),
        ({"income_to_line_ratio": 1.4}, "marginal", "1.40x the poverty line < 1.5x"),
        ({"relapse_risk": 0.2}, "marginal", "relapse risk 0.20 >= 0.20"),
        ({}, "not_monitored", "no monitoring rule"),
    ],
)
def test_each_rule(policy: Policy, household: dict[str, float], category: str, rule_fragment: str) -> None:
    result = _categorise(policy, household)
    assert result["category"].item() == category
    assert rule_fragment in result["rule"].item()


def test_first_matching_rule_wins(policy: Policy) -> None:
    everything = {
        "registered_poor": 1.0,
        "exited_poverty": 1.0,
        "income_to_line_ratio": 1.2,
        "shock_count": 1.0,
        "medical_expense_share": 0.9,
        "relapse_risk": 0.9,
    }
    without_registration = {**everything, "registered_poor": 0.0}
    without_exit = {**without_registration, "exited_poverty": 0.0}
    without_shock = {**without_exit, "shock_count": 0.0}
    result = _categorise(policy, everything, without_registration, without_exit, without_shock)
    assert list(result["category"]) == ["poor", "unstable_after_exit", "sudden_hardship", "marginal"]


def test_income_fall_without_shock_is_marginal_not_hardship(policy: Policy) -> None:
    result = _categorise(policy, {"income_change_since_last_round": -0.5, "income_to_line_ratio": 1.3})
    assert result["category"].item() == "marginal"


def test_shock_with_modest_expenses_and_stable_income_is_not_monitored(policy: Policy) -> None:
    result = _categorise(policy, {"shock_count": 1.0, "medical_expense_share": 0.2})
    assert result["category"].item() == "not_monitored"


def test_missing_values_never_make_a_rule_hold(policy: Policy) -> None:
    unknown = dict.fromkeys(_BASELINE, NAN)
    result = _categorise(
        policy, unknown, {"relapse_risk": NAN, "medical_expense_share": NAN, "shock_count": 1.0}
    )
    assert list(result["category"]) == ["not_monitored", "not_monitored"]


def test_one_expense_share_missing_uses_the_other(policy: Policy) -> None:
    result = _categorise(
        policy, {"shock_count": 1.0, "medical_expense_share": 0.6, "schooling_expense_share": NAN}
    )
    assert result["category"].item() == "sudden_hardship"


def test_thresholds_come_from_the_policy(policy: Policy) -> None:
    stricter = policy.model_copy(
        update={"monitoring": policy.monitoring.model_copy(update={"marginal_relapse_risk": 0.5})}
    )
    household = {"relapse_risk": 0.3}
    assert _categorise(policy, household)["category"].item() == "marginal"
    assert _categorise(stricter, household)["category"].item() == "not_monitored"


def test_result_is_indexed_like_features_and_inputs_are_untouched(policy: Policy) -> None:
    features, scores = _frames({"registered_poor": 1.0}, {}, {"relapse_risk": 0.5})
    features_before, scores_before = features.copy(), scores.copy()
    result = monitoring_category(features, scores.iloc[::-1], policy)
    assert result.index.equals(features.index)
    assert list(result["category"]) == ["poor", "not_monitored", "marginal"]
    assert set(result["category"]) <= set(CATEGORIES)
    pd.testing.assert_frame_equal(features, features_before)
    pd.testing.assert_frame_equal(scores, scores_before)


def test_missing_feature_column_is_named(policy: Policy) -> None:
    features, scores = _frames({})
    with pytest.raises(ValueError, match="exited_poverty"):
        monitoring_category(features.drop(columns=["exited_poverty"]), scores, policy)


def test_missing_score_column_is_named(policy: Policy) -> None:
    features, scores = _frames({})
    with pytest.raises(ValueError, match="relapse_risk"):
        monitoring_category(features, scores.drop(columns=["relapse_risk"]), policy)


def test_households_without_scores_are_rejected(policy: Policy) -> None:
    features, scores = _frames({}, {})
    with pytest.raises(ValueError, match="no scores"):
        monitoring_category(features, scores.iloc[:1], policy)


def test_each_household_is_judged_by_the_thresholds_of_its_year(policy: Policy) -> None:
    revised = policy.model_copy(
        update={"monitoring_changes": {2021: MonitoringChanges(marginal_relapse_risk=0.4)}}
    )
    features, scores = _frames({"relapse_risk": 0.3}, {"relapse_risk": 0.3})
    result = monitoring_category(features, scores, revised, years=np.array([2020, 2021]))
    assert result["category"].tolist() == ["marginal", "not_monitored"]
    assert "0.30 >= 0.20" in result["rule"].iloc[0]
    # without years, the round (3 here) counts from the policy's base year (2014): 2017, before the change
    assert monitoring_category(features, scores, revised)["category"].tolist() == ["marginal", "marginal"]
    with pytest.raises(ValueError, match="1 years for 2 households"):
        monitoring_category(features, scores, revised, years=np.array([2020]))


def test_threshold_changes_accumulate_by_year(policy: Policy) -> None:
    revised = policy.model_copy(
        update={
            "monitoring_changes": {
                2021: MonitoringChanges(marginal_relapse_risk=0.4),
                2023: MonitoringChanges(hardship_expense_share=0.3),
            }
        }
    )
    assert revised.monitoring_for_year(2020) == policy.monitoring
    assert revised.monitoring_for_year(2022).marginal_relapse_risk == 0.4
    in_2024 = revised.monitoring_for_year(2024)
    assert (in_2024.marginal_relapse_risk, in_2024.hardship_expense_share) == (0.4, 0.3)


def test_the_watch_after_exit_follows_the_years_window(policy: Policy) -> None:
    """A province that lengthens the watch after exit from 2020 on keeps a 4-round-old exit unstable."""
    longer = policy.model_copy(
        update={"monitoring_changes": {2020: MonitoringChanges(unstable_after_exit_rounds=5)}}
    )
    features, scores = _frames({"exited_poverty": 1.0, "rounds_since_exit": 4.0, "income_to_line_ratio": 1.2})
    before = monitoring_category(features, scores, longer, years=np.array([2019]))
    after = monitoring_category(features, scores, longer, years=np.array([2020]))
    assert before["category"].iloc[0] == "marginal"
    assert after["category"].iloc[0] == "unstable_after_exit"
    assert "4 round(s) ago (< 5)" in after["rule"].iloc[0]


def _categorise_with_completeness(
    policy: Policy, sufficient: list[bool], missing: list[tuple[str, ...]], *households: dict[str, float]
) -> pd.DataFrame:
    features, scores = _frames(*households)
    scores = scores.assign(
        data_completeness=[1.0 if enough else 0.3 for enough in sufficient],
        sufficient_data=sufficient,
        missing_blocks=missing,
    )
    return monitoring_category(features, scores, policy)


def test_with_insufficient_data_a_models_risk_places_nobody(policy: Policy) -> None:
    result = _categorise_with_completeness(
        policy,
        [False, False, True],
        [("income", "housing"), ("income",), ()],
        {"poverty_risk": 0.9, "income_to_line_ratio": NAN},
        {"relapse_risk": 0.6, "income_to_line_ratio": NAN},
        {"poverty_risk": 0.9},
    )
    assert result["category"].tolist() == ["insufficient_data", "insufficient_data", "poor"]
    assert result["rule"].iloc[0] == (
        "too little data to judge: 30% of the models' explanatory weight known (< 60%); "
        "missing income, housing"
    )


def test_with_insufficient_data_the_facts_still_place_a_household(policy: Policy) -> None:
    result = _categorise_with_completeness(
        policy,
        [False, False],
        [("housing",), ("housing",)],
        {"registered_poor": 1.0, "poverty_risk": 0.9},
        {"income_to_line_ratio": 1.2},
    )
    assert result["category"].tolist() == ["poor", "marginal"]
    assert result["rule"].iloc[0].startswith("registered poor")


def test_insufficient_data_is_a_category_of_its_own(policy: Policy) -> None:
    assert "insufficient_data" in CATEGORIES
    assert CATEGORIES[-1] == "not_monitored"
