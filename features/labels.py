"""Labels: poor now (identification) and relapse by the next round.

``poor_now`` applies the policy's poverty definition to a feature frame: a household is poor when its
per-capita net income is below the round's poverty line or any of the guarantees fails ("two no
worries, three guarantees"). ``poor_next`` and ``relapse_next`` look one round ahead in the same panel.
All labels are float Series on the (household_id, round) index: 1.0, 0.0 or NaN (unknown).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.panel import same_household_in_round
from features.policy import Policy

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


def poor_now(features: pd.DataFrame, policy: Policy, label_poor: pd.Series | None = None) -> pd.Series:
    """1.0 when a guarantee fails (income below the line = food/clothing, compulsory education, basic
    medical care, safe housing, safe drinking water), 0.0 when income is known to be at or above the line
    and no guarantee is known to fail, NaN whenever per-capita net income is unknown.

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
    deprived = features[columns].to_numpy(dtype=np.float64)
    any_failure = (deprived == 1.0).any(axis=1)
    income_below = features["deprived_food_clothing"].to_numpy(dtype=np.float64)
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
