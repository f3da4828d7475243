"""Household aggregates of the member table: size, labour, age structure, education, health.

Each aggregate counts or summarises members of one household in one round. The ages that make the age
structure (working age, compulsory-school age, elderly) are the policy's (``Policy.ages``, passed in).
An optional member column
that is absent makes the aggregates that read it NaN (unknown), never 0. Within a present column, a
member whose answer is missing is skipped; a household whose members are all unknown gets NaN.

Aggregation uses integer group codes and ``numpy.bincount`` rather than ``groupby``: it is several times
faster on a county and costs microseconds for the single household of a serving request.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.indicators import answer_flag
from features.policy import AgeBands, AgeRange

KEY = ("household_id", "round")

MIGRANT_WORK_MONTHS = 6
"""A member is a migrant worker when working away for at least 6 months of the year (the NBS definition
of 外出农民工)."""
CAPABLE_LABOUR = ("skilled", "ordinary")
"""Labour-capacity answers that count as able to work; weak, lost and none do not."""

_JUST_BELOW = 1e-9  # ages may be fractional: "under 16" is age <= 16 - epsilon

MEMBER_AGGREGATES = (
    "household_size",
    "labour_capable_members",
    "members_in_migrant_work",
    "migrant_work_months_total",
    "children",
    "elderly",
    "working_age",
    "mean_adult_education_years",
    "max_adult_education_years",
    "school_age_not_in_school",
    "chronic_illness_members",
    "serious_illness_members",
    "disabled_members",
    "schooling_gap",
    "head_age",
    "head_education_years",
    "mean_member_age",
    "youngest_member_age",
    "mean_member_education_years",
    "education_years_spread",
)

MEMBER_AGGREGATE_INPUTS: dict[str, tuple[str, ...]] = {
    "household_size": (),  # counts the member rows
    "labour_capable_members": ("labour_capacity", "age", "disability", "health_status"),
    "members_in_migrant_work": ("migrant_work_months",),
    "migrant_work_months_total": ("migrant_work_months",),
    "children": ("age",),
    "elderly": ("age",),
    "working_age": ("age",),
    "mean_adult_education_years": ("education_years", "age"),
    "max_adult_education_years": ("education_years", "age"),
    "school_age_not_in_school": ("age", "in_school"),
    "chronic_illness_members": ("health_status",),
    "serious_illness_members": ("health_status",),
    "disabled_members": ("disability",),
    "schooling_gap": ("school_years_behind",),
    "head_age": ("age", "relation_to_head"),
    "head_education_years": ("education_years", "relation_to_head"),
    "mean_member_age": ("age",),
    "youngest_member_age": ("age",),
    "mean_member_education_years": ("education_years",),
    "education_years_spread": ("education_years",),
}
"""The member columns (survey/schema.py ``Members``) each aggregate reads, besides the keys: the lineage
of the aggregates (features/lineage.py). Keep it in step with ``aggregate_members``."""


class MemberTableError(ValueError):
    """The member table lacks a key column or has an invalid key."""


def key_index(household_id: pd.Series | np.ndarray, rounds: np.ndarray) -> pd.MultiIndex:
    """A (household_id, round) MultiIndex, built from codes (several times cheaper than from_arrays)."""
    household_codes, households = pd.factorize(household_id)
    round_codes, round_levels = pd.factorize(np.asarray(rounds, dtype=np.int64))
    return pd.MultiIndex(
        levels=[households, round_levels],  # type: ignore[list-item]  # arrays are valid levels
        codes=[household_codes, round_codes],  # type: ignore[list-item]
        names=list(KEY),
        verify_integrity=False,
    )


def _group_codes(members: pd.DataFrame) -> tuple[np.ndarray, pd.Series, np.ndarray]:
    """Integer code of each member's (household_id, round) group, and each group's household and round."""
    missing = [column for column in KEY if column not in members.columns]
    if missing:
        raise MemberTableError(f"member table lacks key column(s) {missing}")
    household_codes, households = pd.factorize(members["household_id"])
    rounds = pd.to_numeric(members["round"], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(rounds).any() or (rounds < 0).any():
        raise MemberTableError("member table: round must be a non-negative integer on every row")
    rounds = rounds.astype(np.int64)
    span = int(rounds.max()) + 1 if len(rounds) else 1
    group_codes, groups = pd.factorize(household_codes.astype(np.int64) * span + rounds)
    group_households = pd.Series(households.take(groups // span))
    return group_codes, group_households, groups % span


def _column(members: pd.DataFrame, name: str) -> np.ndarray | None:
    """A numeric member column as float64, or None when the column is absent."""
    if name not in members.columns:
        return None
    return pd.to_numeric(members[name], errors="coerce").to_numpy(dtype=np.float64)


def _category_flag(members: pd.DataFrame, name: str, levels: tuple[str, ...]) -> np.ndarray | None:
    """1.0 where a categorical member column is in ``levels``, 0.0 elsewhere, NaN where missing."""
    if name not in members.columns:
        return None
    return answer_flag(members[name], levels)


def _group_sum(codes: np.ndarray, n_groups: int, values: np.ndarray | None) -> np.ndarray:
    """Sum of known values per group; NaN for a group with no known value (or an absent column)."""
    if values is None:
        return np.full(n_groups, np.nan)
    known = ~np.isnan(values)
    total = np.bincount(codes, weights=np.where(known, values, 0.0), minlength=n_groups)
    count = np.bincount(codes, weights=known, minlength=n_groups)
    return np.where(count > 0, total, np.nan)


def _group_mean(codes: np.ndarray, n_groups: int, values: np.ndarray | None) -> np.ndarray:
    if values is None:
        return np.full(n_groups, np.nan)
    known = ~np.isnan(values)
    total = np.bincount(codes, weights=np.where(known, values, 0.0), minlength=n_groups)
    count = np.bincount(codes, weights=known, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)


def _group_max(codes: np.ndarray, n_groups: int, values: np.ndarray | None) -> np.ndarray:
    out = np.full(n_groups, np.nan)
    if values is not None:
        np.fmax.at(out, codes, values)  # fmax ignores NaN, so unknown members are skipped
    return out


def _group_min(codes: np.ndarray, n_groups: int, values: np.ndarray | None) -> np.ndarray:
    out = np.full(n_groups, np.nan)
    if values is not None:
        np.fmin.at(out, codes, values)  # fmin ignores NaN, so unknown members are skipped
    return out


def _group_std(codes: np.ndarray, n_groups: int, values: np.ndarray | None) -> np.ndarray:
    """Population standard deviation of the known values per group (0 for a single known value)."""
    mean = _group_mean(codes, n_groups, values)
    if values is None:
        return mean
    squares = _group_mean(codes, n_groups, values * values)
    return np.sqrt(np.clip(squares - mean * mean, 0.0, None))


def _head_only(values: np.ndarray | None, members: pd.DataFrame) -> np.ndarray | None:
    """The values of the members recorded as head of household; NaN for everyone else."""
    is_head = _category_flag(members, "relation_to_head", ("head",))
    if values is None or is_head is None:
        return None
    return np.where(is_head == 1.0, values, np.nan)


def _in_range(age: np.ndarray | None, low: float, high: float) -> np.ndarray | None:
    """1.0 where low <= age <= high, 0.0 outside, NaN where age is unknown."""
    if age is None:
        return None
    return np.where(np.isnan(age), np.nan, ((age >= low) & (age <= high)).astype(np.float64))


def _in_age_range(age: np.ndarray | None, ages: AgeRange) -> np.ndarray | None:
    """1.0 where ages.at_least <= age < ages.below, 0.0 outside, NaN where age is unknown."""
    return _in_range(age, ages.at_least, ages.below - _JUST_BELOW)


def _labour_capable(
    members: pd.DataFrame, age: np.ndarray | None, working_age: AgeRange
) -> np.ndarray | None:
    """Whether each member can work: the recorded labour capacity (skilled/ordinary) where it is known,
    otherwise working age (16-64 in the shipped policy) without a disability or a serious illness."""
    by_capacity = _category_flag(members, "labour_capacity", CAPABLE_LABOUR)
    by_age = _in_age_range(age, working_age)
    if by_age is not None:
        disability = _column(members, "disability")
        if disability is not None:
            by_age = np.where(disability == 1.0, 0.0, by_age)
        serious = _category_flag(members, "health_status", ("serious_illness",))
        if serious is not None:
            by_age = np.where(serious == 1.0, 0.0, by_age)
    if by_capacity is None:
        return by_age
    if by_age is None:
        return by_capacity
    return np.where(np.isnan(by_capacity), by_age, by_capacity)


def _adult_only(values: np.ndarray | None, age: np.ndarray | None, adult_from: float) -> np.ndarray | None:
    if values is None or age is None:
        return None
    return np.where(age >= adult_from, values, np.nan)


def _school_age_not_in_school(
    age: np.ndarray | None, in_school: np.ndarray | None, school_age_range: AgeRange
) -> np.ndarray | None:
    """1.0 for a child of compulsory-school age recorded as not in school; 0.0 for other known members."""
    school_age = _in_age_range(age, school_age_range)
    if school_age is None or in_school is None:
        return None
    out_of_school = np.where(np.isnan(in_school), np.nan, (in_school == 0.0).astype(np.float64))
    return np.where(school_age == 1.0, out_of_school, school_age)


def aggregate_members(
    members: pd.DataFrame, ages: AgeBands
) -> tuple[pd.Series, np.ndarray, dict[str, np.ndarray]]:
    """The member aggregates as arrays: (household_id per group, round per group, {name: values}).

    The array form of ``member_aggregates``, for callers that align groups themselves. An aggregate
    whose member columns are absent is left out (absent, not unknown).
    """
    codes, group_households, group_rounds = _group_codes(members)
    n_groups = len(group_rounds)
    age = _column(members, "age")
    education = _column(members, "education_years")
    migrant_months = _column(members, "migrant_work_months")
    in_migrant_work = (
        None
        if migrant_months is None
        else np.where(np.isnan(migrant_months), np.nan, (migrant_months >= MIGRANT_WORK_MONTHS) * 1.0)
    )
    per_member = {
        "household_size": np.ones(len(members)),
        "labour_capable_members": _labour_capable(members, age, ages.working_age),
        "members_in_migrant_work": in_migrant_work,
        "migrant_work_months_total": migrant_months,
        "children": _in_range(age, 0, ages.working_age.at_least - _JUST_BELOW),
        "elderly": _in_range(age, ages.elderly_from, np.inf),
        "working_age": _in_age_range(age, ages.working_age),
        "school_age_not_in_school": _school_age_not_in_school(
            age, _column(members, "in_school"), ages.compulsory_school_age
        ),
        "chronic_illness_members": _category_flag(members, "health_status", ("chronic",)),
        "serious_illness_members": _category_flag(members, "health_status", ("serious_illness",)),
        "disabled_members": _column(members, "disability"),
    }
    columns = {
        name: _group_sum(codes, n_groups, values) for name, values in per_member.items() if values is not None
    }
    school_years_behind = _column(members, "school_years_behind")
    if school_years_behind is not None:
        # recorded for school-age members only, so the mean over known values is over school-age members
        columns["schooling_gap"] = _group_mean(codes, n_groups, school_years_behind)
    adult_education = _adult_only(education, age, ages.working_age.at_least)
    if adult_education is not None:
        columns["mean_adult_education_years"] = _group_mean(codes, n_groups, adult_education)
        columns["max_adult_education_years"] = _group_max(codes, n_groups, adult_education)
    for name, head_values in (("head_age", age), ("head_education_years", education)):
        head_only = _head_only(head_values, members)
        if head_only is not None:
            columns[name] = _group_max(codes, n_groups, head_only)
    if age is not None:
        columns["mean_member_age"] = _group_mean(codes, n_groups, age)
        columns["youngest_member_age"] = _group_min(codes, n_groups, age)
    if education is not None:
        columns["mean_member_education_years"] = _group_mean(codes, n_groups, education)
        columns["education_years_spread"] = _group_std(codes, n_groups, education)
    return (
        group_households,
        group_rounds,
        {name: columns[name] for name in MEMBER_AGGREGATES if name in columns},
    )


def member_aggregates(members: pd.DataFrame, ages: AgeBands) -> pd.DataFrame:
    """Household aggregates of a member table, indexed by (household_id, round), all float64.

    Columns (counts are numbers of members, education in years, migrant work in months per year; the
    ages are the shipped policy's, `ages` in general):
    household_size, labour_capable_members, members_in_migrant_work (>= 6 months away),
    migrant_work_months_total, children (< 16: below working age), elderly (>= 65), working_age
    (16-64), mean_adult_education_years / max_adult_education_years (members aged 16+: from the start of
    working age), school_age_not_in_school (aged 7-15, compulsory-school age, with in_school == 0),
    chronic_illness_members,
    serious_illness_members, disabled_members, schooling_gap (mean years behind in school over the
    members whose ``school_years_behind`` is recorded, i.e. the school-age members), head_age and
    head_education_years (of the member recorded as head; NaN without one), mean_member_age,
    youngest_member_age, mean_member_education_years and education_years_spread (mean and population
    standard deviation of schooling over all members, children included: the household's stock of
    schooling per person and how unevenly it is shared).
    """
    group_households, group_rounds, columns = aggregate_members(members, ages)
    absent = np.full(len(group_rounds), np.nan)
    return pd.DataFrame(
        {name: columns.get(name, absent) for name in MEMBER_AGGREGATES},
        index=key_index(group_households, group_rounds),
        dtype=np.float64,
    )
