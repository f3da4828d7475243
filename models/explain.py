"""Explain one score: TreeSHAP contributions (log-odds) and the top reasons in plain words.

A contribution is an indicator's additive share of the raw margin: for every row, the contributions plus
`base_value` sum to the booster's log-odds. A reason is a positive contribution (it raises the risk)
phrased for a village cadre from the message catalogue's `reason` section (`survey/messages.yaml`), in
Chinese (`zh`) or English (`en`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from survey.catalogue import catalogue_section

BASE_VALUE = "base_value"
LANGUAGES = ("zh", "en")
Language = Literal["zh", "en"]


@dataclass(frozen=True)
class Reason:
    """One indicator that raises the risk: its value, its contribution (log-odds) and a sentence."""

    indicator: str
    value: float
    contribution: float
    sentence: str


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


def load_phrases() -> Mapping[str, Any]:
    """The reason phrase book: the message catalogue's `reason` section (survey/messages.yaml)."""
    return catalogue_section("reason")


def _is_yes_no(value: float) -> bool:
    return value in (0.0, 1.0)


def direction(value: float, reference: float | None) -> Literal["high", "low"] | None:
    """`high`/`low` relative to the training reference; yes/no values: 1 is high. None when unknown."""
    if reference is not None and not math.isnan(reference):
        return "high" if value > reference else "low"
    if _is_yes_no(value):
        return "high" if value == 1.0 else "low"
    return None


def phrase(
    indicator: str,
    value: float,
    lang: Language = "zh",
    reference: float | None = None,
    phrases: Mapping[str, Any] | None = None,
) -> str:
    """The sentence for one indicator's value; the generic fallback when no phrase fits."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; expected one of {LANGUAGES}")
    book = phrases if phrases is not None else load_phrases()
    entry = book["indicators"].get(indicator, {})
    label = entry.get("label", {}).get(lang, indicator)
    if value is None or math.isnan(value):
        return str(book["missing"][lang]).format(label=label)
    side = direction(value, reference)
    template = entry.get(side, {}).get(lang) if side else None
    if template is None:
        template = book["fallback"][lang]
    return str(template).format(label=label, value=value)


def top_reasons(
    contrib_row: pd.Series,
    feature_row: pd.Series,
    k: int = 3,
    lang: Language = "zh",
    reference: Mapping[str, float] | None = None,
) -> list[Reason]:
    """The `k` recorded indicators with the largest positive contributions, largest first, in `lang`.

    An indicator whose value is missing (NaN, or absent from `feature_row`) is never a reason, however
    large its contribution: "not recorded" is nothing a cadre can act on. `reference` maps indicators to
    typical training values (medians) that decide between the `high` and `low` phrasing; without one,
    yes/no values use 1 = high and other values the fallback sentence.
    """
    indicator_contribs = contrib_row.drop(labels=[BASE_VALUE], errors="ignore").astype(np.float64)
    names = [str(name) for name in indicator_contribs.index]
    values = pd.to_numeric(feature_row.reindex(indicator_contribs.index), errors="coerce").astype(np.float64)
    return top_reasons_of_rows(
        indicator_contribs.to_numpy()[None, :], values.to_numpy()[None, :], names, k, lang, reference
    )[0]


def top_reasons_of_rows(
    contribs: np.ndarray,
    values: np.ndarray,
    names: list[str],
    k: int = 3,
    lang: Language = "zh",
    reference: Mapping[str, float] | None = None,
) -> list[list[Reason]]:
    """`top_reasons` for many rows at once: `contribs` and `values` are (rows x indicators) float arrays
    in the order of `names` (no base value). Ranking is vectorised; only the chosen reasons are phrased.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    eligible = np.where((contribs > 0.0) & ~np.isnan(values), contribs, -np.inf)
    order = np.argsort(-eligible, axis=1, kind="stable")[:, :k]
    references = reference or {}
    reasons: list[list[Reason]] = []
    for row, columns in enumerate(order):
        chosen = []
        for column in columns:
            contribution = eligible[row, column]
            if contribution == -np.inf:
                break
            indicator, value = names[column], float(values[row, column])
            sentence = phrase(indicator, value, lang, references.get(indicator))
            chosen.append(Reason(indicator, value, float(contribution), sentence))
        reasons.append(chosen)
    return reasons
