"""Deprivations in "two no worries, three guarantees" (两不愁三保障) and the Alkire-Foster score.

Each guarantee becomes a 0/1 deprivation indicator (1 = the guarantee fails, NaN = unknown). The
deprivation score is the Alkire-Foster weighted deprivation share over the five dimensions, with the
weights and the poverty cutoff k taken from the policy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.indicators import _flag, _series, _values
from features.policy import GUARANTEES, Policy


def deprived_food_clothing(per_capita_net_income: pd.Series, poverty_line: pd.Series) -> pd.Series:
    """1 when per-capita net income is below the round's poverty line (the "no worries about food and
    clothing" income test), 0 when at or above it, NaN when income is unknown."""
    income = _values(per_capita_net_income)
    return _flag(income < _values(poverty_line), ~np.isnan(income), per_capita_net_income)


def deprived_compulsory_education(school_age_not_in_school: pd.Series) -> pd.Series:
    """1 when a child aged 7-15 is out of school (compulsory education not guaranteed), else 0."""
    children_out = _values(school_age_not_in_school)
    return _flag(children_out > 0, ~np.isnan(children_out), school_age_not_in_school)


def deprived_basic_medical(
    policy: Policy,
    medical_insurance: pd.Series | None = None,
    serious_illness_members: pd.Series | None = None,
    medical_expenses: pd.Series | None = None,
    net_income: pd.Series | None = None,
) -> pd.Series | None:
    """1 when basic medical care is not guaranteed: the household has no basic medical insurance, or a
    member is seriously ill and out-of-pocket medical expenses exceed ``policy.catastrophic_medical_share``
    (one half) of net income (catastrophic spending; with zero or negative income any expense counts).

    Each condition is judged from the blocks the survey has: 1 when any known condition fails, 0 when
    every judged condition is known to hold, NaN when nothing can be judged.
    """
    failures: list[np.ndarray] = []
    like = None
    if medical_insurance is not None:
        insured = _values(medical_insurance)
        failures.append(np.where(np.isnan(insured), np.nan, insured == 0))
        like = medical_insurance
    if serious_illness_members is not None and medical_expenses is not None and net_income is not None:
        ill = _values(serious_illness_members)
        expenses = _values(medical_expenses)
        income = _values(net_income)
        affordable_limit = policy.catastrophic_medical_share * np.maximum(income, 0.0)
        catastrophic = (ill > 0) & (expenses > affordable_limit)
        # known when nobody is seriously ill, or when the ill household's expenses and income are known
        known = (ill == 0) | ~(np.isnan(ill) | np.isnan(expenses) | np.isnan(income))
        failures.append(np.where(known, catastrophic, np.nan))
        like = serious_illness_members
    if like is None:
        return None
    stacked = np.column_stack(failures)
    any_failure = (stacked == 1).any(axis=1)
    all_known = ~np.isnan(stacked).any(axis=1)
    return _series(np.where(any_failure, 1.0, np.where(all_known, 0.0, np.nan)), like)


def deprived_safe_housing(dangerous_house: pd.Series) -> pd.Series:
    """1 when the household lives in a house appraised as dangerous (safe housing not guaranteed)."""
    dangerous = _values(dangerous_house)
    return _flag(dangerous == 1, ~np.isnan(dangerous), dangerous_house)


def deprived_safe_water(safe_drinking_water: pd.Series) -> pd.Series:
    """1 when the household lacks safe drinking water, else 0."""
    safe = _values(safe_drinking_water)
    return _flag(safe == 0, ~np.isnan(safe), safe_drinking_water)


def deprivation_score(
    policy: Policy,
    deprived_food_clothing: pd.Series | None = None,
    deprived_compulsory_education: pd.Series | None = None,
    deprived_basic_medical: pd.Series | None = None,
    deprived_safe_housing: pd.Series | None = None,
    deprived_safe_water: pd.Series | None = None,
) -> pd.Series | None:
    """Alkire-Foster weighted deprivation share, 0-1: sum of policy weights of the failed guarantees,
    divided by the sum of weights of the guarantees known for the household (weights re-normalised over
    the dimensions with data). NaN when no dimension is known."""
    by_dimension = {
        "food_clothing": deprived_food_clothing,
        "compulsory_education": deprived_compulsory_education,
        "basic_medical": deprived_basic_medical,
        "safe_housing": deprived_safe_housing,
        "safe_water": deprived_safe_water,
    }
    present = {name: values for name, values in by_dimension.items() if values is not None}
    if not present:
        return None
    like = next(iter(present.values()))
    weighted = np.zeros(len(like))
    known_weight = np.zeros(len(like))
    for name in GUARANTEES:
        if name not in present:
            continue
        values = _values(present[name])
        known = ~np.isnan(values)
        weight = policy.deprivation_weights[name]
        weighted += np.where(known, values * weight, 0.0)
        known_weight += known * weight
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(known_weight > 0, weighted / np.where(known_weight > 0, known_weight, 1.0), np.nan)
    return _series(score, like)


def multidimensionally_poor(deprivation_score: pd.Series, policy: Policy) -> pd.Series:
    """1 when the deprivation score reaches the Alkire-Foster cutoff k (``policy.deprivation_cutoff``)."""
    score = _values(deprivation_score)
    # a small tolerance so that 2 x 0.2 counts as reaching k = 0.4 despite floating-point rounding
    return _flag(score >= policy.deprivation_cutoff - 1e-12, ~np.isnan(score), deprivation_score)
