"""Unit tests for every indicator on 3-5 row hand-built inputs: values, missing answers, bad values."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from features import deprivation, indicators
from features.frame import FEATURE_NAMES
from features.policy import Policy
from features.registry import INDICATORS

NAN = np.nan


def s(*values: float | str | None) -> np.ndarray:
    """A column as the frame builder passes it: float64 numbers, or answers as objects (None unknown)."""
    if any(isinstance(value, str) for value in values):
        return np.array([None if value is NAN else value for value in values], dtype=object)
    return np.array(values, dtype=np.float64)


# name -> (inputs, expected). Every registered indicator has a case; see test_every_indicator_has_a_case.
CASES: dict[str, tuple[dict[str, np.ndarray], list[float]]] = {
    # labour
    "household_size": ({"household_size": s(3, 0, NAN, 1)}, [3, NAN, NAN, 1]),
    "dependency_ratio": (
        {"children": s(1, 2, 0, 1), "elderly": s(1, 0, 1, NAN), "working_age": s(2, 0, 1, 1)},
        [1.0, NAN, 1.0, NAN],
    ),
    "share_children": (
        {"children": s(2, 0, 1, NAN), "household_size": s(4, 3, 0, 2)},
        [0.5, 0.0, NAN, NAN],
    ),
    "share_elderly": (
        {"elderly": s(1, 0, NAN, 2), "household_size": s(4, 2, 3, NAN)},
        [0.25, 0.0, NAN, NAN],
    ),
    "head_age": ({"head_age": s(67, 31, NAN)}, [67, 31, NAN]),
    "mean_member_age": ({"mean_member_age": s(22.5, 40, NAN)}, [22.5, 40, NAN]),
    "youngest_member_age": ({"youngest_member_age": s(2, 40, NAN)}, [2, 40, NAN]),
    "labour_capable_members": ({"labour_capable_members": s(2, 0, NAN)}, [2, 0, NAN]),
    "members_in_migrant_work": ({"members_in_migrant_work": s(1, 0, NAN)}, [1, 0, NAN]),
    "migrant_work_months_total": ({"migrant_work_months_total": s(18, 0, NAN)}, [18, 0, NAN]),
    "no_labour_capacity": ({"labour_capable_members": s(2, 0, NAN)}, [0, 1, NAN]),
    # income
    "net_income": (
        {"income_wages": s(1000, NAN, 500), "income_agriculture_net": s(-200, 100, 0)},
        [800, NAN, 500],
    ),
    "per_capita_net_income": (
        {"net_income": s(900, 1000, NAN, 500), "household_size": s(3, NAN, 2, 0)},
        [300, NAN, NAN, NAN],
    ),
    "income_to_line_ratio": (
        {"per_capita_net_income": s(1400, NAN, 5600, -280), "poverty_line": s(2800, 2800, 2800, 2800)},
        [0.5, NAN, 2.0, -0.1],
    ),
    "income_share_wages": (
        {"income_wages": s(500, 100, 100), "net_income": s(1000, 0, -50)},
        [0.5, NAN, NAN],
    ),
    "income_share_agriculture": (
        {"income_agriculture_net": s(-100, 200, NAN), "net_income": s(1000, 400, 400)},
        [-0.1, 0.5, NAN],
    ),
    "income_share_business": (
        {"income_business": s(250, 0, 10), "net_income": s(1000, 400, NAN)},
        [0.25, 0, NAN],
    ),
    "income_share_transfers": ({"income_transfers": s(900, 0), "net_income": s(1000, 0)}, [0.9, NAN]),
    "income_share_property": ({"income_property": s(100, 0), "net_income": s(1000, 400)}, [0.1, 0]),
    "production_cost_share": (
        {"production_costs": s(1000, 0, 500, NAN), "net_income": s(3000, 0, -500, 1000)},
        [0.25, NAN, NAN, NAN],
    ),
    # education
    "mean_adult_education_years": ({"mean_adult_education_years": s(7.5, NAN, 0)}, [7.5, NAN, 0]),
    "max_adult_education_years": ({"max_adult_education_years": s(9, NAN, 0)}, [9, NAN, 0]),
    "school_age_not_in_school": ({"school_age_not_in_school": s(1, 0, NAN)}, [1, 0, NAN]),
    "schooling_gap": ({"schooling_gap": s(1.5, 0, NAN)}, [1.5, 0, NAN]),
    "head_education_years": ({"head_education_years": s(6, 0, NAN)}, [6, 0, NAN]),
    "mean_member_education_years": ({"mean_member_education_years": s(4.5, 0, NAN)}, [4.5, 0, NAN]),
    "education_years_spread": ({"education_years_spread": s(3, 0, NAN)}, [3, 0, NAN]),
    # health
    "chronic_illness_members": ({"chronic_illness_members": s(1, 0, NAN)}, [1, 0, NAN]),
    "serious_illness_members": ({"serious_illness_members": s(2, 0, NAN)}, [2, 0, NAN]),
    "disabled_members": ({"disabled_members": s(1, 0, NAN)}, [1, 0, NAN]),
    "share_disabled": (
        {"disabled_members": s(1, 0, NAN, 1), "household_size": s(2, 5, 3, 0)},
        [0.5, 0.0, NAN, NAN],
    ),
    "medical_expense_share": (
        {"medical_expenses": s(500, 100, NAN), "net_income": s(1000, 0, 1000)},
        [0.5, NAN, NAN],
    ),
    "medical_insurance": ({"medical_insurance": s(1, 0, NAN)}, [1, 0, NAN]),
    "pension_insurance": ({"pension_insurance": s(1, 0, NAN)}, [1, 0, NAN]),
    "schooling_expense_share": (
        {"schooling_expenses": s(200, 100, 0), "net_income": s(1000, -10, 1000)},
        [0.2, NAN, 0.0],
    ),
    # housing
    "dangerous_house": ({"dangerous_house": s(1, 0, NAN)}, [1, 0, NAN]),
    "housing_area_per_capita": (
        {"housing_area_m2": s(90, 50, 60), "household_size": s(3, 0, NAN)},
        [30, NAN, NAN],
    ),
    "housing_structure_weak": (
        {"housing_structure": s("earth_wood", "brick_concrete", "other", None)},
        [1, 0, 1, NAN],
    ),
    "solid_cooking_fuel": (
        {"cooking_fuel": s("firewood", "gas", "electricity", None, "coal")},
        [1, 0, 0, NAN, 1],
    ),
    "electricity": ({"electricity": s(1, 0, NAN)}, [1, 0, NAN]),
    "persons_per_room": (
        {"household_size": s(6, 2, NAN, 3), "rooms": s(3, 4, 2, 0)},
        [2.0, 0.5, NAN, NAN],
    ),
    "persons_per_bedroom": (
        {"household_size": s(6, 2, 4, 3), "bedrooms": s(2, 1, NAN, 0)},
        [3.0, 2.0, NAN, NAN],  # no bedroom recorded: undefined, not infinite
    ),
    "no_toilet": ({"toilet": s(0, 1, NAN)}, [1, 0, NAN]),
    "rent_per_capita": (
        {"rent_paid": s(1200, 0, NAN, 600), "household_size": s(4, 3, 2, 0)},
        [300, 0, NAN, NAN],
    ),
    "tenure_precarious": (
        {"tenure": s("precarious", "owned", "rented", None, "other")},
        [1, 0, 0, NAN, 0],
    ),
    # mean of the recorded parts (bad 0, regular 0.5, good 1); NaN when no part is recorded
    "housing_state_score": (
        {
            "wall_state": s("good", "bad", None, "regular", None),
            "roof_state": s("good", "bad", "good", "good", None),
            "floor_state": s("regular", "bad", None, "bad", None),
        },
        [2.5 / 3, 0, 1, 0.5, NAN],
    ),
    "floor_finished": (
        {"floor_material": s("tiles", "cement", "wood", None, "none")},
        [1, 0, 0, NAN, 0],
    ),
    "no_ceiling": ({"ceiling": s(0, 1, NAN)}, [1, 0, NAN]),
    # water
    "safe_drinking_water": ({"safe_drinking_water": s(1, 0, NAN)}, [1, 0, NAN]),
    # assets
    "durable_assets_per_capita": (
        {"durable_assets": s(4, 2, 3), "household_size": s(2, NAN, 0)},
        [2, NAN, NAN],
    ),
    "mobile_phones_per_capita": (
        {"mobile_phones": s(3, 0, 2), "household_size": s(2, 4, NAN)},
        [1.5, 0, NAN],
    ),
    "debt_to_income": ({"debt": s(2000, 100, 0), "net_income": s(1000, 0, 500)}, [2, NAN, 0]),
    # land
    "arable_land_per_capita": ({"arable_land_mu": s(6, 1, NAN), "household_size": s(3, 0, 2)}, [2, NAN, NAN]),
    "livestock_per_capita": ({"livestock_units": s(2, 0, 1), "household_size": s(4, 2, 0)}, [0.5, 0, NAN]),
    # access
    "distance_road_km": ({"distance_road_km": s(1.5, 0, NAN)}, [1.5, 0, NAN]),
    "distance_market_km": ({"distance_market_km": s(12, 0, NAN)}, [12, 0, NAN]),
    "distance_clinic_km": ({"distance_clinic_km": s(3, 0, NAN)}, [3, 0, NAN]),
    # shocks
    "shock_serious_illness": ({"shock_serious_illness": s(1, 0, NAN)}, [1, 0, NAN]),
    "shock_disability": ({"shock_disability": s(1, 0, NAN)}, [1, 0, NAN]),
    "shock_disaster": ({"shock_disaster": s(1, 0, NAN)}, [1, 0, NAN]),
    "shock_accident": ({"shock_accident": s(1, 0, NAN)}, [1, 0, NAN]),
    "shock_job_loss": ({"shock_job_loss": s(1, 0, NAN)}, [1, 0, NAN]),
    "shock_industry_failure": ({"shock_industry_failure": s(1, 0, NAN)}, [1, 0, NAN]),
    "shock_schooling_cost": ({"shock_schooling_cost": s(1, 0, NAN)}, [1, 0, NAN]),
    "shock_count": (
        {"shock_disaster": s(1, 0, NAN, NAN), "shock_job_loss": s(1, NAN, 1, NAN)},
        [2, 0, 1, NAN],
    ),
    # trend
    "income_change_since_last_round": (
        {
            "per_capita_net_income": s(1000, 1500, 800, 0, 500),
            "household_id": s("a", "a", "b", "b", "b"),
            "round": s(0, 1, 0, 1, 2),
        },
        [NAN, 0.5, NAN, -1.0, NAN],  # b: 800 -> 0 is -100 %; 0 -> 500 has no relative change
    ),
    "registered_poor": ({"poverty_status": s("poor", "exited", "never_poor", None)}, [1, 0, 0, NAN]),
    "exited_poverty": ({"poverty_status": s("poor", "exited", "never_poor", None)}, [0, 1, 0, NAN]),
    "receiving_assistance": ({"receiving_assistance": s(1, 0, NAN)}, [1, 0, NAN]),
    "assistance_ends": ({"assistance_ends": s(1, 0, NAN)}, [1, 0, NAN]),
    "income_to_line_ratio_last_round": (
        {
            "income_to_line_ratio": s(1.2, 0.9, NAN, 2.0),
            "household_id": s("a", "a", "b", "b"),
            "round": s(0, 1, 0, 1),
        },
        [NAN, 1.2, NAN, NAN],  # b's round 0 income unknown
    ),
    "lasting_income_to_line_ratio": (
        {
            "income_to_line_ratio": s(1.0, 2.0, 3.0, 6.0, NAN, 1.5),
            "household_id": s("a", "a", "a", "a", "b", "b"),
            "round": s(0, 1, 2, 3, 0, 1),
        },
        [1.0, 1.5, 2.0, 11 / 3, NAN, 1.5],  # a's round 3 reads rounds 1-3 only
    ),
    "lowest_income_to_line_ratio": (
        {
            "income_to_line_ratio": s(1.0, 2.0, 3.0, 6.0, NAN),
            "household_id": s("a", "a", "a", "a", "b"),
            "round": s(0, 1, 2, 3, 0),
        },
        [1.0, 1.0, 1.0, 2.0, NAN],
    ),
    "new_serious_illness_since_last_round": (
        {
            "serious_illness_members": s(0, 1, 1, 2, 0),
            "household_id": s("a", "a", "a", "b", "b"),
            "round": s(0, 1, 2, 0, 1),
        },
        [NAN, 1, 0, NAN, 0],  # a: 0 -> 1 new, 1 -> 1 not new; b: recovery is not new
    ),
    "new_disability_since_last_round": (
        {"disabled_members": s(0, 1, NAN, 1), "household_id": s("a", "a", "b", "b"), "round": s(0, 1, 0, 1)},
        [NAN, 1, NAN, NAN],
    ),
    "arable_land_lost_mu": (
        {
            "arable_land_mu": s(5.0, 3.5, 4.0, 2.0, 2.5),
            "household_id": s("a", "a", "a", "b", "b"),
            "round": s(0, 1, 2, 0, 1),
        },
        [NAN, 1.5, 0.0, NAN, 0.0],
    ),
    "livestock_lost_units": (
        {"livestock_units": s(3.0, 1.0, NAN), "household_id": s("a", "a", "a"), "round": s(0, 1, 2)},
        [NAN, 2.0, NAN],
    ),
    "rounds_since_exit": (
        {
            "exited_poverty": s(0, 1, 1, 1, 1, 0, 1, 1),
            "household_id": s("a", "a", "a", "b", "b", "c", "c", "d"),
            "round": s(0, 1, 2, 0, 1, 0, 2, 0),
        },
        # a exited at round 1's review; b exited in every round seen (at least 1 round ago);
        # c has no round 1 to date its exit; d has no earlier round at all
        [NAN, 0, 1, NAN, 1, NAN, NAN, NAN],
    ),
    "past_disaster_share": (
        {
            "shock_disaster": s(1, 0, 0, NAN, 1),
            "household_id": s("a", "a", "a", "b", "b"),
            "round": s(0, 1, 2, 0, 1),
        },
        [NAN, 1.0, 0.5, NAN, NAN],
    ),
    "village_shock_share": (
        {
            "village_others_answering_shocks": s(5, 5, 6, 4, NAN, 0),
            "village_others_with_shocks": s(2, 0, 3, 4, 1, 0),
        },
        # a share needs at least MIN_VILLAGE_NEIGHBOURS (5) other households that answered
        [2 / 5, 0, 3 / 6, NAN, NAN, NAN],
    ),
    # deprivation
    "deprived_food_clothing": (
        {"per_capita_net_income": s(2000, 3000, NAN, 2800), "poverty_line": s(2800, 2800, 2800, 2800)},
        [1, 0, NAN, 0],
    ),
    "deprived_compulsory_education": ({"school_age_not_in_school": s(1, 0, NAN, 2)}, [1, 0, NAN, 1]),
    "deprived_basic_medical": (
        {
            "medical_insurance": s(0, 1, 1, NAN, 1),
            "serious_illness_members": s(0, 1, 1, 0, NAN),
            "medical_expenses": s(0, 600, 400, 0, 100),
            "net_income": s(1000, 1000, 1000, 1000, 1000),
        },
        # uninsured; ill and 600 > half of 1000; ill but affordable; insurance unknown; illness unknown
        [1, 1, 0, NAN, NAN],
    ),
    "deprived_safe_housing": ({"dangerous_house": s(1, 0, NAN)}, [1, 0, NAN]),
    "deprived_safe_water": ({"safe_drinking_water": s(0, 1, NAN)}, [1, 0, NAN]),
    "deprivation_score": (
        {
            "deprived_food_clothing": s(1, 1, NAN, 0),
            "deprived_compulsory_education": s(0, 1, NAN, 0),
            "deprived_basic_medical": s(0, NAN, NAN, 0),
            "deprived_safe_housing": s(0, NAN, NAN, 0),
            "deprived_safe_water": s(1, NAN, NAN, 0),
        },
        [0.4, 1.0, NAN, 0.0],  # row 2: both known dimensions deprived -> re-normalised to 1
    ),
    "multidimensionally_poor": ({"deprivation_score": s(0.4, 0.2, NAN, 0.6)}, [1, 0, NAN, 1]),
}

FUNCTIONS = {indicator.name: indicator.function for indicator in INDICATORS}


def call(name: str, inputs: dict[str, np.ndarray], policy: Policy) -> np.ndarray:
    function = FUNCTIONS[name]
    arguments: dict[str, object] = dict(inputs)
    if "policy" in inspect.signature(function).parameters:
        arguments["policy"] = policy
    return function(**arguments)


def test_every_indicator_has_a_case() -> None:
    assert set(CASES) == set(FEATURE_NAMES)


@pytest.mark.parametrize("name", list(CASES))
def test_indicator_values(name: str, policy: Policy) -> None:
    inputs, expected = CASES[name]
    snapshot = {key: value.copy() for key, value in inputs.items()}
    result = call(name, inputs, policy)
    assert isinstance(result, np.ndarray)
    assert result.dtype == np.float64
    assert result.shape == next(iter(inputs.values())).shape
    np.testing.assert_allclose(result, np.array(expected, dtype=np.float64), equal_nan=True)
    assert not np.isinf(result).any()
    for key, value in inputs.items():  # inputs untouched
        assert value.dtype == snapshot[key].dtype
        np.testing.assert_array_equal(value, snapshot[key])


def test_zero_members_and_zero_income_give_nan_not_inf() -> None:
    zeros = s(0, 0, 0)
    assert np.isnan(indicators.per_capita_net_income(s(100, 0, -5), zeros)).all()
    assert np.isnan(indicators.income_share_wages(s(100, 0, 5), zeros)).all()
    assert np.isnan(indicators.debt_to_income(s(100, 0, 5), zeros)).all()
    assert np.isnan(indicators.dependency_ratio(s(1, 0, 2), s(1, 0, 0), zeros)).all()


def test_text_in_a_yes_no_column_becomes_nan() -> None:
    result = indicators.medical_insurance(np.array(["1", "yes", None], dtype=object))
    np.testing.assert_array_equal(result, [1.0, NAN, NAN])


def test_net_income_without_any_income_block_is_none() -> None:
    """The frame builder turns None into an all-NaN column (see test_frame)."""
    assert indicators.net_income() is None
    assert indicators.shock_count() is None


def test_net_income_uses_only_the_components_present() -> None:
    result = indicators.net_income(income_transfers=s(100, 200), income_property=s(1, NAN))
    np.testing.assert_array_equal(result, [101, NAN])


def test_income_change_skips_a_gap_in_rounds() -> None:
    """A household seen in rounds 0 and 2 has no round 1 to compare with."""
    result = indicators.income_change_since_last_round(s(1000, 2000), s("a", "a"), s(0, 2))
    assert np.isnan(result).all()


def test_income_change_from_a_negative_income_uses_its_magnitude() -> None:
    result = indicators.income_change_since_last_round(s(-1000, 500), s("a", "a"), s(0, 1))
    np.testing.assert_allclose(result, [NAN, 1.5], equal_nan=True)


def test_basic_medical_judged_on_insurance_alone_when_no_illness_block(policy: Policy) -> None:
    result = deprivation.deprived_basic_medical(policy, medical_insurance=s(0, 1, NAN))
    np.testing.assert_array_equal(result, [1, 0, NAN])


def test_basic_medical_catastrophic_spending_with_no_income(policy: Policy) -> None:
    result = deprivation.deprived_basic_medical(
        policy,
        medical_insurance=s(1, 1),
        serious_illness_members=s(1, 1),
        medical_expenses=s(100, 0),
        net_income=s(-500, 0),
    )
    np.testing.assert_array_equal(result, [1, 0])


def test_basic_medical_unknown_without_any_block(policy: Policy) -> None:
    assert deprivation.deprived_basic_medical(policy) is None


def test_deprivation_score_reweights_over_present_dimensions(policy: Policy) -> None:
    only_two = deprivation.deprivation_score(
        policy, deprived_food_clothing=s(1, 0), deprived_safe_water=s(0, 0)
    )
    np.testing.assert_allclose(only_two, [0.5, 0.0])
    assert deprivation.deprivation_score(policy) is None


def test_deprivation_score_respects_unequal_weights(policy: Policy) -> None:
    weights = {"food_clothing": 0.4, "compulsory_education": 0.15, "basic_medical": 0.15}
    weights |= {"safe_housing": 0.15, "safe_water": 0.15}
    skewed = policy.model_copy(update={"deprivation_weights": weights})
    score = deprivation.deprivation_score(
        skewed, deprived_food_clothing=s(1, 0), deprived_safe_housing=s(0, 1)
    )
    np.testing.assert_allclose(score, [0.4 / 0.55, 0.15 / 0.55])


def test_multidimensional_cutoff_comes_from_policy(policy: Policy) -> None:
    strict = policy.model_copy(update={"deprivation_cutoff": 0.6})
    score = s(0.4, 0.6)
    np.testing.assert_array_equal(deprivation.multidimensionally_poor(score, policy), [1, 1])
    np.testing.assert_array_equal(deprivation.multidimensionally_poor(score, strict), [0, 1])


def test_a_ratio_that_overflows_is_missing_not_infinite() -> None:
    ratio = indicators.per_capita_net_income(s(1e308, 10.0), s(1e-300, 2.0))
    assert np.isnan(ratio[0])
    assert ratio[1] == 5.0


def test_column_values_give_floats_for_numbers_and_objects_with_none_for_answers() -> None:
    nullable = indicators.column_values(pd.Series([1, None, 3], dtype="Int64"))
    np.testing.assert_array_equal(nullable, [1.0, NAN, 3.0])
    assert nullable.dtype == np.float64
    for dtype in ("str", "category", object):
        answers = indicators.column_values(pd.Series(["poor", None, "exited"], dtype=dtype))
        assert answers.dtype == object and answers.tolist() == ["poor", None, "exited"]
        np.testing.assert_array_equal(indicators.registered_poor(answers), [1.0, NAN, 0.0])
    integers = np.array([2, 3], dtype=np.int64)
    assert indicators.column_values(pd.Series(integers)).dtype == np.int64  # ids keep their values
