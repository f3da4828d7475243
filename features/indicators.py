"""Household indicators: one pure function per feature column (Hamilton style).

Each function is named after the column it produces and its parameters are named after the columns it
reads: raw household columns (survey/schema.py), member aggregates (features/members.py), the round's
``poverty_line`` / ``monitoring_line`` (yuan per person per year), ``policy``, or earlier indicators.
``features/frame.py`` resolves the parameters by name. A parameter with a ``None`` default is an
optional block: the indicator is computed from whichever of those blocks the survey has.

Conventions: inputs and outputs are float Series on the (household_id, round) index; yes/no indicators
are 0.0/1.0 with NaN for unknown; a ratio whose denominator is zero, negative or unknown is NaN (never
inf). No function mutates its inputs.
"""

from __future__ import annotations

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


def _values(values: pd.Series) -> np.ndarray:
    """The values as a float64 array; non-numeric entries become NaN."""
    if values.dtype == np.float64:
        return values.to_numpy()
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)


def _series(values: np.ndarray, like: pd.Series) -> pd.Series:
    """A float64 Series of ``values`` on the index of ``like``."""
    return pd.Series(np.asarray(values, dtype=np.float64), index=like.index, copy=False)


def _as_float(values: pd.Series) -> pd.Series:
    """The values as a float64 Series (the same object when already float64: nothing is modified)."""
    return values if values.dtype == np.float64 else _series(_values(values), values)


def _per_positive(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator where the denominator is positive; NaN elsewhere, and where the quotient
    overflows float64 (no inf, no sign flips)."""
    bottom = _values(denominator)
    ratio = np.full(len(bottom), np.nan)
    with np.errstate(over="ignore"):
        np.divide(_values(numerator), bottom, out=ratio, where=bottom > 0)
    ratio[np.isinf(ratio)] = np.nan
    return _series(ratio, denominator)


def _flag(condition: np.ndarray, known: np.ndarray, like: pd.Series) -> pd.Series:
    """1.0 where condition holds, 0.0 where it does not, NaN where the inputs are unknown."""
    return _series(np.where(known, condition, np.nan), like)


def _category_flag(values: pd.Series, levels: tuple[str, ...]) -> pd.Series:
    return _flag(values.isin(levels).to_numpy(), values.notna().to_numpy(), values)


def _sum_present(columns: list[pd.Series | None], *, skip_unknown: bool) -> pd.Series | None:
    """Row sum over the columns that are present (not None); None when none is present.

    With ``skip_unknown`` a NaN cell is skipped (NaN only when every present cell is NaN); without it a
    NaN cell makes the row's sum NaN.
    """
    present = [_as_float(column) for column in columns if column is not None]
    if not present:
        return None
    stacked = np.column_stack([column.to_numpy() for column in present])
    if skip_unknown:
        known = ~np.isnan(stacked)
        total = np.where(known.any(axis=1), np.nansum(stacked, axis=1), np.nan)
    else:
        total = stacked.sum(axis=1)
    return pd.Series(total, index=present[0].index, dtype=np.float64)


# ----------------------------------------------------------------------------------------------- labour


def household_size(household_size: pd.Series) -> pd.Series:
    """Number of household members (persons); NaN when unknown or not at least 1."""
    size = _values(household_size)
    return _series(np.where(size >= 1, size, np.nan), household_size)


def dependency_ratio(children: pd.Series, elderly: pd.Series, working_age: pd.Series) -> pd.Series:
    """(Members under 16 + members 65 and over) / members aged 16-64; NaN when nobody is of working age."""
    dependants = _series(_values(children) + _values(elderly), children)
    return _per_positive(dependants, working_age)


def share_children(children: pd.Series, household_size: pd.Series) -> pd.Series:
    """Members under 16 / household size (0-1)."""
    return _per_positive(children, household_size)


def share_elderly(elderly: pd.Series, household_size: pd.Series) -> pd.Series:
    """Members aged 65 and over / household size (0-1)."""
    return _per_positive(elderly, household_size)


def head_age(head_age: pd.Series) -> pd.Series:
    """Age of the head of household, years; NaN when no member is recorded as head."""
    return _as_float(head_age)


def mean_member_age(mean_member_age: pd.Series) -> pd.Series:
    """Mean age of the members, years."""
    return _as_float(mean_member_age)


def youngest_member_age(youngest_member_age: pd.Series) -> pd.Series:
    """Age of the youngest member, years (young children tie carers to the home)."""
    return _as_float(youngest_member_age)


def labour_capable_members(labour_capable_members: pd.Series) -> pd.Series:
    """Members able to work (skilled/ordinary labour capacity, else 16-64 without disability or serious
    illness), persons."""
    return _as_float(labour_capable_members)


def members_in_migrant_work(members_in_migrant_work: pd.Series) -> pd.Series:
    """Members working away from home at least 6 months of the year, persons."""
    return _as_float(members_in_migrant_work)


def migrant_work_months_total(migrant_work_months_total: pd.Series) -> pd.Series:
    """Months of migrant work summed over members, person-months per year."""
    return _as_float(migrant_work_months_total)


def no_labour_capacity(labour_capable_members: pd.Series) -> pd.Series:
    """1 when no member is able to work (a household that cannot earn its way out), else 0."""
    capable = _values(labour_capable_members)
    return _flag(capable == 0, ~np.isnan(capable), labour_capable_members)


# ----------------------------------------------------------------------------------------------- income


def net_income(
    income_wages: pd.Series | None = None,
    income_agriculture_net: pd.Series | None = None,
    income_business: pd.Series | None = None,
    income_transfers: pd.Series | None = None,
    income_property: pd.Series | None = None,
) -> pd.Series | None:
    """Household net income, yuan per year: the sum of the income components the survey records
    (wages, net farm income, net business income, transfers, property income).

    A component the survey does not have is left out; a recorded component that is unknown for a
    household makes that household's net income unknown (NaN) rather than understated.
    """
    components = [income_wages, income_agriculture_net, income_business, income_transfers, income_property]
    return _sum_present(components, skip_unknown=False)


def per_capita_net_income(net_income: pd.Series, household_size: pd.Series) -> pd.Series:
    """Net income per household member, yuan per person per year."""
    return _per_positive(net_income, household_size)


def income_to_line_ratio(per_capita_net_income: pd.Series, poverty_line: pd.Series) -> pd.Series:
    """Per-capita net income divided by the round's poverty line (1.0 = exactly on the line)."""
    return _per_positive(per_capita_net_income, poverty_line)


def income_share_wages(income_wages: pd.Series, net_income: pd.Series) -> pd.Series:
    """Wage income / net income; NaN when net income is not positive."""
    return _per_positive(income_wages, net_income)


def income_share_agriculture(income_agriculture_net: pd.Series, net_income: pd.Series) -> pd.Series:
    """Net farm income / net income; NaN when net income is not positive (may be negative after a loss)."""
    return _per_positive(income_agriculture_net, net_income)


def income_share_business(income_business: pd.Series, net_income: pd.Series) -> pd.Series:
    """Net business income / net income; NaN when net income is not positive."""
    return _per_positive(income_business, net_income)


def income_share_transfers(income_transfers: pd.Series, net_income: pd.Series) -> pd.Series:
    """Transfer income (subsidies, pensions, remittances) / net income; NaN when net income is not
    positive. A high share means the household lives on assistance."""
    return _per_positive(income_transfers, net_income)


def income_share_property(income_property: pd.Series, net_income: pd.Series) -> pd.Series:
    """Property income (rents, dividends, asset-income schemes) / net income; NaN when net income is not
    positive."""
    return _per_positive(income_property, net_income)


def production_cost_share(production_costs: pd.Series, net_income: pd.Series) -> pd.Series:
    """Production costs / (net income + production costs): the share of gross income spent on producing
    it; NaN when that gross income is not positive."""
    gross_income = _series(_values(net_income) + _values(production_costs), production_costs)
    return _per_positive(production_costs, gross_income)


# -------------------------------------------------------------------------------------------- education


def mean_adult_education_years(mean_adult_education_years: pd.Series) -> pd.Series:
    """Mean years of schooling of members aged 16 and over, years."""
    return _as_float(mean_adult_education_years)


def max_adult_education_years(max_adult_education_years: pd.Series) -> pd.Series:
    """Most years of schooling of any member aged 16 and over, years."""
    return _as_float(max_adult_education_years)


def school_age_not_in_school(school_age_not_in_school: pd.Series) -> pd.Series:
    """Children aged 7-15 (compulsory-education age) not in school, persons."""
    return _as_float(school_age_not_in_school)


def schooling_gap(schooling_gap: pd.Series) -> pd.Series:
    """Mean years behind the grade expected for their age, over the school-age members (years); NaN when
    the household has no school-age member or the survey does not record it."""
    return _as_float(schooling_gap)


def head_education_years(head_education_years: pd.Series) -> pd.Series:
    """Years of schooling of the head of household, years; NaN when no member is recorded as head."""
    return _as_float(head_education_years)


def mean_member_education_years(mean_member_education_years: pd.Series) -> pd.Series:
    """Years of schooling per member, children included (the household's stock of schooling per person)."""
    return _as_float(mean_member_education_years)


def education_years_spread(education_years_spread: pd.Series) -> pd.Series:
    """Standard deviation of the members' years of schooling (0 when all have the same), years."""
    return _as_float(education_years_spread)


# ----------------------------------------------------------------------------------------------- health


def chronic_illness_members(chronic_illness_members: pd.Series) -> pd.Series:
    """Members with a chronic illness, persons."""
    return _as_float(chronic_illness_members)


def serious_illness_members(serious_illness_members: pd.Series) -> pd.Series:
    """Members with a serious illness, persons."""
    return _as_float(serious_illness_members)


def disabled_members(disabled_members: pd.Series) -> pd.Series:
    """Members with a disability, persons."""
    return _as_float(disabled_members)


def share_disabled(disabled_members: pd.Series, household_size: pd.Series) -> pd.Series:
    """Members with a disability / household size (0-1)."""
    return _per_positive(disabled_members, household_size)


def medical_expense_share(medical_expenses: pd.Series, net_income: pd.Series) -> pd.Series:
    """Out-of-pocket medical expenses / net income; NaN when net income is not positive."""
    return _per_positive(medical_expenses, net_income)


def medical_insurance(medical_insurance: pd.Series) -> pd.Series:
    """1 when the household is covered by basic medical insurance (NRCMS / resident scheme), else 0."""
    return _as_float(medical_insurance)


def pension_insurance(pension_insurance: pd.Series) -> pd.Series:
    """1 when the household takes part in the resident pension insurance, else 0."""
    return _as_float(pension_insurance)


def schooling_expense_share(schooling_expenses: pd.Series, net_income: pd.Series) -> pd.Series:
    """Schooling expenses / net income; NaN when net income is not positive."""
    return _per_positive(schooling_expenses, net_income)


# ---------------------------------------------------------------------------------------------- housing


def dangerous_house(dangerous_house: pd.Series) -> pd.Series:
    """1 when the house is appraised as dangerous (危房), else 0."""
    return _as_float(dangerous_house)


def housing_area_per_capita(housing_area_m2: pd.Series, household_size: pd.Series) -> pd.Series:
    """Floor area of the dwelling per member, m² per person."""
    return _per_positive(housing_area_m2, household_size)


def housing_structure_weak(housing_structure: pd.Series) -> pd.Series:
    """1 when the house is earth-and-wood or of another (makeshift) structure, 0 for brick or concrete."""
    return _category_flag(housing_structure, WEAK_HOUSING_STRUCTURES)


def solid_cooking_fuel(cooking_fuel: pd.Series) -> pd.Series:
    """1 when the household cooks with coal, firewood or other solid fuel, 0 for electricity, gas, biogas."""
    return _category_flag(cooking_fuel, SOLID_COOKING_FUELS)


def electricity(electricity: pd.Series) -> pd.Series:
    """1 when the house has a household electricity connection, else 0."""
    return _as_float(electricity)


def persons_per_room(household_size: pd.Series, rooms: pd.Series) -> pd.Series:
    """Household members per room of the dwelling (all rooms), persons per room; NaN without rooms."""
    return _per_positive(household_size, rooms)


def persons_per_bedroom(household_size: pd.Series, bedrooms: pd.Series) -> pd.Series:
    """Household members per bedroom, persons per bedroom; NaN when no bedroom is recorded."""
    return _per_positive(household_size, bedrooms)


def no_toilet(toilet: pd.Series) -> pd.Series:
    """1 when the dwelling has no toilet of any kind, 0 when it has one."""
    has_toilet = _values(toilet)
    return _flag(has_toilet == 0, ~np.isnan(has_toilet), toilet)


def rent_per_capita(rent_paid: pd.Series, household_size: pd.Series) -> pd.Series:
    """Rent (or house instalments) paid per member, money per person per year (0 for owners)."""
    return _per_positive(rent_paid, household_size)


def tenure_precarious(tenure: pd.Series) -> pd.Series:
    """1 when the household occupies its dwelling without a secure right to stay, else 0."""
    return _category_flag(tenure, PRECARIOUS_TENURES)


def housing_state_score(
    wall_state: pd.Series | None = None,
    roof_state: pd.Series | None = None,
    floor_state: pd.Series | None = None,
) -> pd.Series | None:
    """State of the dwelling from 0 (walls, roof and floor all bad) to 1 (all good): the mean of the
    recorded parts' scores (bad 0, regular 0.5, good 1); NaN when no part's state is recorded."""
    parts = [part for part in (wall_state, roof_state, floor_state) if part is not None]
    if not parts:
        return None
    scores = np.column_stack([part.map(BUILDING_STATE_SCORES).to_numpy(dtype=np.float64) for part in parts])
    known = ~np.isnan(scores)
    count = known.sum(axis=1)
    total = np.where(known, scores, 0.0).sum(axis=1)
    return _series(np.where(count > 0, total / np.maximum(count, 1), np.nan), parts[0])


def floor_finished(floor_material: pd.Series) -> pd.Series:
    """1 when the floor is tiled (ceramic, mosaic, terrazzo), 0 for cement, wood, earth or no floor."""
    return _category_flag(floor_material, FINISHED_FLOORS)


def no_ceiling(ceiling: pd.Series) -> pd.Series:
    """1 when the dwelling has no ceiling under the roof, 0 when it has one."""
    has_ceiling = _values(ceiling)
    return _flag(has_ceiling == 0, ~np.isnan(has_ceiling), ceiling)


# ------------------------------------------------------------------------------------------------ water


def safe_drinking_water(safe_drinking_water: pd.Series) -> pd.Series:
    """1 when the household has safe drinking water (quality and quantity assured), else 0."""
    return _as_float(safe_drinking_water)


# ----------------------------------------------------------------------------------------------- assets


def durable_assets_per_capita(durable_assets: pd.Series, household_size: pd.Series) -> pd.Series:
    """Durable consumer goods owned (count of items: vehicles, appliances, ...) per member."""
    return _per_positive(durable_assets, household_size)


def mobile_phones_per_capita(mobile_phones: pd.Series, household_size: pd.Series) -> pd.Series:
    """Mobile phones owned per member."""
    return _per_positive(mobile_phones, household_size)


def debt_to_income(debt: pd.Series, net_income: pd.Series) -> pd.Series:
    """Outstanding debt / annual net income (years of income owed); NaN when net income is not positive."""
    return _per_positive(debt, net_income)


# ------------------------------------------------------------------------------------------------- land


def arable_land_per_capita(arable_land_mu: pd.Series, household_size: pd.Series) -> pd.Series:
    """Arable land per member, mu per person."""
    return _per_positive(arable_land_mu, household_size)


def livestock_per_capita(livestock_units: pd.Series, household_size: pd.Series) -> pd.Series:
    """Livestock per member, livestock units per person."""
    return _per_positive(livestock_units, household_size)


# ----------------------------------------------------------------------------------------------- access


def distance_road_km(distance_road_km: pd.Series) -> pd.Series:
    """Distance from the house to the nearest hardened road, km."""
    return _as_float(distance_road_km)


def distance_market_km(distance_market_km: pd.Series) -> pd.Series:
    """Distance from the house to the nearest market town, km."""
    return _as_float(distance_market_km)


def distance_clinic_km(distance_clinic_km: pd.Series) -> pd.Series:
    """Distance from the house to the nearest village clinic, km."""
    return _as_float(distance_clinic_km)


# ----------------------------------------------------------------------------------------------- shocks


def shock_serious_illness(shock_serious_illness: pd.Series) -> pd.Series:
    """1 when a member fell seriously ill this round, else 0."""
    return _as_float(shock_serious_illness)


def shock_disability(shock_disability: pd.Series) -> pd.Series:
    """1 when a member became disabled this round, else 0."""
    return _as_float(shock_disability)


def shock_disaster(shock_disaster: pd.Series) -> pd.Series:
    """1 when a natural disaster hit the household this round, else 0."""
    return _as_float(shock_disaster)


def shock_accident(shock_accident: pd.Series) -> pd.Series:
    """1 when an accident struck the household this round, else 0."""
    return _as_float(shock_accident)


def shock_job_loss(shock_job_loss: pd.Series) -> pd.Series:
    """1 when a member lost a job (or migrant work) this round, else 0."""
    return _as_float(shock_job_loss)


def shock_industry_failure(shock_industry_failure: pd.Series) -> pd.Series:
    """1 when the household's farm or business venture failed this round, else 0."""
    return _as_float(shock_industry_failure)


def shock_schooling_cost(shock_schooling_cost: pd.Series) -> pd.Series:
    """1 when schooling costs rose sharply this round (e.g. a child entered upper school), else 0."""
    return _as_float(shock_schooling_cost)


def shock_count(
    shock_serious_illness: pd.Series | None = None,
    shock_disability: pd.Series | None = None,
    shock_disaster: pd.Series | None = None,
    shock_accident: pd.Series | None = None,
    shock_job_loss: pd.Series | None = None,
    shock_industry_failure: pd.Series | None = None,
    shock_schooling_cost: pd.Series | None = None,
) -> pd.Series | None:
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
    per_capita_net_income: pd.Series, household_id: pd.Series, round: pd.Series
) -> pd.Series:
    """Relative change of per-capita net income since the same household's previous round (round - 1):
    (now - before) / |before|. NaN when the previous round is absent or its income was zero or unknown."""
    before = same_household_in_round(_values(per_capita_net_income), household_id, round, offset=-1)
    change = np.full(len(before), np.nan)
    np.divide(_values(per_capita_net_income) - before, np.abs(before), out=change, where=before != 0)
    return _series(change, per_capita_net_income)


def registered_poor(poverty_status: pd.Series) -> pd.Series:
    """1 when the household is registered as poor (建档立卡贫困户) at the start of the round, else 0."""
    return _category_flag(poverty_status, ("poor",))


def exited_poverty(poverty_status: pd.Series) -> pd.Series:
    """1 when the household is registered as having exited poverty (已脱贫), else 0."""
    return _category_flag(poverty_status, ("exited",))


def receiving_assistance(receiving_assistance: pd.Series) -> pd.Series:
    """1 when the household receives targeted assistance this round, else 0."""
    return _as_float(receiving_assistance)


def assistance_ends(assistance_ends: pd.Series) -> pd.Series:
    """1 when the household's assistance is scheduled to end (e.g. end of the stabilisation period)."""
    return _as_float(assistance_ends)


def _this_and_earlier(
    values: pd.Series, household_id: pd.Series, round: pd.Series, rounds: int
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


def _increase_flag(now: pd.Series, household_id: pd.Series, round: pd.Series) -> pd.Series:
    """1 when the count rose since the previous round, 0 when it did not, NaN when either is unknown."""
    before = same_household_in_round(_values(now), household_id, round, offset=-1)
    current = _values(now)
    return _flag(current > before, ~np.isnan(current) & ~np.isnan(before), now)


def _decrease_since_last_round(now: pd.Series, household_id: pd.Series, round: pd.Series) -> pd.Series:
    """How much the amount fell since the previous round (0 when it did not fall); NaN when unknown."""
    before = same_household_in_round(_values(now), household_id, round, offset=-1)
    return _series(np.maximum(before - _values(now), 0.0), now)  # NaN propagates through maximum


def income_to_line_ratio_last_round(
    income_to_line_ratio: pd.Series, household_id: pd.Series, round: pd.Series
) -> pd.Series:
    """Per-capita net income over the poverty line in the same household's previous round (round - 1),
    in multiples of that round's line; NaN when that round is absent or its income unknown."""
    before = same_household_in_round(_values(income_to_line_ratio), household_id, round, offset=-1)
    return _series(before, income_to_line_ratio)


def lasting_income_to_line_ratio(
    income_to_line_ratio: pd.Series, household_id: pd.Series, round: pd.Series
) -> pd.Series:
    """The household's lasting income level: mean of its income-to-line ratio (multiples of each round's
    poverty line) over this round and up to the two before (LASTING_INCOME_ROUNDS), over the rounds
    known; NaN when none is. Averaging rounds separates the lasting level from one year's luck."""
    stacked = _this_and_earlier(income_to_line_ratio, household_id, round, LASTING_INCOME_ROUNDS)
    return _series(_nan_reduce(stacked, "nanmean"), income_to_line_ratio)


def lowest_income_to_line_ratio(
    income_to_line_ratio: pd.Series, household_id: pd.Series, round: pd.Series
) -> pd.Series:
    """The lowest income-to-line ratio (multiples of the line) of this round and up to the two before
    (LASTING_INCOME_ROUNDS), over the rounds known: how close to the line the household has recently
    been; NaN when no round is known."""
    stacked = _this_and_earlier(income_to_line_ratio, household_id, round, LASTING_INCOME_ROUNDS)
    return _series(_nan_reduce(stacked, "nanmin"), income_to_line_ratio)


def new_serious_illness_since_last_round(
    serious_illness_members: pd.Series, household_id: pd.Series, round: pd.Series
) -> pd.Series:
    """1 when more members are seriously ill than in the previous round, 0 when not; NaN when either
    round's count is unknown (read from the member rosters, for surveys without the shock questions)."""
    return _increase_flag(serious_illness_members, household_id, round)


def new_disability_since_last_round(
    disabled_members: pd.Series, household_id: pd.Series, round: pd.Series
) -> pd.Series:
    """1 when more members are disabled than in the previous round, 0 when not; NaN when unknown."""
    return _increase_flag(disabled_members, household_id, round)


def arable_land_lost_mu(arable_land_mu: pd.Series, household_id: pd.Series, round: pd.Series) -> pd.Series:
    """Arable land (mu) the household holds less than in the previous round; 0 when it did not shrink,
    NaN when either round's land is unknown."""
    return _decrease_since_last_round(arable_land_mu, household_id, round)


def livestock_lost_units(livestock_units: pd.Series, household_id: pd.Series, round: pd.Series) -> pd.Series:
    """Livestock units the household holds fewer than in the previous round; 0 when the herd did not
    shrink, NaN when either round's herd is unknown."""
    return _decrease_since_last_round(livestock_units, household_id, round)


def rounds_since_exit(exited_poverty: pd.Series, household_id: pd.Series, round: pd.Series) -> pd.Series:
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
    return _series(np.where(datable, counted, np.nan), exited_poverty)


def past_disaster_share(shock_disaster: pd.Series, household_id: pd.Series, round: pd.Series) -> pd.Series:
    """Share of the household's earlier rounds (up to PAST_DISASTER_ROUNDS back, over those known) in
    which its village was hit by a natural disaster: a household stays in its village, so this reads the
    village's lasting exposure. NaN when no earlier round is known."""
    earlier = same_household_in_rounds(
        _values(shock_disaster), household_id, round, range(-1, -PAST_DISASTER_ROUNDS - 1, -1)
    )
    return _series(_nan_reduce(earlier, "nanmean"), shock_disaster)


def village_shock_share(shock_count: pd.Series, village_id: pd.Series, round: pd.Series) -> pd.Series:
    """Share of the *other* households of the same village and round (among those that answered the
    shock questions) that report at least one shock this round: a village-wide shock (disaster,
    epidemic, a factory closing) shows as a high share. NaN when fewer than MIN_VILLAGE_NEIGHBOURS other
    households of the village are in the same table (e.g. one household scored alone)."""
    shocks = _values(shock_count)
    answered = ~np.isnan(shocks)
    hit = answered & (shocks > 0)
    village_codes, _ = pd.factorize(np.asarray(village_id, dtype=object))
    rounds = np.asarray(round, dtype=np.int64)
    span = int(rounds.max(initial=0)) + 1
    groups, _ = pd.factorize(np.where(village_codes >= 0, village_codes * span + rounds, -1))
    size = int(groups.max(initial=-1)) + 1
    answered_in_group = np.bincount(groups, weights=answered, minlength=size)
    hit_in_group = np.bincount(groups, weights=hit, minlength=size)
    neighbours = answered_in_group[groups] - answered
    share = np.full(len(shocks), np.nan)
    known_village = village_codes >= 0
    enough = known_village & (neighbours >= MIN_VILLAGE_NEIGHBOURS)
    np.divide(hit_in_group[groups] - hit, neighbours, out=share, where=enough)
    return _series(share, shock_count)
