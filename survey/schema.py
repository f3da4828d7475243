"""The canonical survey schema: households and members, every round in one table.

Modelled on the poverty-household archive card (建档立卡) of China's targeted poverty alleviation.
Only the ids and the round are required; every other column is an optional block, so an external
survey that lacks, say, the insurance or shock blocks still validates. Money is per year in the
survey's currency (the policy's `currency`: yuan for the shipped policy), land is mu, distances are
km. Yes/no answers are 0/1 floats so that a missing answer stays NaN.
"""

from __future__ import annotations

from typing import Optional

import pandera.pandas as pa
from pandera.typing import Series

HOUSING_STRUCTURES = ("reinforced_concrete", "brick_concrete", "brick_wood", "earth_wood", "other")
COOKING_FUELS = ("electricity", "gas", "biogas", "coal", "firewood", "other")
POVERTY_STATUSES = ("never_poor", "poor", "exited")
RELATIONS_TO_HEAD = ("head", "spouse", "child", "child_in_law", "grandchild", "parent", "sibling", "other")
SEXES = ("male", "female")
HEALTH_STATUSES = ("healthy", "chronic", "serious_illness")
LABOUR_CAPACITIES = ("skilled", "ordinary", "weak", "lost", "none")
TENURES = ("owned", "owned_paying", "rented", "precarious", "other")
"""Tenure of the dwelling: owned outright, owned and still paying instalments, rented, precarious
(squatting, no secure right to stay), other (assigned by an employer, borrowed)."""
BUILDING_STATES = ("good", "regular", "bad")
"""State of a part of the dwelling (walls, roof, floor) as a surveyor judges it."""
FLOOR_MATERIALS = ("tiles", "cement", "wood", "natural", "none", "other")
"""Floor of the dwelling: tiles (ceramic, mosaic, terrazzo), cement, wood, natural material (earth,
bamboo), no floor, other."""

INCOME_COLUMNS = (
    "income_wages",
    "income_agriculture_net",
    "income_business",
    "income_transfers",
    "income_property",
)
SHOCK_COLUMNS = (
    "shock_serious_illness",
    "shock_disability",
    "shock_disaster",
    "shock_accident",
    "shock_job_loss",
    "shock_industry_failure",
    "shock_schooling_cost",
)
MAX_MEMBERS_PER_HOUSEHOLD = 30
BLOCKS: dict[str, tuple[str, ...]] = {
    "income": INCOME_COLUMNS,
    "spending": ("production_costs", "medical_expenses", "schooling_expenses", "debt"),
    "land": ("arable_land_mu", "livestock_units"),
    "housing": ("housing_area_m2", "housing_structure", "dangerous_house", "cooking_fuel"),
    "utilities": ("safe_drinking_water", "electricity"),
    "access": ("distance_road_km", "distance_market_km", "distance_clinic_km"),
    "insurance": ("medical_insurance", "pension_insurance"),
    "shocks": SHOCK_COLUMNS,
    "registration": ("poverty_status", "receiving_assistance", "assistance_ends"),
}
"""The household table's optional blocks, for reports of what a round is missing (a block counts where
the survey has all its columns)."""


def _yes_no() -> pa.Field:  # type: ignore[valid-type]
    return pa.Field(isin=[0.0, 1.0], nullable=True)


MONEY_SANITY_BOUND = 1e15
"""A bound no yearly household amount reaches in any currency: the schema only refuses the absurd. The
plausible range depends on the currency, and so is the policy's (`money_bounds` in features/policy.yaml,
checked by `povrisk validate` and by the commands that read a survey)."""
NET_MONEY_COLUMNS = ("income_agriculture_net", "income_business")
"""Money columns that can be negative: farm and business net income after a bad year."""
MONEY_COLUMNS = (
    *INCOME_COLUMNS,
    "production_costs",
    "medical_expenses",
    "schooling_expenses",
    "debt",
    "rent_paid",
)
"""Every money column of the household table: one household's amount per year, in the survey's currency."""


def _money(*, can_be_negative: bool = False) -> pa.Field:  # type: ignore[valid-type]
    """An amount per year in the survey's currency. Farm and business net income can be negative after a
    bad year. The plausible range is the policy's (`MONEY_SANITY_BOUND`)."""
    return pa.Field(ge=-MONEY_SANITY_BOUND if can_be_negative else 0.0, le=MONEY_SANITY_BOUND, nullable=True)


class Households(pa.DataFrameModel):
    """One row per household and round."""

    household_id: Series[str] = pa.Field(str_length={"min_value": 1})
    village_id: Series[str] = pa.Field(str_length={"min_value": 1})
    round: Series[int] = pa.Field(ge=0, le=100)
    survey_year: Optional[Series[int]] = pa.Field(ge=1900, le=2200)  # calendar year of the round

    # income block, yuan per year
    income_wages: Optional[Series[float]] = _money()
    income_agriculture_net: Optional[Series[float]] = _money(can_be_negative=True)
    income_business: Optional[Series[float]] = _money(can_be_negative=True)
    income_transfers: Optional[Series[float]] = _money()
    income_property: Optional[Series[float]] = _money()
    # spending block, yuan per year
    production_costs: Optional[Series[float]] = _money()
    medical_expenses: Optional[Series[float]] = _money()
    schooling_expenses: Optional[Series[float]] = _money()
    debt: Optional[Series[float]] = _money()
    # land and livestock
    arable_land_mu: Optional[Series[float]] = pa.Field(ge=0, le=10_000, nullable=True)
    livestock_units: Optional[Series[float]] = pa.Field(ge=0, le=10_000, nullable=True)
    # housing and utilities
    housing_area_m2: Optional[Series[float]] = pa.Field(ge=0, le=5_000, nullable=True)
    housing_structure: Optional[Series[str]] = pa.Field(isin=HOUSING_STRUCTURES, nullable=True)
    dangerous_house: Optional[Series[float]] = _yes_no()
    safe_drinking_water: Optional[Series[float]] = _yes_no()
    electricity: Optional[Series[float]] = _yes_no()
    cooking_fuel: Optional[Series[str]] = pa.Field(isin=COOKING_FUELS, nullable=True)
    rooms: Optional[Series[float]] = pa.Field(ge=0, le=100, nullable=True)  # all rooms of the dwelling
    bedrooms: Optional[Series[float]] = pa.Field(ge=0, le=100, nullable=True)
    toilet: Optional[Series[float]] = _yes_no()  # has a toilet (any system) in the dwelling
    tenure: Optional[Series[str]] = pa.Field(isin=TENURES, nullable=True)
    rent_paid: Optional[Series[float]] = _money()  # rent or instalments paid for the dwelling, per year
    wall_state: Optional[Series[str]] = pa.Field(isin=BUILDING_STATES, nullable=True)
    roof_state: Optional[Series[str]] = pa.Field(isin=BUILDING_STATES, nullable=True)
    floor_state: Optional[Series[str]] = pa.Field(isin=BUILDING_STATES, nullable=True)
    floor_material: Optional[Series[str]] = pa.Field(isin=FLOOR_MATERIALS, nullable=True)
    ceiling: Optional[Series[float]] = _yes_no()  # has a ceiling under the roof
    # access, km
    distance_road_km: Optional[Series[float]] = pa.Field(ge=0, le=500, nullable=True)
    distance_market_km: Optional[Series[float]] = pa.Field(ge=0, le=500, nullable=True)
    distance_clinic_km: Optional[Series[float]] = pa.Field(ge=0, le=500, nullable=True)
    # assets and insurance
    durable_assets: Optional[Series[float]] = pa.Field(ge=0, le=1_000, nullable=True)
    mobile_phones: Optional[Series[float]] = pa.Field(ge=0, le=100, nullable=True)
    medical_insurance: Optional[Series[float]] = _yes_no()
    pension_insurance: Optional[Series[float]] = _yes_no()
    # shocks reported this round
    shock_serious_illness: Optional[Series[float]] = _yes_no()
    shock_disability: Optional[Series[float]] = _yes_no()
    shock_disaster: Optional[Series[float]] = _yes_no()
    shock_accident: Optional[Series[float]] = _yes_no()
    shock_job_loss: Optional[Series[float]] = _yes_no()
    shock_industry_failure: Optional[Series[float]] = _yes_no()
    shock_schooling_cost: Optional[Series[float]] = _yes_no()
    # registration and assistance as recorded at the start of the round
    poverty_status: Optional[Series[str]] = pa.Field(isin=POVERTY_STATUSES, nullable=True)
    receiving_assistance: Optional[Series[float]] = _yes_no()
    assistance_ends: Optional[Series[float]] = _yes_no()
    # for surveys without a member table
    household_size: Optional[Series[float]] = pa.Field(ge=1, le=MAX_MEMBERS_PER_HOUSEHOLD, nullable=True)

    class Config:
        coerce = True
        strict = False  # external surveys keep their extra columns
        unique = ["household_id", "round"]


class Members(pa.DataFrameModel):
    """One row per household member and round."""

    household_id: Series[str] = pa.Field(str_length={"min_value": 1})
    member_id: Series[str] = pa.Field(str_length={"min_value": 1})
    round: Series[int] = pa.Field(ge=0, le=100)

    relation_to_head: Optional[Series[str]] = pa.Field(isin=RELATIONS_TO_HEAD, nullable=True)
    sex: Optional[Series[str]] = pa.Field(isin=SEXES, nullable=True)
    age: Optional[Series[float]] = pa.Field(ge=0, le=120, nullable=True)
    education_years: Optional[Series[float]] = pa.Field(ge=0, le=25, nullable=True)
    school_years_behind: Optional[Series[float]] = pa.Field(ge=0, le=20, nullable=True)  # school-age only
    in_school: Optional[Series[float]] = _yes_no()
    health_status: Optional[Series[str]] = pa.Field(isin=HEALTH_STATUSES, nullable=True)
    disability: Optional[Series[float]] = _yes_no()
    labour_capacity: Optional[Series[str]] = pa.Field(isin=LABOUR_CAPACITIES, nullable=True)
    migrant_work_months: Optional[Series[float]] = pa.Field(ge=0, le=12, nullable=True)

    class Config:
        coerce = True
        strict = False
        unique = ["household_id", "member_id", "round"]


class Villages(pa.DataFrameModel):
    """Optional village register; when present, every household's village must be in it."""

    village_id: Series[str] = pa.Field(str_length={"min_value": 1}, unique=True)
    township_id: Optional[Series[str]] = pa.Field(nullable=True)

    class Config:
        coerce = True
        strict = False


class Verification(pa.DataFrameModel):
    """Optional: households whose poverty status a field verification established in a round.

    A verification visit (the county's sampled check of the register, or a third-party assessment
    (第三方评估)) sees the household as it is, beyond what the survey reported: `poor` is its finding
    (0/1). The households checked are a random sample, so the findings can also calibrate risks.
    """

    household_id: Series[str] = pa.Field(str_length={"min_value": 1})
    round: Series[int] = pa.Field(ge=0, le=100)
    poor: Series[float] = pa.Field(isin=[0.0, 1.0])

    class Config:
        coerce = True
        strict = False
        unique = ["household_id", "round"]
