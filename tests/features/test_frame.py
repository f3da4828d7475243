"""build_features: index, columns, dtypes, optional blocks, lines by year, history, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.frame import (
    FEATURE_NAMES,
    FeatureInputError,
    base_frame,
    build_features,
    parameters,
    task_feature_names,
)
from features.policy import Policy, PolicyError
from features.registry import INDICATORS
from survey.schema import SHOCK_COLUMNS


def test_frame_shape_index_and_dtypes(
    households: pd.DataFrame, members: pd.DataFrame, policy: Policy
) -> None:
    features = build_features(households, members, policy)
    assert list(features.columns) == list(FEATURE_NAMES)
    assert features.index.names == ["household_id", "round"]
    assert features.index.tolist() == [("a", 0), ("a", 1), ("b", 0), ("c", 0)]
    assert (features.dtypes == np.float64).all()
    assert not np.isinf(features.to_numpy()).any()


def test_values_on_the_hand_built_survey(
    households: pd.DataFrame, members: pd.DataFrame, policy: Policy
) -> None:
    features = build_features(households, members, policy)
    a0, a1, b0, c0 = (features.loc[key] for key in [("a", 0), ("a", 1), ("b", 0), ("c", 0)])
    assert a0["net_income"] == 8000 and a0["per_capita_net_income"] == pytest.approx(8000 / 3)
    assert a0["income_to_line_ratio"] == pytest.approx(8000 / 3 / 2800)  # round 0 = 2014
    assert a1["income_to_line_ratio"] == pytest.approx(11000 / 3 / 2855)  # round 1 = 2015
    assert a1["income_change_since_last_round"] == pytest.approx(3000 / 8000)
    assert np.isnan(a0["income_change_since_last_round"])
    assert a0["deprived_compulsory_education"] == 1 and a1["deprived_compulsory_education"] == 0
    # b: 2000 yuan for one person (below 2800), dangerous house, no safe water; serious illness and
    # 1500 yuan of medical expenses against 2000 yuan of income: catastrophic
    assert (b0["deprived_food_clothing"], b0["deprived_safe_housing"], b0["deprived_safe_water"]) == (1, 1, 1)
    assert b0["deprived_basic_medical"] == 1
    assert b0["deprivation_score"] == pytest.approx(0.8) and b0["multidimensionally_poor"] == 1
    assert b0["no_labour_capacity"] == 1 and np.isnan(b0["dependency_ratio"])
    assert b0["housing_structure_weak"] == 1 and b0["solid_cooking_fuel"] == 1
    # c: uninsured, otherwise fine
    assert c0["deprived_basic_medical"] == 1 and c0["deprivation_score"] == pytest.approx(0.2)
    assert c0["multidimensionally_poor"] == 0
    assert c0["shock_count"] == 0 and a0["shock_count"] == 1 and b0["shock_count"] == 2


def test_survey_year_sets_the_line(households: pd.DataFrame, policy: Policy) -> None:
    with_years = households.assign(survey_year=[2019, 2020, 2019, np.nan])
    base = base_frame(with_years, None, policy)
    np.testing.assert_array_equal(base["poverty_line"].to_numpy(), [3747, 4000, 3747, 2800])
    np.testing.assert_allclose(base["monitoring_line"].to_numpy(), [5620.5, 6000, 5620.5, 4200])


def test_a_year_before_the_first_line_raises(households: pd.DataFrame, policy: Policy) -> None:
    with pytest.raises(PolicyError, match="2005"):
        build_features(households.assign(survey_year=2005), None, policy)


def test_without_members_household_size_comes_from_households(
    households: pd.DataFrame, policy: Policy
) -> None:
    features = build_features(households.assign(household_size=[3.0, 3.0, 1.0, np.nan]), None, policy)
    np.testing.assert_array_equal(features["household_size"].to_numpy(), [3, 3, 1, np.nan])
    assert features["per_capita_net_income"].iloc[0] == pytest.approx(8000 / 3)
    assert np.isnan(features["per_capita_net_income"].iloc[3])
    member_blocks = ["labour_capable_members", "mean_adult_education_years", "dependency_ratio"]
    assert features[member_blocks].isna().all().all()


def test_member_count_wins_and_households_column_fills_gaps(
    households: pd.DataFrame, members: pd.DataFrame, policy: Policy
) -> None:
    recorded = households.assign(household_size=[9.0, 9.0, 9.0, 9.0])
    without_c = members[members["household_id"] != "c"]
    features = build_features(recorded, without_c, policy)
    np.testing.assert_array_equal(features["household_size"].to_numpy(), [3, 3, 1, 9])


def test_without_members_or_sizes_per_capita_is_nan(households: pd.DataFrame, policy: Policy) -> None:
    features = build_features(households, None, policy)
    assert features["per_capita_net_income"].isna().all()
    assert features["deprived_food_clothing"].isna().all()
    assert features["net_income"].notna().all()


def test_a_survey_with_only_keys_gives_an_all_nan_frame(policy: Policy) -> None:
    bare = pd.DataFrame({"household_id": ["a", "b", "c"], "village_id": ["v", "v", "v"], "round": [0, 0, 0]})
    features = build_features(bare, None, policy)
    assert features.shape == (3, len(FEATURE_NAMES))
    assert features.isna().all().all()


def test_missing_optional_blocks_are_nan_and_others_still_computed(
    households: pd.DataFrame, members: pd.DataFrame, policy: Policy
) -> None:
    without = households.drop(columns=[*SHOCK_COLUMNS, "medical_insurance", "housing_structure"])
    features = build_features(without, members, policy)
    absent = [*SHOCK_COLUMNS, "shock_count", "medical_insurance", "housing_structure_weak"]
    assert features[absent].isna().all().all()
    # basic medical is still judged on catastrophic spending: b is, the others are not
    np.testing.assert_array_equal(features["deprived_basic_medical"].to_numpy(), [0, 0, 1, 0])
    assert features["per_capita_net_income"].notna().all()


def test_infinite_raw_values_do_not_reach_the_frame(
    households: pd.DataFrame, members: pd.DataFrame, policy: Policy
) -> None:
    features = build_features(households.assign(distance_road_km=[np.inf, 1.0, 2.0, 3.0]), members, policy)
    assert np.isnan(features["distance_road_km"].iloc[0])
    assert not np.isinf(features.to_numpy()).any()


def test_history_gives_the_trend_for_one_household(
    households: pd.DataFrame, members: pd.DataFrame, policy: Policy
) -> None:
    current = households[(households["household_id"] == "a") & (households["round"] == 1)]
    earlier = households[households["round"] == 0]  # other households' rows are ignored
    features = build_features(current, members, policy, history=earlier)
    assert features.index.tolist() == [("a", 1)]
    assert features["income_change_since_last_round"].iloc[0] == pytest.approx(3000 / 8000)
    assert features["income_to_line_ratio_last_round"].iloc[0] == pytest.approx(
        features["lasting_income_to_line_ratio"].iloc[0] * 2 - features["income_to_line_ratio"].iloc[0]
    )
    alone = build_features(current, members, policy)
    assert np.isnan(alone["income_change_since_last_round"].iloc[0])
    assert np.isnan(alone["income_to_line_ratio_last_round"].iloc[0])
    # only the indicators that look across rounds (or across the village's households) change
    looking_across = [
        indicator.name
        for indicator in INDICATORS
        if {"round", "household_id"} & {name for name, _ in parameters(indicator.function)}
    ]
    pd.testing.assert_series_equal(features.iloc[0].drop(looking_across), alone.iloc[0].drop(looking_across))


def test_history_rows_already_in_the_table_are_not_duplicated(
    households: pd.DataFrame, members: pd.DataFrame, policy: Policy
) -> None:
    features = build_features(households, members, policy, history=households)
    pd.testing.assert_frame_equal(features, build_features(households, members, policy))


def test_rows_keep_the_input_order(households: pd.DataFrame, members: pd.DataFrame, policy: Policy) -> None:
    shuffled = households.iloc[[3, 1, 2, 0]]
    features = build_features(shuffled, members, policy)
    assert features.index.tolist() == [("c", 0), ("a", 1), ("b", 0), ("a", 0)]
    ordered = build_features(households, members, policy)
    pd.testing.assert_frame_equal(features.sort_index(), ordered.sort_index())


def test_inputs_are_not_mutated(households: pd.DataFrame, members: pd.DataFrame, policy: Policy) -> None:
    household_snapshot, member_snapshot = households.copy(deep=True), members.copy(deep=True)
    history = households.iloc[:1].copy()
    build_features(households.iloc[1:], members, policy, history=history)
    pd.testing.assert_frame_equal(households, household_snapshot)
    pd.testing.assert_frame_equal(members, member_snapshot)


def test_duplicate_rows_raise(households: pd.DataFrame, policy: Policy) -> None:
    with pytest.raises(FeatureInputError, match="duplicate"):
        build_features(pd.concat([households, households.iloc[:1]]), None, policy)


def test_missing_key_column_raises(households: pd.DataFrame, policy: Policy) -> None:
    with pytest.raises(FeatureInputError, match="household_id"):
        build_features(households.drop(columns="household_id"), None, policy)


def test_bad_round_raises(households: pd.DataFrame, policy: Policy) -> None:
    with pytest.raises(FeatureInputError, match="round"):
        build_features(households.assign(round=[0, 1, None, 0]), None, policy)


def test_task_feature_names(policy: Policy) -> None:
    poverty = task_feature_names(policy, "poverty")
    assert "per_capita_net_income" not in poverty and "deprivation_score" not in poverty
    assert "deprived_safe_water" not in poverty  # a guarantee the label is made of (features/lineage.py)
    assert "housing_structure_weak" in poverty
    assert task_feature_names(policy, "relapse") == FEATURE_NAMES


def test_an_absent_member_column_is_an_absent_block_not_unknown_values(
    households: pd.DataFrame, members: pd.DataFrame, policy: Policy
) -> None:
    """Without health_status the illness test cannot be made: basic medical care is judged on insurance
    alone (households a, b insured; c not), instead of being unknown for every insured household."""
    features = build_features(households, members.drop(columns="health_status"), policy)
    assert features["serious_illness_members"].isna().all()
    np.testing.assert_array_equal(features["deprived_basic_medical"].to_numpy(), [0, 0, 0, 1])
