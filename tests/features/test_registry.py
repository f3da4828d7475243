"""Registry-wide contract: every entry is a well-formed, pure indicator resolvable from the base frame."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from features.frame import FEATURE_NAMES, POLICY_PARAMETER, base_frame, parameters
from features.policy import Policy
from features.registry import FAMILIES, INDICATORS, Indicator

from .conftest import full_households, full_members

# The indicator names and families of docs/interfaces.md: the columns every room may rely on.
INTERFACE_FAMILIES = {
    "income": {
        "net_income",
        "per_capita_net_income",
        "income_to_line_ratio",
        "income_share_wages",
        "income_share_agriculture",
        "income_share_business",
        "income_share_transfers",
        "income_share_property",
        "production_cost_share",
    },
    "labour": {
        "household_size",
        "dependency_ratio",
        "share_children",
        "share_elderly",
        "head_age",
        "mean_member_age",
        "youngest_member_age",
        "labour_capable_members",
        "members_in_migrant_work",
        "migrant_work_months_total",
        "no_labour_capacity",
    },
    "education": {
        "mean_adult_education_years",
        "max_adult_education_years",
        "school_age_not_in_school",
        "schooling_gap",
        "head_education_years",
        "mean_member_education_years",
        "education_years_spread",
    },
    "health": {
        "chronic_illness_members",
        "serious_illness_members",
        "disabled_members",
        "share_disabled",
        "medical_expense_share",
        "medical_insurance",
        "pension_insurance",
        "schooling_expense_share",
    },
    "housing": {
        "dangerous_house",
        "housing_area_per_capita",
        "housing_structure_weak",
        "solid_cooking_fuel",
        "electricity",
        "persons_per_room",
        "persons_per_bedroom",
        "no_toilet",
        "rent_per_capita",
        "tenure_precarious",
        "housing_state_score",
        "floor_finished",
        "no_ceiling",
    },
    "water": {"safe_drinking_water"},
    "assets": {"durable_assets_per_capita", "mobile_phones_per_capita", "debt_to_income"},
    "land": {"arable_land_per_capita", "livestock_per_capita"},
    "access": {"distance_road_km", "distance_market_km", "distance_clinic_km"},
    "shocks": {
        "shock_serious_illness",
        "shock_disability",
        "shock_disaster",
        "shock_accident",
        "shock_job_loss",
        "shock_industry_failure",
        "shock_schooling_cost",
        "shock_count",
    },
    "trend": {
        "income_change_since_last_round",
        "registered_poor",
        "exited_poverty",
        "receiving_assistance",
        "assistance_ends",
        "income_to_line_ratio_last_round",
        "lasting_income_to_line_ratio",
        "lowest_income_to_line_ratio",
        "new_serious_illness_since_last_round",
        "new_disability_since_last_round",
        "arable_land_lost_mu",
        "livestock_lost_units",
        "rounds_since_exit",
        "past_disaster_share",
        "village_shock_share",
    },
    "deprivation": {
        "deprived_food_clothing",
        "deprived_compulsory_education",
        "deprived_basic_medical",
        "deprived_safe_housing",
        "deprived_safe_water",
        "deprivation_score",
        "multidimensionally_poor",
    },
}


def test_registry_matches_the_interface() -> None:
    registered: dict[str, set[str]] = {}
    for indicator in INDICATORS:
        registered.setdefault(indicator.family, set()).add(indicator.name)
    assert registered == INTERFACE_FAMILIES
    assert set(FAMILIES) == set(INTERFACE_FAMILIES)


def test_names_are_unique_and_feature_names_follow_registry_order() -> None:
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES))
    assert tuple(indicator.name for indicator in INDICATORS) == FEATURE_NAMES


def test_indicator_is_frozen() -> None:
    with pytest.raises(AttributeError):
        INDICATORS[0].name = "renamed"  # type: ignore[misc]


@pytest.mark.parametrize("indicator", INDICATORS, ids=lambda indicator: indicator.name)
def test_entry_is_well_formed(indicator: Indicator) -> None:
    assert indicator.name == indicator.function.__name__
    assert indicator.family in FAMILIES
    doc = inspect.getdoc(indicator.function)
    assert doc and len(doc) > 20, "every indicator documents its definition and units"
    for name, required in parameters(indicator.function):
        if not required:
            assert inspect.signature(indicator.function).parameters[name].default is None


@pytest.fixture(scope="module")
def full_base(policy: Policy) -> pd.DataFrame:
    return base_frame(full_households(), full_members(), policy)


def test_every_parameter_resolves_from_the_base_frame_or_an_earlier_indicator(
    full_base: pd.DataFrame,
) -> None:
    known = set(full_base.columns) | {POLICY_PARAMETER}
    for indicator in INDICATORS:
        unresolved = [name for name, _ in parameters(indicator.function) if name not in known]
        assert not unresolved, f"{indicator.name} reads {unresolved}, which nothing before it provides"
        known.add(indicator.name)


def test_every_entry_returns_a_float_array_of_the_input_rows_without_mutating(
    full_base: pd.DataFrame, policy: Policy
) -> None:
    available = {str(name): full_base[name].to_numpy() for name in full_base.columns}
    snapshot = {name: values.copy() for name, values in available.items()}
    for indicator in INDICATORS:
        arguments = {
            name: (policy if name == POLICY_PARAMETER else available[name])
            for name, _ in parameters(indicator.function)
        }
        result = indicator.function(**arguments)
        assert isinstance(result, np.ndarray), indicator.name
        assert result.dtype == np.float64, indicator.name
        assert result.shape == (len(full_base),), indicator.name
        assert not np.isinf(result).any(), indicator.name
        available[indicator.name] = result
    for name, values in snapshot.items():
        assert pd.Series(available[name]).equals(pd.Series(values)), name
