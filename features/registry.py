"""The indicator registry: an explicit table of (name, family, function), in resolution order.

An indicator's parameters may name earlier indicators, so the order matters: labour comes first because
household size divides most per-capita indicators, and deprivation last because it reads the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from features import deprivation as d
from features import indicators as i

FAMILIES = frozenset(
    {
        "income",
        "labour",
        "education",
        "health",
        "housing",
        "water",
        "assets",
        "land",
        "access",
        "shocks",
        "trend",
        "deprivation",
    }
)


@dataclass(frozen=True)
class Indicator:
    """One feature column: its name, its family (for reports and reasons) and the function computing it."""

    name: str
    family: str
    function: Callable[..., np.ndarray | None]


def _family(family: str, *functions: Callable[..., np.ndarray | None]) -> tuple[Indicator, ...]:
    return tuple(Indicator(function.__name__, family, function) for function in functions)


INDICATORS: tuple[Indicator, ...] = (
    *_family(
        "labour",
        i.household_size,
        i.dependency_ratio,
        i.share_children,
        i.share_elderly,
        i.head_age,
        i.mean_member_age,
        i.youngest_member_age,
        i.labour_capable_members,
        i.members_in_migrant_work,
        i.migrant_work_months_total,
        i.no_labour_capacity,
    ),
    *_family(
        "income",
        i.net_income,
        i.per_capita_net_income,
        i.income_to_line_ratio,
        i.income_share_wages,
        i.income_share_agriculture,
        i.income_share_business,
        i.income_share_transfers,
        i.income_share_property,
        i.production_cost_share,
    ),
    *_family(
        "education",
        i.mean_adult_education_years,
        i.max_adult_education_years,
        i.school_age_not_in_school,
        i.schooling_gap,
        i.head_education_years,
        i.mean_member_education_years,
        i.education_years_spread,
    ),
    *_family(
        "health",
        i.chronic_illness_members,
        i.serious_illness_members,
        i.disabled_members,
        i.share_disabled,
        i.medical_expense_share,
        i.medical_insurance,
        i.pension_insurance,
        i.schooling_expense_share,
    ),
    *_family(
        "housing",
        i.dangerous_house,
        i.housing_area_per_capita,
        i.housing_structure_weak,
        i.solid_cooking_fuel,
        i.electricity,
        i.persons_per_room,
        i.persons_per_bedroom,
        i.no_toilet,
        i.rent_per_capita,
        i.tenure_precarious,
        i.housing_state_score,
        i.floor_finished,
        i.no_ceiling,
    ),
    *_family("water", i.safe_drinking_water),
    *_family("assets", i.durable_assets_per_capita, i.mobile_phones_per_capita, i.debt_to_income),
    *_family("land", i.arable_land_per_capita, i.livestock_per_capita),
    *_family("access", i.distance_road_km, i.distance_market_km, i.distance_clinic_km),
    *_family(
        "shocks",
        i.shock_serious_illness,
        i.shock_disability,
        i.shock_disaster,
        i.shock_accident,
        i.shock_job_loss,
        i.shock_industry_failure,
        i.shock_schooling_cost,
        i.shock_count,
    ),
    *_family(
        "trend",
        i.income_change_since_last_round,
        i.registered_poor,
        i.exited_poverty,
        i.receiving_assistance,
        i.assistance_ends,
        i.income_to_line_ratio_last_round,
        i.lasting_income_to_line_ratio,
        i.lowest_income_to_line_ratio,
        i.new_serious_illness_since_last_round,
        i.new_disability_since_last_round,
        i.arable_land_lost_mu,
        i.livestock_lost_units,
        i.rounds_since_exit,
        i.past_disaster_share,
        i.village_shock_share,
    ),
    *_family(
        "deprivation",
        d.deprived_food_clothing,
        d.deprived_compulsory_education,
        d.deprived_basic_medical,
        d.deprived_safe_housing,
        d.deprived_safe_water,
        d.deprivation_score,
        d.multidimensionally_poor,
    ),
)
