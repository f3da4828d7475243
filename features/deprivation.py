"""Deprivations in "two no worries, three guarantees" (两不愁三保障) and the Alkire-Foster score.

Each guarantee becomes a 0/1 deprivation indicator (1 = the guarantee fails, NaN = unknown). The
deprivation score is the Alkire-Foster weighted deprivation share over the five dimensions, with the
weights and the poverty cutoff k taken from the policy.
"""

from __future__ import annotations

import numpy as np

from features.indicators import _flag, _values
from features.policy import GUARANTEES, Policy


def deprived_food_clothing(per_capita_net_income: np.ndarray, poverty_line: np.ndarray) -> np.ndarray:
    """1 when per-capita net income is below the round's poverty line (the "no worries about food and
    clothing" income test), 0 when at or above it, NaN when income is unknown."""
    income = _values(per_capita_net_income)
    return _flag(income < _values(poverty_line), ~np.isnan(income))


def deprived_compulsory_education(school_age_not_in_school: np.ndarray) -> np.ndarray:
    """1 when a child aged 7-15 is out of school (compulsory education not guaranteed), else 0."""
    children_out = _values(school_age_not_in_school)
    return _flag(children_out > 0, ~np.isnan(children_out))


def deprived_basic_medical(
    policy: Policy,
    medical_insurance: np.ndarray | None = None,
    serious_illness_members: np.ndarray | None = None,
    medical_expenses: np.ndarray | None = None,
    net_income: np.ndarray | None = None,
) -> np.ndarray | None:
    """1 when basic medical care is not guaranteed: the household has no basic medical insurance, or a
    member is seriously ill and out-of-pocket medical expenses exceed ``policy.catastrophic_medical_share``
    (one half) of net income (catastrophic spending; with zero or negative income any expense counts).

    Each condition is judged from the blocks the survey has: 1 when any known condition fails, 0 when
    every judged condition is known to hold, NaN when nothing can be judged.
    """
    failures: list[np.ndarray] = []
    if medical_insurance is not None:
        insured = _values(medical_insurance)
        failures.append(np.where(np.isnan(insured), np.nan, insured == 0))
    if serious_illness_members is not None and medical_expenses is not None and net_income is not None:
        ill = _values(serious_illness_members)
        expenses = _values(medical_expenses)
        income = _values(net_income)
        affordable_limit = policy.catastrophic_medical_share * np.maximum(income, 0.0)
        catastrophic = (ill > 0) & (expenses > affordable_limit)
        # known when nobody is seriously ill, or when the ill household's expenses and income are known
        known = (ill == 0) | ~(np.isnan(ill) | np.isnan(expenses) | np.isnan(income))
        failures.append(np.where(known, catastrophic, np.nan))
    if not failures:
        return None
    stacked = np.column_stack(failures)
    any_failure = (stacked == 1).any(axis=1)
    all_known = ~np.isnan(stacked).any(axis=1)
    return np.where(any_failure, 1.0, np.where(all_known, 0.0, np.nan))


def deprived_safe_housing(dangerous_house: np.ndarray) -> np.ndarray:
    """1 when the household lives in a house appraised as dangerous (safe housing not guaranteed)."""
    dangerous = _values(dangerous_house)
    return _flag(dangerous == 1, ~np.isnan(dangerous))


def deprived_safe_water(safe_drinking_water: np.ndarray) -> np.ndarray:
    """1 when the household lacks safe drinking water, else 0."""
    safe = _values(safe_drinking_water)
    return _flag(safe == 0, ~np.isnan(safe))


def deprivation_score(
    policy: Policy,
    deprived_food_clothing: np.ndarray | None = None,
    deprived_compulsory_education: np.ndarray | None = None,
    deprived_basic_medical: np.ndarray | None = None,
    deprived_safe_housing: np.ndarray | None = None,
    deprived_safe_water: np.ndarray | None = None,
) -> np.ndarray | None:
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
    rows = len(next(iter(present.values())))
    weighted = np.zeros(rows)
    known_weight = np.zeros(rows)
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
    return score


def multidimensionally_poor(deprivation_score: np.ndarray, policy: Policy) -> np.ndarray:
    """1 when the deprivation score reaches the Alkire-Foster cutoff k (``policy.deprivation_cutoff``)."""
    score = _values(deprivation_score)
    # a small tolerance so that 2 x 0.2 counts as reaching k = 0.4 despite floating-point rounding
    return _flag(score >= policy.deprivation_cutoff - 1e-12, ~np.isnan(score))
