"""Explain one score: TreeSHAP contributions (log-odds), their effect on the probability, and the top
reasons in plain words.

A contribution is an indicator's additive share of the raw margin: for every row, the contributions plus
`base_value` sum to the model's log-odds. Its effect is what it adds to the calibrated probability the
household is scored with, in percentage points: `p(margin) - p(margin - contribution)`, the probability
with the contribution minus the probability had the indicator added nothing (the other contributions
kept). Effects do not add up (the calibration curve is not a straight line); each is read on its own.

A reason is an indicator that raises the probability, among those the policy lets be named
(`features/policy.yaml`, `reasons.eligible`), phrased for a village cadre from the message catalogue's
`reason` section (`survey/messages.yaml`), in Chinese (`zh`) or English (`en`). Every sentence is a true,
checkable statement about the household:
- a yes/no indicator says which side holds ("not covered by basic medical insurance");
- an amount (count, share, level) states the household's value and the median of the households the
  model was trained on (`TaskModel.reference_values`): "farming 26% of income — below the median of the
  households the model was trained on (41%)";
- a guarantee (两不愁三保障) names the test that failed for this household, with the values that test
  read (features/deprivation.py): "basic medical care not secured: serious illness in the household and
  medical costs 62% of income", never the bare guarantee when the household is insured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.policy import Policy
from survey.catalogue import catalogue_section

BASE_VALUE = "base_value"
LANGUAGES = ("zh", "en")
Language = Literal["zh", "en"]
SMALLEST_EFFECT_PP = 0.05
"""A reason must raise the probability by at least this many percentage points: one that rounds to +0.0
is no reason a cadre could see in the risk."""

Probability = Callable[[np.ndarray], np.ndarray]
"""Margins (log-odds) to calibrated probabilities: a task model's `calibrator.transform`."""
Values = Mapping[str, float]
"""A household's feature values by indicator name."""
Test = tuple[str, dict[str, float]]
"""A failed guarantee test: its key in the catalogue (`reason.indicators.<guarantee>.tests`) and values."""


@dataclass(frozen=True)
class Reason:
    """One indicator that raises the risk: its value, its contribution (log-odds), a sentence, and its
    effect on the probability in percentage points (rounded to 0.1; None when no calibration was given)."""

    indicator: str
    value: float
    contribution: float
    sentence: str
    effect_pp: float | None = None


@dataclass(frozen=True)
class ReasonRules:
    """What may be named as a reason (`eligible`; None: any indicator) and the policy threshold a
    guarantee's sentence is checked against (`catastrophic_medical_share`; None: unknown, a failed test
    is then named only where the guarantee's own value proves it)."""

    eligible: frozenset[str] | None = None
    catastrophic_medical_share: float | None = None

    @classmethod
    def of(cls, policy: Policy) -> ReasonRules:
        """The policy's reason-eligible indicators and its catastrophic medical spending share."""
        return cls(frozenset(policy.reasons.eligible), policy.catastrophic_medical_share)


def contributions(booster: lgb.Booster, X: pd.DataFrame, num_threads: int = 1) -> pd.DataFrame:
    """TreeSHAP contributions per row: one column per model feature plus `base_value` (log-odds).

    `X` must hold the booster's features (extra columns are ignored, missing ones raise `KeyError`).
    """
    names = booster.feature_name()
    if list(X.columns) != names:  # already in the booster's order (the usual case): no copy
        missing = [name for name in names if name not in X.columns]
        if missing:
            raise KeyError(f"X lacks model features: {missing}")
        X = X[names]
    values = booster.predict(X.to_numpy(dtype=np.float64), pred_contrib=True, num_threads=num_threads)
    return pd.DataFrame(values, index=X.index, columns=[*names, BASE_VALUE])


def probability_effects(contribs: np.ndarray, margin: np.ndarray, probability: Probability) -> np.ndarray:
    """Each contribution's effect on the calibrated probability, in percentage points:
    `100 * (p(margin) - p(margin - contribution))` per (row, indicator), for `contribs` (rows x
    indicators, log-odds, no base value) and the rows' margins."""
    rows, columns = contribs.shape
    if rows == 0 or columns == 0:
        return np.zeros((rows, columns))
    now = probability(margin)
    without = probability((margin[:, None] - contribs).reshape(-1)).reshape(rows, columns)
    return 100.0 * (now[:, None] - without)


def load_phrases() -> Mapping[str, Any]:
    """The reason phrase book: the message catalogue's `reason` section (survey/messages.yaml)."""
    return catalogue_section("reason")


# -------------------------------------------------------------------------------------------- sentences


def phrase(
    indicator: str,
    value: float,
    lang: Language = "zh",
    reference: float | None = None,
    phrases: Mapping[str, Any] | None = None,
    row: Values | None = None,
    rules: ReasonRules | None = None,
) -> str:
    """The sentence for one indicator's value: a yes/no side, an amount against `reference` (the training
    median), or a guarantee with the test that failed, read from the household's other values `row`.
    The generic fallback for an indicator the phrase book does not know."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; expected one of {LANGUAGES}")
    book = phrases if phrases is not None else load_phrases()
    entry = book["indicators"].get(indicator, {})
    label = entry.get("label", {}).get(lang, indicator)
    if value is None or math.isnan(value):
        return str(book["missing"][lang]).format(label=label)
    if "tests" in entry:
        return _guarantee_sentence(indicator, entry, book, lang, row or {}, rules or ReasonRules())
    if "when_yes" in entry and value in (0.0, 1.0):
        return str(entry["when_yes" if value == 1.0 else "when_no"][lang])
    if "text" in entry:
        return _amount_sentence(entry, book, lang, value, reference)
    return str(book["fallback"][lang]).format(label=label, value=value)


def _amount_sentence(
    entry: Mapping[str, Any], book: Mapping[str, Any], lang: Language, value: float, reference: float | None
) -> str:
    """The household's amount, and where it stands against the training median (worded alike)."""
    amount = str(entry["amount"][lang])
    worded = amount.format(value=value)
    if value == 0.0 and "zero" in entry:
        text = str(entry["zero"][lang])
    else:
        text = str(entry["text"][lang]).format(amount=worded)
    if reference is None or math.isnan(reference):
        return text
    median = amount.format(value=reference)
    # the same once rounded: "below the median (41%)" next to a stated 41% would read as false
    side = "near" if median == worded else "above" if value > reference else "below"
    return str(book["median"][side][lang]).format(text=text, median=median)


def _guarantee_sentence(
    indicator: str,
    entry: Mapping[str, Any],
    book: Mapping[str, Any],
    lang: Language,
    row: Values,
    rules: ReasonRules,
) -> str:
    """ "<guarantee> not secured: <the test(s) that failed, with their values>"."""
    failed = GUARANTEE_TESTS[indicator](row, rules) if indicator in GUARANTEE_TESTS else [("unnamed", {})]
    tests = [str(entry["tests"][key][lang]).format(**values) for key, values in failed]
    joined = tests[0]
    for test in tests[1:]:
        joined = str(book["guarantee_tests_joined"][lang]).format(first=joined, second=test)
    return str(book["guarantee"][lang]).format(label=entry["label"][lang], tests=joined)


# ------------------------------------------------------------------------- which guarantee test failed
# Each mirrors its definition in features/deprivation.py on the household's feature values, and names a
# test only where those values show it failed; otherwise the guarantee's tests are named together
# (`unnamed`), which is true of every household the guarantee fails for.


def _value(row: Values, name: str) -> float:
    """The household's value of `name`, NaN when the row does not hold it."""
    value = row.get(name)
    return math.nan if value is None else float(value)


def failed_food_clothing(row: Values, rules: ReasonRules) -> list[Test]:
    """Per-capita net income below the round's poverty line (the line is income / income-to-line ratio)."""
    income, ratio = _value(row, "per_capita_net_income"), _value(row, "income_to_line_ratio")
    if not ratio < 1.0:  # unknown (NaN) or, under another definition of the test, not what failed
        return [("unnamed", {})]
    if income > 0.0 and ratio > 0.0:
        return [("below_line", {"income": income, "line": income / ratio})]
    if not math.isnan(income):
        return [("below_line_income", {"income": income})]
    return [("below_line_ratio", {"ratio": ratio})]


def failed_compulsory_education(row: Values, rules: ReasonRules) -> list[Test]:
    """A child of compulsory-school age out of school."""
    children = _value(row, "school_age_not_in_school")
    return [("out_of_school", {"children": children})] if children > 0.0 else [("unnamed", {})]


def failed_basic_medical(row: Values, rules: ReasonRules) -> list[Test]:
    """No basic medical insurance; and/or a seriously ill member with medical expenses over the policy's
    share of net income (any expense when net income is zero or negative)."""
    insured = _value(row, "medical_insurance")
    ill, share = _value(row, "serious_illness_members"), _value(row, "medical_expense_share")
    failed: list[Test] = [("uninsured", {})] if insured == 0.0 else []
    if not ill > 0.0:
        return failed or [("unnamed", {})]
    limit = rules.catastrophic_medical_share
    # insured, yet the guarantee failed: the spending test is what failed, whatever the limit
    spending_failed = insured == 1.0 if limit is None else share > limit
    if spending_failed and not math.isnan(share):
        failed.append(("catastrophic", {"share": share}))
    elif insured == 1.0 and _value(row, "net_income") <= 0.0:  # no share without positive income
        failed.append(("catastrophic_without_income", {}))
    return failed or [("unnamed", {})]


def failed_safe_housing(row: Values, rules: ReasonRules) -> list[Test]:
    """The house is rated dangerous (the guarantee's only test)."""
    return [("dangerous_house", {})]


def failed_safe_water(row: Values, rules: ReasonRules) -> list[Test]:
    """No safe drinking water (the guarantee's only test)."""
    return [("unsafe_water", {})]


GUARANTEE_TESTS: dict[str, Callable[[Values, ReasonRules], list[Test]]] = {
    "deprived_food_clothing": failed_food_clothing,
    "deprived_compulsory_education": failed_compulsory_education,
    "deprived_basic_medical": failed_basic_medical,
    "deprived_safe_housing": failed_safe_housing,
    "deprived_safe_water": failed_safe_water,
}
"""Each guarantee indicator and the function naming the test(s) that failed for a household."""


# ---------------------------------------------------------------------------------------------- ranking


def top_reasons(
    contrib_row: pd.Series,
    feature_row: pd.Series,
    k: int = 3,
    lang: Language = "zh",
    reference: Mapping[str, float] | None = None,
    rules: ReasonRules | None = None,
    probability: Probability | None = None,
) -> list[Reason]:
    """The `k` recorded, eligible indicators with the largest positive contributions, largest first.

    An indicator whose value is missing (NaN, or absent from `feature_row`) is never a reason, however
    large its contribution: "not recorded" is nothing a cadre can act on. `reference` maps indicators to
    the training medians an amount is stated against; `feature_row` may hold more columns than the
    contributions (a guarantee's sentence reads the household's other values). With `probability` (the
    calibrator) each reason carries its effect in percentage points, and one that rounds to nothing is
    left out.
    """
    indicator_contribs = contrib_row.drop(labels=[BASE_VALUE], errors="ignore").astype(np.float64)
    names = [str(name) for name in indicator_contribs.index]
    values = pd.to_numeric(feature_row.reindex(indicator_contribs.index), errors="coerce").astype(np.float64)
    contribs = indicator_contribs.to_numpy()[None, :]
    effects = None
    if probability is not None:
        margin = np.array([float(contrib_row.sum())])
        effects = probability_effects(contribs, margin, probability)
    known = pd.to_numeric(feature_row, errors="coerce").astype(np.float64)
    context = {str(name): float(value) for name, value in known.items()}
    return top_reasons_of_rows(
        contribs, values.to_numpy()[None, :], names, k, lang, reference, rules, effects, [context]
    )[0]


def top_reasons_of_rows(
    contribs: np.ndarray,
    values: np.ndarray,
    names: list[str],
    k: int = 3,
    lang: Language = "zh",
    reference: Mapping[str, float] | None = None,
    rules: ReasonRules | None = None,
    effects: np.ndarray | None = None,
    contexts: list[Values] | None = None,
) -> list[list[Reason]]:
    """`top_reasons` for many rows at once: `contribs`, `values` and `effects` (`probability_effects`)
    are (rows x indicators) float arrays in the order of `names` (no base value).

    A reason is an indicator `rules.eligible` lists, whose value is recorded and differs from the
    training median (`reference`: a household's "no shock this year" or "assistance continues", shared
    by the typical household, is nothing to act on even where the model's interactions make it raise
    the risk), and whose effect, when `effects` are given, is at least `SMALLEST_EFFECT_PP`. Ranking is
    vectorised; only the chosen reasons are phrased, each from its row's values (`contexts[row]`,
    default: the row of `values`).
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    rules = rules or ReasonRules()
    references = reference or {}
    medians = np.array([references.get(name, np.nan) for name in names], dtype=np.float64)
    # a value the typical household shares (the training median) sets nothing apart: no reason
    raising = (contribs > 0.0) & ~np.isnan(values) & ((values != medians) | np.isnan(medians))
    if rules.eligible is not None:
        raising &= np.isin(np.asarray(names, dtype=object), list(rules.eligible))[None, :]
    if effects is not None:
        raising &= effects >= SMALLEST_EFFECT_PP
    ranked = np.where(raising, contribs, -np.inf)
    order = np.argsort(-ranked, axis=1, kind="stable")[:, :k]
    book = load_phrases()
    reasons: list[list[Reason]] = []
    for row, columns in enumerate(order):
        chosen = []
        for column in columns:
            if ranked[row, column] == -np.inf:
                break
            indicator, value = names[column], float(values[row, column])
            context = contexts[row] if contexts is not None else dict(zip(names, values[row], strict=True))
            sentence = phrase(indicator, value, lang, references.get(indicator), book, context, rules)
            effect = None if effects is None else round(float(effects[row, column]), 1)
            chosen.append(Reason(indicator, value, float(contribs[row, column]), sentence, effect))
        reasons.append(chosen)
    return reasons
