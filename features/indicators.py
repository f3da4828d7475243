"""Household indicators: one pure function per feature column (Hamilton style).

Each function is named after the column it produces and its parameters are named after the columns it
reads: raw household columns (survey/schema.py), member aggregates (features/members.py), the round's
``poverty_line`` / ``monitoring_line`` (yuan per person per year), ``policy``, or earlier indicators.
``features/frame.py`` resolves the parameters by name. A parameter with a ``None`` default is an
optional block: the indicator is computed from whichever of those blocks the survey has. The ages in
the docstrings below (16, 65, 7-15) are the shipped policy's ``ages`` (the member aggregates follow the
policy in force), and "yuan" is its currency (money is in the policy's ``currency``).

Conventions: inputs and outputs are one-dimensional numpy arrays, one value per household row in the
frame's row order: numbers as float64 (NaN for unknown), answers from a list of levels as objects (None
for unknown). Arrays rather than pandas Series because a serving request scores one household, where
building the ~100 intermediate Series cost more than the arithmetic. Yes/no indicators are 0.0/1.0 with
NaN for unknown; a ratio whose denominator is zero, negative or unknown is NaN (never inf). No function
mutates its inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from features.panel import same_household_in_round, same_household_in_rounds

WEAK_HOUSING_STRUCTURES = ("earth_wood", "other")
"""Housing structures counted as weak: earth-and-wood houses and the residual "other" (mostly makeshift)."""
SOLID_COOKING_FUELS = ("coal", "firewood", "other")
"""Solid cooking fuels (indoor-air and poverty marker). "other" is mostly straw and dung in rural surveys."""
PRECARIOUS_TENURES = ("precarious",)
"""Tenures without a secure right to stay in the dwelling (squatting, informal occupation)."""
BUILDING_STATE_SCORES = {"bad": 0.0, "regular": 0.5, "good": 1.0}
"""Score of a part of the dwelling (walls, roof, floor) by its state."""


def _building_state_score(state: Any) -> float:
    return BUILDING_STATE_SCORES.get(state, np.nan) if isinstance(state, str) else np.nan


FINISHED_FLOORS = ("tiles",)
"""Floors counted as finished: ceramic, mosaic or terrazzo tiles (cement, wood, earth and none are not)."""
LASTING_INCOME_ROUNDS = 3
"""Rounds (this one and the two before) over which the lasting income level and its low point are read:
one round's income mixes the household's lasting level with the year's luck."""
PAST_DISASTER_ROUNDS = 4
"""Earlier rounds over which the household's (= its village's) disaster record is read."""
EXIT_LOOKBACK_ROUNDS = 10
"""Most earlier rounds looked back over to date a household's exit from poverty."""
MIN_VILLAGE_NEIGHBOURS = 5
"""Fewest other households of the same village and round from which a village share is computed; with
fewer (e.g. one household scored alone) the share would describe a handful of neighbours, so it is NaN."""


# ---------------------------------------------------------------------------------------------- helpers


def column_values(column: pd.Series) -> np.ndarray:
    """A raw column as the indicators read it: numbers as they are (nullable ones as float64 with NaN),
    anything else as objects with None for a missing answer."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "fiub":
        return column.to_numpy()
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    # through the distinct answers: a survey column holds a handful, and each becomes one Python object
    # (converting every cell of an Arrow string column costs several times more on a county)
    codes, uniques = pd.factorize(column)
    answers = np.empty(len(uniques) + 1, dtype=object)
    answers[:-1] = np.asarray(uniques, dtype=object)
    answers[-1] = None  # code -1: no answer
    return answers[codes]


def _values(values: np.ndarray) -> np.ndarray:
    """The values as a float64 array (the same array when already float64: nothing is modified);
    non-numeric entries become NaN."""
    if values.dtype == np.float64:
        return values
    return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=np.float64)


def _per_positive(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator where the denominator is positive; NaN elsewhere, and where the quotient
    overflows float64 (no inf, no sign flips)."""
    bottom = _values(denominator)
    ratio = np.full(len(bottom), np.nan)
    with np.errstate(over="ignore"):
        np.divide(_values(numerator), bottom, out=ratio, where=bottom > 0)
    ratio[np.isinf(ratio)] = np.nan
    return ratio


def _flag(condition: np.ndarray, known: np.ndarray) -> np.ndarray:
    """1.0 where condition holds, 0.0 where it does not, NaN where the inputs are unknown."""
    return np.where(known, condition, np.nan)


def _per_answer(values: np.ndarray | pd.Series, score_of: Callable[[Any], float]) -> np.ndarray:
    """``score_of(answer)`` for each answer, NaN where unanswered; evaluated once per distinct answer (a
    survey column holds a handful), not once per household."""
    codes, uniques = pd.factorize(values)
    scored = np.array([score_of(answer) for answer in uniques], dtype=np.float64)
    return np.append(scored, np.nan)[codes]  # code -1 (unanswered) takes the NaN at the end


def answer_flag(values: np.ndarray | pd.Series, levels: tuple[str, ...]) -> np.ndarray:
    """1.0 where an answer is one of ``levels``, 0.0 for another answer, NaN where unanswered."""
    return _per_answer(values, lambda answer: 1.0 if answer in levels else 0.0)


def _sum_present(columns: list[np.ndarray | None], *, skip_unknown: bool) -> np.ndarray | None:
    """Row sum over the columns that are present (not None); None when none is present.

    With ``skip_unknown`` a NaN cell is skipped (NaN only when every present cell is NaN); without it a
    NaN cell makes the row's sum NaN.
    """
    present = [_values(column) for column in columns if column is not None]
    if not present:
        return None
    stacked = np.column_stack(present)
    if skip_unknown:
        known = ~np.isnan(stacked)
        return np.where(known.any(axis=1), np.nansum(stacked, axis=1), np.nan)
    return stacked.sum(axis=1)


# ----------------------------------------------------------------------------------------------- labour


def household_size(household_size: np.ndarray) -> np.ndarray:
    """Number of household members (persons); NaN when unknown or not at least 1."""
    size = _values(household_size)
    return np.where(size >= 1, size, np.nan)


def dependency_ratio(children: np.ndarray, elderly: np.ndarray, working_age: np.ndarray) -> np.ndarray:
    """(Members under 16 + members 65 and over) / members aged 16-64; NaN when nobody is of working age."""
    dependants = _values(children) + _values(elderly)
    return _per_positive(dependants, working_age)


def share_children(children: np.ndarray, household_size: np.ndarray) -> np.ndarray:
    """Members under 16 / household size (0-1)."""
    return _per_positive(children, household_size)


def share_elderly(elderly: np.ndarray, household_size: np.ndarray) -> np.ndarray:
    """Members aged 65 and over / household size (0-1)."""
    return _per_positive(elderly, household_size)


def head_age(head_age: np.ndarray) -> np.ndarray:
    """Age of the head of household, years; NaN when no member is recorded as head."""
    return _values(head_age)


def mean_member_age(mean_member_age: np.ndarray) -> np.ndarray:
    """Mean age of the members, years."""
    return _values(mean_member_age)


def youngest_member_age(youngest_member_age: np.ndarray) -> np.ndarray:
    """Age of the youngest member, years (young children tie carers to the home)."""
    return _values(youngest_member_age)


def labour_capable_members(labour_capable_members: np.ndarray) -> np.ndarray:
    """Members able to work (skilled/ordinary labour capacity, else 16-64 without disability or serious
    illness), persons."""
    return _values(labour_capable_members)


def members_in_migrant_work(members_in_migrant_work: np.ndarray) -> np.ndarray:
    """Members working away from home at least 6 months of the year, persons."""
    return _values(members_in_migrant_work)


def migrant_work_months_total(migrant_work_months_total: np.ndarray) -> np.ndarray:
    """Months of migrant work summed over members, person-months per year."""
    return _values(migrant_work_months_total)


def no_labour_capacity(labour_capable_members: np.ndarray) -> np.ndarray:
    """1 when no member is able to work (a household that cannot earn its way out), else 0."""
    capable = _values(labour_capable_members)
    return _flag(capable == 0, ~np.isnan(capable))


# ----------------------------------------------------------------------------------------------- income


def net_income(
    income_wages: np.ndarray | None = None,
    income_agriculture_net: np.ndarray | None = None,
    income_business: np.ndarray | None = None,
    income_transfers: np.ndarray | None = None,
    income_property: np.ndarray | None = None,
) -> np.ndarray | None:
    """Household net income, yuan per year: the sum of the income components the survey records
    (wages, net farm income, net business income, transfers, property income).

    A component the survey does not have is left out; a recorded component that is unknown for a
    household makes that household's net income unknown (NaN) rather than understated.
    """
    components = [income_wages, income_agriculture_net, income_business, income_transfers, income_property]
    return _sum_present(components, skip_unknown=False)


def per_capita_net_income(net_income: np.ndarray, household_size: np.ndarray) -> np.ndarray:
    """Net income per household member, yuan per person per year."""
    return _per_positive(net_income, household_size)


def income_to_line_ratio(per_capita_net_income: np.ndarray, poverty_line: np.ndarray) -> np.ndarray:
    """Per-capita net income divided by the round's poverty line (1.0 = exactly on the line)."""
    return _per_positive(per_capita_net_income, poverty_line)


def income_share_wages(income_wages: np.ndarray, net_income: np.ndarray) -> np.ndarray:
    """Wage income / net income; NaN when net income is not positive."""
    return _per_positive(income_wages, net_income)


def income_share_agriculture(income_agriculture_net: np.ndarray, net_income: np.ndarray) -> np.ndarray:
    """Net farm income / net income; NaN when net income is not positive (may be negative after a loss)."""
    return _per_positive(income_agriculture_net, net_income)


def income_share_business(income_business: np.ndarray, net_income: np.ndarray) -> np.ndarray:
    """Net business income / net income; NaN when net income is not positive."""
    return _per_positive(income_business, net_income)


def income_share_transfers(income_transfers: np.ndarray, net_income: np.ndarray) -> np.ndarray:
    """Transfer income (subsidies, pensions, remittances) / net income; NaN when net income is not
    positive. A high share means the household lives on assistance."""
    return _per_positive(income_transfers, net_income)


def income_share_property(income_property: np.ndarray, net_income: np.ndarray) -> np.ndarray:
    """Property income (rents, dividends, asset-income schemes) / net income; NaN when net income is not
    positive."""
    return _per_positive(income_property, net_income)


def production_cost_share(production_costs: np.ndarray, net_income: np.ndarray) -> np.ndarray:
    """Production costs / (net income + production costs): the share of gross income spent on producing
    it; NaN when that gross income is not positive."""
    gross_income = _values(net_income) + _values(production_costs)
    return _per_positive(production_costs, gross_income)


# -------------------------------------------------------------------------------------------- education


def mean_adult_education_years(mean_adult_education_years: np.ndarray) -> np.ndarray:
    """Mean years of schooling of members aged 16 and over, years."""
    return _values(mean_adult_education_years)


def max_adult_education_years(max_adult_education_years: np.ndarray) -> np.ndarray:
    """Most years of schooling of any member aged 16 and over, years."""
    return _values(max_adult_education_years)


def school_age_not_in_school(school_age_not_in_school: np.ndarray) -> np.ndarray:
    """Children aged 7-15 (compulsory-education age) not in school, persons."""
    return _values(school_age_not_in_school)


def schooling_gap(schooling_gap: np.ndarray) -> np.ndarray:
    """Mean years behind the grade expected for their age, over the school-age members (years); NaN when
    the household has no school-age member or the survey does not record it."""
    return _values(schooling_gap)


def head_education_years(head_education_years: np.ndarray) -> np.ndarray:
    """Years of schooling of the head of household, years; NaN when no member is recorded as head."""
    return _values(head_education_years)


def mean_member_education_years(mean_member_education_years: np.ndarray) -> np.ndarray:
    """Years of schooling per member, children included (the household's stock of schooling per person)."""
    return _values(mean_member_education_years)


def education_years_spread(education_years_spread: np.ndarray) -> np.ndarray:
    """Standard deviation of the members' years of schooling (0 when all have the same), years."""
    return _values(education_years_spread)


# ----------------------------------------------------------------------------------------------- health


def chronic_illness_members(chronic_illness_members: np.ndarray) -> np.ndarray:
    """Members with a chronic illness, persons."""
    return _values(chronic_illness_members)


def serious_illness_members(serious_illness_members: np.ndarray) -> np.ndarray:
    """Members with a serious illness, persons."""
    return _values(serious_illness_members)


def disabled_members(disabled_members: np.ndarray) -> np.ndarray:
    """Members with a disability, persons."""
    return _values(disabled_members)


def share_disabled(disabled_members: np.ndarray, household_size: np.ndarray) -> np.ndarray:
    """Members with a disability / household size (0-1)."""
    return _per_positive(disabled_members, household_size)


def medical_expense_share(medical_expenses: np.ndarray, net_income: np.ndarray) -> np.ndarray:
    """Out-of-pocket medical expenses / net income; NaN when net income is not positive."""
    return _per_positive(medical_expenses, net_income)


def medical_insurance(medical_insurance: np.ndarray) -> np.ndarray:
    """1 when the household is covered by basic medical insurance (NRCMS / resident scheme), else 0."""
    return _values(medical_insurance)


def pension_insurance(pension_insurance: np.ndarray) -> np.ndarray:
    """1 when the household takes part in the resident pension insurance, else 0."""
    return _values(pension_insurance)


def schooling_expense_share(schooling_expenses: np.ndarray, net_income: np.ndarray) -> np.ndarray:
    """Schooling expenses / net income; NaN when net income is not positive."""
    return _per_positive(schooling_expenses, net_income)


# ---------------------------------------------------------------------------------------------- housing


def dangerous_house(dangerous_house: np.ndarray) -> np.ndarray:
    """1 when the house is appraised as dangerous (危房), else 0."""
    return _values(dangerous_house)


def housing_area_per_capita(housing_area_m2: np.ndarray, household_size: np.ndarray) -> np.ndarray:
    """Floor area of the dwelling per member, m² per person."""
    return _per_positive(housing_area_m2, household_size)


def housing_structure_weak(housing_structure: np.ndarray) -> np.ndarray:
    """1 when the house is earth-and-wood or of another (makeshift) structure, 0 for brick or concrete."""
    return answer_flag(housing_structure, WEAK_HOUSING_STRUCTURES)


def solid_cooking_fuel(cooking_fuel: np.ndarray) -> np.ndarray:
    """1 when the household cooks with coal, firewood or other solid fuel, 0 for electricity, gas, biogas."""
    return answer_flag(cooking_fuel, SOLID_COOKING_FUELS)


def electricity(electricity: np.ndarray) -> np.ndarray:
    """1 when the house has a household electricity connection, else 0."""
    return _values(electricity)


def persons_per_room(household_size: np.ndarray, rooms: np.ndarray) -> np.ndarray:
    """Household members per room of the dwelling (all rooms), persons per room; NaN without rooms."""
    return _per_positive(household_size, rooms)


def persons_per_bedroom(household_size: np.ndarray, bedrooms: np.ndarray) -> np.ndarray:
    """Household members per bedroom, persons per bedroom; NaN when no bedroom is recorded."""
    return _per_positive(household_size, bedrooms)


def no_toilet(toilet: np.ndarray) -> np.ndarray:
    """1 when the dwelling has no toilet of any kind, 0 when it has one."""
    has_toilet = _values(toilet)
    return _flag(has_toilet == 0, ~np.isnan(has_toilet))


def rent_per_capita(rent_paid: np.ndarray, household_size: np.ndarray) -> np.ndarray:
    """Rent (or house instalments) paid per member, money per person per year (0 for owners)."""
    return _per_positive(rent_paid, household_size)


def tenure_precarious(tenure: np.ndarray) -> np.ndarray:
    """1 when the household occupies its dwelling without a secure right to stay, else 0."""
    return answer_flag(tenure, PRECARIOUS_TENURES)


def housing_state_score(
    wall_state: np.ndarray | None = None,
    roof_state: np.ndarray | None = None,
    floor_state: np.ndarray | None = None,
) -> np.ndarray | None:
    """State of the dwelling from 0 (walls, roof and floor all bad) to 1 (all good): the mean of the
    recorded parts' scores (bad 0, regular 0.5, good 1); NaN when no part's state is recorded."""
    parts = [part for part in (wall_state, roof_state, floor_state) if part is not None]
    if not parts:
        return None
    scores = np.column_stack([_per_answer(part, _building_state_score) for part in parts])
    known = ~np.isnan(scores)
    count = known.sum(axis=1)
    total = np.where(known, scores, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def floor_finished(floor_material: np.ndarray) -> np.ndarray:
    """1 when the floor is tiled (ceramic, mosaic, terrazzo), 0 for cement, wood, earth or no floor."""
    return answer_flag(floor_material, FINISHED_FLOORS)


def no_ceiling(ceiling: np.ndarray) -> np.ndarray:
    """1 when the dwelling has no ceiling under the roof, 0 when it has one."""
    has_ceiling = _values(ceiling)
    return _flag(has_ceiling == 0, ~np.isnan(has_ceiling))


# ------------------------------------------------------------------------------------------------ water


def safe_drinking_water(safe_drinking_water: np.ndarray) -> np.ndarray:
    """1 when the household has safe drinking water (quality and quantity assured), else 0."""
    return _values(safe_drinking_water)


# ----------------------------------------------------------------------------------------------- assets


def durable_assets_per_capita(durable_assets: np.ndarray, household_size: np.ndarray) -> np.ndarray:
    """Durable consumer goods owned (count of items: vehicles, appliances, ...) per member."""
    return _per_positive(durable_assets, household_size)


def mobile_phones_per_capita(mobile_phones: np.ndarray, household_size: np.ndarray) -> np.ndarray:
    """Mobile phones owned per member."""
    return _per_positive(mobile_phones, household_size)


def debt_to_income(debt: np.ndarray, net_income: np.ndarray) -> np.ndarray:
    """Outstanding debt / annual net income (years of income owed); NaN when net income is not positive."""
    return _per_positive(debt, net_income)


# ------------------------------------------------------------------------------------------------- land


def arable_land_per_capita(arable_land_mu: np.ndarray, household_size: np.ndarray) -> np.ndarray:
    """Arable land per member, mu per person."""
    return _per_positive(arable_land_mu, household_size)


def livestock_per_capita(livestock_units: np.ndarray, household_size: np.ndarray) -> np.ndarray:
    """Livestock per member, livestock units per person."""
    return _per_positive(livestock_units, household_size)


# ----------------------------------------------------------------------------------------------- access


def distance_road_km(distance_road_km: np.ndarray) -> np.ndarray:
    """Distance from the house to the nearest hardened road, km."""
    return _values(distance_road_km)


def distance_market_km(distance_market_km: np.ndarray) -> np.ndarray:
    """Distance from the house to the nearest market town, km."""
    return _values(distance_market_km)


def distance_clinic_km(distance_clinic_km: np.ndarray) -> np.ndarray:
    """Distance from the house to the nearest village clinic, km."""
    return _values(distance_clinic_km)


# ----------------------------------------------------------------------------------------------- shocks


def shock_serious_illness(shock_serious_illness: np.ndarray) -> np.ndarray:
    """1 when a member fell seriously ill this round, else 0."""
    return _values(shock_serious_illness)


def shock_disability(shock_disability: np.ndarray) -> np.ndarray:
    """1 when a member became disabled this round, else 0."""
    return _values(shock_disability)


def shock_disaster(shock_disaster: np.ndarray) -> np.ndarray:
    """1 when a natural disaster hit the household this round, else 0."""
    return _values(shock_disaster)


def shock_accident(shock_accident: np.ndarray) -> np.ndarray:
    """1 when an accident struck the household this round, else 0."""
    return _values(shock_accident)


def shock_job_loss(shock_job_loss: np.ndarray) -> np.ndarray:
    """1 when a member lost a job (or migrant work) this round, else 0."""
    return _values(shock_job_loss)


def shock_industry_failure(shock_industry_failure: np.ndarray) -> np.ndarray:
    """1 when the household's farm or business venture failed this round, else 0."""
    return _values(shock_industry_failure)


def shock_schooling_cost(shock_schooling_cost: np.ndarray) -> np.ndarray:
    """1 when schooling costs rose sharply this round (e.g. a child entered upper school), else 0."""
    return _values(shock_schooling_cost)


def shock_count(
    shock_serious_illness: np.ndarray | None = None,
    shock_disability: np.ndarray | None = None,
    shock_disaster: np.ndarray | None = None,
    shock_accident: np.ndarray | None = None,
    shock_job_loss: np.ndarray | None = None,
    shock_industry_failure: np.ndarray | None = None,
    shock_schooling_cost: np.ndarray | None = None,
) -> np.ndarray | None:
    """Number of shocks reported this round, over the shock questions the survey asks; an unanswered
    question is skipped, and the count is NaN only when none was answered."""
    shocks = [
        shock_serious_illness,
        shock_disability,
        shock_disaster,
        shock_accident,
        shock_job_loss,
        shock_industry_failure,
        shock_schooling_cost,
    ]
    return _sum_present(shocks, skip_unknown=True)


# ------------------------------------------------------------------------------------------------ trend


def income_change_since_last_round(
    per_capita_net_income: np.ndarray, household_id: np.ndarray, round: np.ndarray
) -> np.ndarray:
    """Relative change of per-capita net income since the same household's previous round (round - 1):
    (now - before) / |before|. NaN when the previous round is absent or its income was zero or unknown."""
    before = same_household_in_round(_values(per_capita_net_income), household_id, round, offset=-1)
    change = np.full(len(before), np.nan)
    np.divide(_values(per_capita_net_income) - before, np.abs(before), out=change, where=before != 0)
    return change


def registered_poor(poverty_status: np.ndarray) -> np.ndarray:
    """1 when the household is registered as poor (建档立卡贫困户) at the start of the round, else 0."""
    return answer_flag(poverty_status, ("poor",))


def exited_poverty(poverty_status: np.ndarray) -> np.ndarray:
    """1 when the household is registered as having exited poverty (已脱贫), else 0."""
    return answer_flag(poverty_status, ("exited",))


def receiving_assistance(receiving_assistance: np.ndarray) -> np.ndarray:
    """1 when the household receives targeted assistance this round, else 0."""
    return _values(receiving_assistance)


def assistance_ends(assistance_ends: np.ndarray) -> np.ndarray:
    """1 when the household's assistance is scheduled to end (e.g. end of the stabilisation period)."""
    return _values(assistance_ends)


def _this_and_earlier(
    values: np.ndarray, household_id: np.ndarray, round: np.ndarray, rounds: int
) -> np.ndarray:
    """(rows x rounds) array: the value this round, then the same household's value 1, 2, ... rounds back."""
    earlier = same_household_in_rounds(_values(values), household_id, round, range(-1, -rounds, -1))
    return np.column_stack([_values(values), earlier])


def _nan_reduce(stacked: np.ndarray, reduce: str) -> np.ndarray:
    """Row-wise nanmean / nanmin over the known cells; NaN (no warning) where a row is all unknown."""
    known = ~np.isnan(stacked)
    result = np.full(len(stacked), np.nan)
    rows = known.any(axis=1)
    result[rows] = getattr(np, reduce)(stacked[rows], axis=1)
    return result


def _increase_flag(now: np.ndarray, household_id: np.ndarray, round: np.ndarray) -> np.ndarray:
    """1 when the count rose since the previous round, 0 when it did not, NaN when either is unknown."""
    before = same_household_in_round(_values(now), household_id, round, offset=-1)
    current = _values(now)
    return _flag(current > before, ~np.isnan(current) & ~np.isnan(before))


def _decrease_since_last_round(now: np.ndarray, household_id: np.ndarray, round: np.ndarray) -> np.ndarray:
    """How much the amount fell since the previous round (0 when it did not fall); NaN when unknown."""
    before = same_household_in_round(_values(now), household_id, round, offset=-1)
    return np.maximum(before - _values(now), 0.0)  # NaN propagates through maximum


def income_to_line_ratio_last_round(
    income_to_line_ratio: np.ndarray, household_id: np.ndarray, round: np.ndarray
) -> np.ndarray:
    """Per-capita net income over the poverty line in the same household's previous round (round - 1),
    in multiples of that round's line; NaN when that round is absent or its income unknown."""
    before = same_household_in_round(_values(income_to_line_ratio), household_id, round, offset=-1)
    return before


def lasting_income_to_line_ratio(
    income_to_line_ratio: np.ndarray, household_id: np.ndarray, round: np.ndarray
) -> np.ndarray:
    """The household's lasting income level: mean of its income-to-line ratio (multiples of each round's
    poverty line) over this round and up to the two before (LASTING_INCOME_ROUNDS), over the rounds
    known; NaN when none is. Averaging rounds separates the lasting level from one year's luck."""
    stacked = _this_and_earlier(income_to_line_ratio, household_id, round, LASTING_INCOME_ROUNDS)
    return _nan_reduce(stacked, "nanmean")


def lowest_income_to_line_ratio(
    income_to_line_ratio: np.ndarray, household_id: np.ndarray, round: np.ndarray
) -> np.ndarray:
    """The lowest income-to-line ratio (multiples of the line) of this round and up to the two before
    (LASTING_INCOME_ROUNDS), over the rounds known: how close to the line the household has recently
    been; NaN when no round is known."""
    stacked = _this_and_earlier(income_to_line_ratio, household_id, round, LASTING_INCOME_ROUNDS)
    return _nan_reduce(stacked, "nanmin")


def new_serious_illness_since_last_round(
    serious_illness_members: np.ndarray, household_id: np.ndarray, round: np.ndarray
) -> np.ndarray:
    """1 when more members are seriously ill than in the previous round, 0 when not; NaN when either
    round's count is unknown (read from the member rosters, for surveys without the shock questions)."""
    return _increase_flag(serious_illness_members, household_id, round)


def new_disability_since_last_round(
    disabled_members: np.ndarray, household_id: np.ndarray, round: np.ndarray
) -> np.ndarray:
    """1 when more members are disabled than in the previous round, 0 when not; NaN when unknown."""
    return _increase_flag(disabled_members, household_id, round)


def arable_land_lost_mu(
    arable_land_mu: np.ndarray, household_id: np.ndarray, round: np.ndarray
) -> np.ndarray:
    """Arable land (mu) the household holds less than in the previous round; 0 when it did not shrink,
    NaN when either round's land is unknown."""
    return _decrease_since_last_round(arable_land_mu, household_id, round)


def livestock_lost_units(
    livestock_units: np.ndarray, household_id: np.ndarray, round: np.ndarray
) -> np.ndarray:
    """Livestock units the household holds fewer than in the previous round; 0 when the herd did not
    shrink, NaN when either round's herd is unknown."""
    return _decrease_since_last_round(livestock_units, household_id, round)


def rounds_since_exit(exited_poverty: np.ndarray, household_id: np.ndarray, round: np.ndarray) -> np.ndarray:
    """For a household registered as exited: rounds since the review at which it exited (0 = this
    round's review, i.e. it was not yet exited in the previous round), counted back over the panel's
    earlier rounds (at most EXIT_LOOKBACK_ROUNDS). A household already exited in every earlier round
    available gets the number of those rounds (it exited at least that long ago). NaN when the household
    is not exited, or exited with its previous round absent (the exit cannot be dated)."""
    exited = _values(exited_poverty)
    earlier = same_household_in_rounds(exited, household_id, round, range(-1, -EXIT_LOOKBACK_ROUNDS - 1, -1))
    still_exited = np.cumprod(earlier == 1.0, axis=1)  # 1 while every round back so far was exited
    counted = still_exited.sum(axis=1).astype(np.float64)
    datable = (exited == 1.0) & ~np.isnan(earlier[:, 0])
    return np.where(datable, counted, np.nan)


def past_disaster_share(
    shock_disaster: np.ndarray, household_id: np.ndarray, round: np.ndarray
) -> np.ndarray:
    """Share of the household's earlier rounds (up to PAST_DISASTER_ROUNDS back, over those known) in
    which its village was hit by a natural disaster: a household stays in its village, so this reads the
    village's lasting exposure. NaN when no earlier round is known."""
    earlier = same_household_in_rounds(
        _values(shock_disaster), household_id, round, range(-1, -PAST_DISASTER_ROUNDS - 1, -1)
    )
    return _nan_reduce(earlier, "nanmean")


def village_shock_share(
    village_others_answering_shocks: np.ndarray, village_others_with_shocks: np.ndarray
) -> np.ndarray:
    """Share of the *other* households of the same village and round (among those that answered the
    shock questions) that report at least one shock this round: a village-wide shock (disaster,
    epidemic, a factory closing) shows as a high share. The counts come from the register's village
    context, or from the round's rows in the same table (`features.frame`); NaN when fewer than
    MIN_VILLAGE_NEIGHBOURS other households answered (e.g. one household scored alone, unregistered)."""
    others = _values(village_others_answering_shocks)
    share = np.full(len(others), np.nan)
    enough = ~np.isnan(others) & (others >= MIN_VILLAGE_NEIGHBOURS)
    np.divide(_values(village_others_with_shocks), others, out=share, where=enough)
    return share
