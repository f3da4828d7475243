"""Monitoring categories: which kind of watch a household needs, decided by ordered rules.

Each household gets exactly one category; the rules are tried in this order and the first that holds
wins (so a poor household that also had a shock is "poor", not "sudden_hardship"):

1. ``poor`` — currently poor or very likely so: registered as poor (``registered_poor == 1``), or
   per-capita net income below the poverty line (``income_to_line_ratio < 1``), or poverty risk at or
   above the policy's high tier (``risk_tiers.high``). Registered poor households are kept here because
   they are still under assistance and monitored as such.
2. ``unstable_after_exit`` — exited poverty recently (``exited_poverty == 1`` and ``rounds_since_exit``
   below ``monitoring.unstable_after_exit_rounds``, or the exit cannot be dated from the rounds at hand)
   and either per-capita income below the monitoring line (``income_to_line_ratio <
   monitoring_line_multiple``) or relapse risk at or above ``monitoring.marginal_relapse_risk``. A
   household that exited longer ago is judged by the rules below like any other.
3. ``sudden_hardship`` — a shock this round (``shock_count > 0``) and either medical + schooling
   expenses at or above ``monitoring.hardship_expense_share`` of net income, or per-capita income that
   fell since the last round (``income_change_since_last_round < 0``) to below the monitoring line.
4. ``marginal`` — per-capita income below the monitoring line, or relapse risk at or above
   ``monitoring.marginal_relapse_risk`` (non-poor by precedence).
5. ``insufficient_data`` — none of the above, and too little is known of the household for the models to
   judge it (data completeness below the policy's ``data_completeness_minimum``, features/completeness.py):
   it needs a visit to complete its data, and the rule names the missing blocks. For such a household the
   clauses that rest on a model's risk (poverty risk at the high tier, relapse risk) never hold: it is
   placed in a category only on its facts (registration, income, an exit, a shock).
6. ``not_monitored`` — none of the above.

Thresholds are those in force in each household's year (``Policy.monitoring_for_year``: the policy's
``monitoring`` section updated by ``monitoring_changes`` from that year on); the year is the round's
``survey_year`` where the survey records it, else the policy's base year + round.

The monitoring line is compared through ``income_to_line_ratio`` (per-capita net income over the round's
poverty line), so income below the line means ratio < ``monitoring_line_multiple``. A missing value
never makes a rule hold. The ``rule`` column says which test fired, with the household's numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from features.completeness import COMPLETENESS, MISSING_BLOCKS, SUFFICIENT, missing_text
from features.policy import Policy
from store.cases import NOT_MONITORED
from survey.catalogue import Language, message

INSUFFICIENT_DATA = "insufficient_data"
CATEGORIES = ("poor", "unstable_after_exit", "sudden_hardship", "marginal", INSUFFICIENT_DATA, NOT_MONITORED)

REQUIRED_FEATURES = (
    "registered_poor",
    "exited_poverty",
    "income_to_line_ratio",
    "income_change_since_last_round",
    "rounds_since_exit",
    "shock_count",
    "medical_expense_share",
    "schooling_expense_share",
)
REQUIRED_SCORES = ("poverty_risk", "relapse_risk")

_RuleText = Callable[[Any], str]  # called with one household's facts (attributes named like the columns)


def monitoring_category(
    features: pd.DataFrame,
    scores: pd.DataFrame,
    policy: Policy,
    years: np.ndarray | None = None,
    lang: Language = "en",
) -> pd.DataFrame:
    """One monitoring category per household, with the rule that put it there.

    `features` is the feature frame (index (household_id, round)); `scores` carries `poverty_risk` and
    `relapse_risk` (probabilities 0-1, NaN where a task was not scored) on the same index, and, where
    completeness was measured, `data_completeness`, `sufficient_data` and `missing_blocks`. Each row is
    judged by the monitoring thresholds in force in its calendar year (`years`, default: the policy's
    base_year + round; see `Policy.monitoring_for_year`). Returns a frame on `features.index` with
    columns `category` and `rule` (the rule in words, in `lang`, from the message catalogue).
    """
    facts = _facts(features, scores)
    facts |= _thresholds(policy, _row_years(features, policy, years))
    count = len(features)
    category = np.full(count, NOT_MONITORED, dtype=object)
    rule = np.full(count, message("rule.none", lang), dtype=object)
    decided = np.zeros(count, dtype=bool)
    for name, clauses in _rule_tests(facts, policy, lang):
        for holds, describe in clauses:
            newly = np.flatnonzero(holds & ~decided)
            category[newly] = name
            rule[newly] = [describe(_household_facts(facts, int(position))) for position in newly]
            decided[newly] = True
    undecided = np.flatnonzero(~decided & ~facts["sufficient_data"].astype(bool))
    category[undecided] = INSUFFICIENT_DATA
    missing = _missing_blocks(scores, count)
    rule[undecided] = [
        _insufficient_text(facts[COMPLETENESS][position], policy, missing[position], lang)
        for position in undecided
    ]
    return pd.DataFrame({"category": category.astype(str), "rule": rule.astype(str)}, index=features.index)


THRESHOLD_FIELDS = ("marginal_relapse_risk", "hardship_expense_share", "unstable_after_exit_rounds")


def _row_years(features: pd.DataFrame, policy: Policy, years: np.ndarray | None) -> np.ndarray:
    if years is not None:
        if len(years) != len(features):
            raise ValueError(f"monitoring_category: {len(years)} years for {len(features)} households")
        return np.asarray(years, dtype=np.int64)
    return policy.base_year + features.index.get_level_values("round").to_numpy(dtype=np.int64)


def _thresholds(policy: Policy, years: np.ndarray) -> dict[str, np.ndarray]:
    """Each row's thresholds from the policy in force in its year, as `threshold_<field>` arrays."""
    unique_years, position = np.unique(years, return_inverse=True)
    in_force = [policy.monitoring_for_year(int(year)) for year in unique_years]
    return {
        f"threshold_{name}": np.array([float(getattr(t, name)) for t in in_force], dtype=np.float64)[position]
        for name in THRESHOLD_FIELDS
    }


def _missing_blocks(scores: pd.DataFrame, count: int) -> list[tuple[str, ...]]:
    if MISSING_BLOCKS not in scores.columns:
        return [()] * count
    return [tuple(blocks) for blocks in scores[MISSING_BLOCKS].tolist()]


def _insufficient_text(share: float, policy: Policy, missing: tuple[str, ...], lang: Language) -> str:
    text = message("rule.insufficient", lang, share=share, minimum=policy.data_completeness_minimum)
    if not missing:
        return text
    return message("rule.insufficient_missing", lang, text=text, missing=missing_text(missing, lang))


def _household_facts(facts: dict[str, np.ndarray], position: int) -> SimpleNamespace:
    return SimpleNamespace(**{name: float(values[position]) for name, values in facts.items()})


def _facts(features: pd.DataFrame, scores: pd.DataFrame) -> dict[str, np.ndarray]:
    """The values the rules read (float arrays in the order of `features`), checked and aligned."""
    missing_features = [column for column in REQUIRED_FEATURES if column not in features.columns]
    if missing_features:
        raise ValueError(f"monitoring_category: features lack column(s): {', '.join(missing_features)}")
    missing_scores = [column for column in REQUIRED_SCORES if column not in scores.columns]
    if missing_scores:
        raise ValueError(f"monitoring_category: scores lack column(s): {', '.join(missing_scores)}")
    if not scores.index.equals(features.index):
        unscored = features.index.difference(scores.index)
        if len(unscored):
            raise ValueError(
                f"monitoring_category: {len(unscored)} household(s) have features but no scores, "
                f"e.g. {list(unscored[:3])}"
            )
        scores = scores.loc[features.index]
    facts = {name: features[name].to_numpy(dtype=np.float64) for name in REQUIRED_FEATURES}
    facts |= {name: scores[name].to_numpy(dtype=np.float64) for name in REQUIRED_SCORES}
    measured = COMPLETENESS in scores.columns and SUFFICIENT in scores.columns
    unmeasured = np.full(len(features), np.nan)
    facts[COMPLETENESS] = scores[COMPLETENESS].to_numpy(dtype=np.float64) if measured else unmeasured
    facts[SUFFICIENT] = scores[SUFFICIENT].to_numpy(dtype=np.float64) if measured else np.ones(len(features))
    medical, schooling = facts["medical_expense_share"], facts["schooling_expense_share"]
    both_unknown = np.isnan(medical) & np.isnan(schooling)
    facts["hardship_expense_share"] = np.where(
        both_unknown, np.nan, np.nan_to_num(medical, nan=0.0) + np.nan_to_num(schooling, nan=0.0)
    )
    return facts


def _rule_tests(
    facts: dict[str, np.ndarray], policy: Policy, lang: Language
) -> list[tuple[str, list[tuple[np.ndarray, _RuleText]]]]:
    """Per category, in precedence order: (boolean mask, function writing the rule text) clauses."""
    high = policy.risk_tiers.high
    multiple = policy.monitoring_line_multiple
    relapse_cut = facts["threshold_marginal_relapse_risk"]
    expense_cut = facts["threshold_hardship_expense_share"]
    judged = facts[SUFFICIENT] == 1  # a model's risk counts only where enough is known to judge

    ratio = facts["income_to_line_ratio"]
    below_monitoring_line = ratio < multiple
    high_relapse = judged & (facts["relapse_risk"] >= relapse_cut)
    shocked = facts["shock_count"] > 0
    income_fell = facts["income_change_since_last_round"] < 0
    # an exit that cannot be dated (no earlier round at hand) counts as recent: nobody leaves the watch
    # for lack of history
    recently_exited = (facts["exited_poverty"] == 1) & ~(
        facts["rounds_since_exit"] >= facts["threshold_unstable_after_exit_rounds"]
    )

    def say(name: str, **values: Any) -> str:
        return message(f"rule.{name}", lang, **values)

    def exited_text(row: Any) -> str:
        if math.isnan(row.rounds_since_exit):
            return say("exited_undated")
        return say(
            "exited_recently", rounds=row.rounds_since_exit, bound=row.threshold_unstable_after_exit_rounds
        )

    def below_line_text(row: Any) -> str:
        return say("below_monitoring_line", ratio=row.income_to_line_ratio, multiple=multiple)

    def relapse_text(row: Any) -> str:
        return say("high_relapse_risk", risk=row.relapse_risk, bound=row.threshold_marginal_relapse_risk)

    def shock_expense_text(row: Any) -> str:
        return say(
            "shock_expenses",
            shocks=row.shock_count,
            share=row.hardship_expense_share,
            bound=row.threshold_hardship_expense_share,
        )

    def shock_income_text(row: Any) -> str:
        return say(
            "shock_income",
            shocks=row.shock_count,
            change=row.income_change_since_last_round,
            ratio=row.income_to_line_ratio,
            multiple=multiple,
        )

    both = say("and")

    return [
        (
            "poor",
            [
                (
                    facts["registered_poor"] == 1,
                    lambda row: say("registered_poor"),
                ),
                (
                    ratio < 1,
                    lambda row: say("below_poverty_line", ratio=row.income_to_line_ratio),
                ),
                (
                    judged & (facts["poverty_risk"] >= high),
                    lambda row: say("high_poverty_risk", risk=row.poverty_risk, bound=high),
                ),
            ],
        ),
        (
            "unstable_after_exit",
            [
                (
                    recently_exited & below_monitoring_line,
                    lambda row: exited_text(row) + both + below_line_text(row),
                ),
                (
                    recently_exited & high_relapse,
                    lambda row: exited_text(row) + both + relapse_text(row),
                ),
            ],
        ),
        (
            "sudden_hardship",
            [
                (shocked & (facts["hardship_expense_share"] >= expense_cut), shock_expense_text),
                (shocked & income_fell & below_monitoring_line, shock_income_text),
            ],
        ),
        ("marginal", [(below_monitoring_line, below_line_text), (high_relapse, relapse_text)]),
    ]
