"""Labels: poor now (identification) and relapse by the next round.

``poor_now`` applies the policy's poverty definition to a feature frame: a household is poor when its
per-capita net income is below the round's poverty line or any of the guarantees fails ("two no
worries, three guarantees"). With the policy's ``welfare.measure: adult_equivalent`` the income test
divides net income by the household's adult equivalents (``adult_equivalents``) instead of its members.
``poor_next`` and ``relapse_next`` look one round ahead in the same panel.
All labels are float Series on the (household_id, round) index: 1.0, 0.0 or NaN (unknown).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.panel import same_household_in_round
from features.policy import EquivalenceScale, Policy

SURVEY_LABEL_COLUMN = "label_poor"
"""A survey's own poverty label (0/1), e.g. the Costa Rica Target; when known it overrides the rule."""


def survey_label(households: pd.DataFrame) -> pd.Series | None:
    """The survey's own ``label_poor`` column indexed by (household_id, round), or None when absent."""
    if SURVEY_LABEL_COLUMN not in households.columns:
        return None
    index = pd.MultiIndex.from_arrays(
        [households["household_id"].to_numpy(), households["round"].to_numpy(dtype=np.int64)],
        names=["household_id", "round"],
    )
    values = pd.to_numeric(households[SURVEY_LABEL_COLUMN], errors="coerce").to_numpy(dtype=np.float64)
    return pd.Series(values, index=index, name=SURVEY_LABEL_COLUMN, dtype=np.float64)


def _deprivation_columns(policy: Policy) -> list[str]:
    return [f"deprived_{guarantee}" for guarantee in policy.deprivation_weights]


ADULT_EQUIVALENT_INPUTS = ("income_to_line_ratio", "household_size", "share_children")
"""The indicators the adult-equivalent income test reads."""


def adult_equivalents(
    household_size: np.ndarray, children: np.ndarray, scale: EquivalenceScale
) -> np.ndarray:
    """Adult equivalents of a household (persons): ``scale.first_adult`` for its first adult (its first
    member when it has none), ``scale.other_adults`` for each other adult, ``scale.children`` for each
    child. An unknown number of children counts every member as an adult; an unknown size gives NaN."""
    size = np.asarray(household_size, dtype=np.float64)
    young = np.nan_to_num(np.asarray(children, dtype=np.float64), nan=0.0)
    adults = size - young
    with_adult = scale.first_adult + scale.other_adults * (adults - 1.0) + scale.children * young
    without_adult = scale.first_adult + scale.children * (young - 1.0)
    equivalents = np.where(adults >= 1.0, with_adult, without_adult)
    return np.where(size >= 1.0, equivalents, np.nan)


def income_below_line_per_adult_equivalent(features: pd.DataFrame, scale: EquivalenceScale) -> np.ndarray:
    """1.0 when net income per adult equivalent is below the round's poverty line, 0.0 when at or above
    it, NaN when unknown. Read off the per-person ratio: income per adult equivalent / line =
    ``income_to_line_ratio`` x household size / adult equivalents."""
    missing = [column for column in ADULT_EQUIVALENT_INPUTS if column not in features.columns]
    if missing:
        raise KeyError(
            f"the adult-equivalent income test needs the indicators {missing} in the feature frame"
        )
    size = features["household_size"].to_numpy(dtype=np.float64)
    children = features["share_children"].to_numpy(dtype=np.float64) * size
    ratio = (
        features["income_to_line_ratio"].to_numpy(dtype=np.float64)
        * size
        / adult_equivalents(size, children, scale)
    )
    return np.where(np.isnan(ratio), np.nan, (ratio < 1.0).astype(np.float64))


def poor_now(features: pd.DataFrame, policy: Policy, label_poor: pd.Series | None = None) -> pd.Series:
    """1.0 when a guarantee fails (income below the line = food/clothing, compulsory education, basic
    medical care, safe housing, safe drinking water; the income per member, or per adult equivalent
    under the policy's ``welfare.measure: adult_equivalent``), 0.0 when income is known to be at or
    above the line and no guarantee is known to fail, NaN whenever per-capita net income is unknown.

    A household whose income was not recorded cannot be labelled, whatever else is known about it: if
    such households were labelled poor when a guarantee fails (and left unknown otherwise), every
    labelled household with an unknown income would be poor, and a model would learn "income not
    recorded -> poor" from the missingness of the income indicators instead of the household's
    circumstances.

    A survey's own label overrides the rule where it is known, also for households with unknown income:
    pass it as ``label_poor`` (see ``survey_label``) or as a ``label_poor`` column of ``features``.
    """
    columns = _deprivation_columns(policy)
    missing = [column for column in columns if column not in features.columns]
    if missing:
        raise KeyError(f"poor_now needs the deprivation indicators {missing} in the feature frame")
    deprived = features[columns].to_numpy(dtype=np.float64, copy=True)
    if policy.welfare.measure == "adult_equivalent":
        deprived[:, columns.index("deprived_food_clothing")] = income_below_line_per_adult_equivalent(
            features, policy.welfare.equivalence_scale
        )
    any_failure = (deprived == 1.0).any(axis=1)
    income_below = deprived[:, columns.index("deprived_food_clothing")]
    rule = np.where(np.isnan(income_below), np.nan, np.where(any_failure, 1.0, 0.0))
    poor = pd.Series(rule, index=features.index, name="poor_now", dtype=np.float64)
    if label_poor is None and SURVEY_LABEL_COLUMN in features.columns:
        label_poor = features[SURVEY_LABEL_COLUMN]
    if label_poor is not None:
        override = pd.to_numeric(label_poor, errors="coerce").reindex(features.index)
        poor = override.astype(np.float64).fillna(poor).rename("poor_now")
    return poor


def _next_round(poor: pd.Series) -> np.ndarray:
    index = poor.index
    return same_household_in_round(
        poor.to_numpy(dtype=np.float64),
        index.get_level_values("household_id"),
        index.get_level_values("round"),
        offset=+1,
    )


def poor_next(poor: pd.Series) -> pd.Series:
    """The same household's poverty label in the next round (round + 1); NaN when that round is absent
    (last round, or a gap in the panel) or its label is unknown."""
    return pd.Series(_next_round(poor), index=poor.index, name="poor_next", dtype=np.float64)


def relapse_next(poor: pd.Series) -> pd.Series:
    """1.0 when a household not poor now is poor in the next round, 0.0 when it is not poor in either,
    NaN otherwise (poor now, unknown now, or next round unknown or absent)."""
    now = poor.to_numpy(dtype=np.float64)
    following = _next_round(poor)
    relapse = np.where((now == 0.0) & ~np.isnan(following), following, np.nan)
    return pd.Series(relapse, index=poor.index, name="relapse_next", dtype=np.float64)


# --- field-verified outcomes -------------------------------------------------------------------------

FIELD_POOR_CATEGORY = "poor"
"""The monitoring category whose field decisions are statements about poverty (monitoring.categories)."""

FIELD_DECISION_OUTCOME = {"verified": 1.0, "rejected": 0.0}
"""What a field decision on a ``poor``-category flag says about the household in the flag's round."""

FIELD_DECISION_COLUMNS = ("household_id", "round", "category", "decision")
VERIFICATION_COLUMNS = ("household_id", "round", "poor")
FIELD_OUTCOME_COLUMNS = ("household_id", "round", "outcome")


def field_poverty_outcomes(decisions: pd.DataFrame) -> pd.DataFrame:
    """Poverty outcomes (household_id, round, outcome 1.0/0.0) from field decisions on flags.

    ``decisions`` has one row per decided flag: household_id, round, category (the monitoring category
    the flag was raised in) and decision (``verified`` or ``rejected``: what the household visit found,
    whatever the later steps of the procedure decided).

    Only ``poor``-category flags are kept: verifying one means a field visit found the household poor in
    that round (outcome 1.0), rejecting one means it found it not poor (0.0). A decision on a watched
    category (``unstable_after_exit``, ``sudden_hardship``, ``marginal``) confirms or dismisses a *risk*,
    not a poverty status: "verified marginal" says the household is close to the line, not that it fell
    below it this round or the next, so turning it into a label would invent outcomes; such decisions
    are dropped (the caller counts them as not a poverty outcome).
    """
    missing = [column for column in FIELD_DECISION_COLUMNS if column not in decisions.columns]
    if missing:
        raise KeyError(f"field decisions lack column(s) {missing}; expected {list(FIELD_DECISION_COLUMNS)}")
    unknown = sorted(set(decisions["decision"]) - set(FIELD_DECISION_OUTCOME))
    if unknown:
        raise ValueError(
            f"unknown field decision(s) {unknown}; expected one of {sorted(FIELD_DECISION_OUTCOME)}"
        )
    about_poverty = decisions[decisions["category"] == FIELD_POOR_CATEGORY]
    return pd.DataFrame(
        {
            "household_id": about_poverty["household_id"].astype(str).to_numpy(),
            "round": about_poverty["round"].to_numpy(dtype=np.int64),
            "outcome": about_poverty["decision"].map(FIELD_DECISION_OUTCOME).to_numpy(dtype=np.float64),
        }
    )


def verified_poverty_outcomes(verification: pd.DataFrame) -> pd.DataFrame:
    """Poverty outcomes (household_id, round, outcome 1.0/0.0) from a survey's `verification` table:
    each row is a field visit's finding on a household in a round (`survey.schema.Verification`)."""
    missing = [column for column in VERIFICATION_COLUMNS if column not in verification.columns]
    if missing:
        raise KeyError(f"verification lacks column(s) {missing}; expected {list(VERIFICATION_COLUMNS)}")
    return pd.DataFrame(
        {
            "household_id": verification["household_id"].astype(str).to_numpy(),
            "round": verification["round"].to_numpy(dtype=np.int64),
            "outcome": verification["poor"].to_numpy(dtype=np.float64),
        }
    )


@dataclass(frozen=True)
class LabelCorrection:
    """Labels after field outcomes replaced them, and how many outcomes did what.

    ``confirmed``: the outcome equals the label; ``flipped_to_poor`` / ``flipped_to_not_poor``: the label
    was 0 / 1 and the outcome says otherwise; ``filled``: the label was unknown (NaN) and the outcome
    gives it; ``unmatched``: no label row has the outcome's (household_id, round).
    """

    labels: pd.Series
    confirmed: int
    flipped_to_poor: int
    flipped_to_not_poor: int
    filled: int
    unmatched: int

    @property
    def used(self) -> int:
        """Outcomes that met a label row (confirmed, flipped or filled)."""
        return self.confirmed + self.flipped_to_poor + self.flipped_to_not_poor + self.filled

    def counts(self) -> dict[str, int]:
        return {
            "used": self.used,
            "confirmed": self.confirmed,
            "flipped_to_poor": self.flipped_to_poor,
            "flipped_to_not_poor": self.flipped_to_not_poor,
            "filled": self.filled,
            "unmatched": self.unmatched,
        }


def correct_with_field_outcomes(labels: pd.Series, outcomes: pd.DataFrame) -> LabelCorrection:
    """Replace poverty labels (0/1/NaN on a (household_id, round) index) by field outcomes where known.

    A field visit observed the household, so its outcome beats both the income rule and a survey label.
    Only labels change, never features, and only rows already in ``labels``: an outcome for a household
    or round the labels do not hold is counted as unmatched, never added as a row. ``labels`` is not
    modified. Two outcomes for one (household_id, round) are an error (the flag store has one flag per
    household and round).
    """
    missing = [column for column in FIELD_OUTCOME_COLUMNS if column not in outcomes.columns]
    if missing:
        raise KeyError(f"field outcomes lack column(s) {missing}; expected {list(FIELD_OUTCOME_COLUMNS)}")
    keys = pd.MultiIndex.from_arrays(
        [outcomes["household_id"].astype(str).to_numpy(), outcomes["round"].to_numpy(dtype=np.int64)],
        names=["household_id", "round"],
    )
    if keys.has_duplicates:
        raise ValueError(f"field outcomes hold more than one outcome for {list(keys[keys.duplicated()][:5])}")
    outcome = pd.Series(outcomes["outcome"].to_numpy(dtype=np.float64), index=keys)
    if not outcome.isin([0.0, 1.0]).all():
        raise ValueError("field outcomes must be 0.0 or 1.0")
    matched = outcome[keys.isin(labels.index)]
    before = labels.reindex(matched.index).to_numpy(dtype=np.float64)
    after = matched.to_numpy(dtype=np.float64)
    corrected = labels.copy()
    corrected.loc[matched.index] = after
    return LabelCorrection(
        labels=corrected,
        confirmed=int((before == after).sum()),
        flipped_to_poor=int(((before == 0.0) & (after == 1.0)).sum()),
        flipped_to_not_poor=int(((before == 1.0) & (after == 0.0)).sum()),
        filled=int(np.isnan(before).sum()),
        unmatched=int(len(outcome) - len(matched)),
    )
