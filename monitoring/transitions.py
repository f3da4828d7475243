"""Transitions between two survey rounds, per household, by village and for the county.

Input: one frame per round, indexed by household_id, with the columns of `ROUND_COLUMNS`:
`village_id`; `poor` (the round's poverty label: 1, 0, NaN unknown); `identified` (registered as poor at
the start of the round, 1/0); `exited` (registered as having exited poverty, 1/0); `category` (the
monitoring category, `not_monitored` included). A household present in one round only counts as
not poor, not identified and not monitored in the other (it joined or left the panel).

The transitions (each a 0/1 column; a household can be in several):
- `entering_poverty`: not poor in the previous round, poor in the current one.
- `exiting_poverty`: poor in the previous round, not poor in the current one.
- `relapse_after_exit`: poor in the current round although registered as having exited poverty (in
  either round): the households the monitoring exists to catch. A subset of entering poverty when the
  previous round was not poor.
- `newly_monitored`: in a monitoring category now, not monitored in the previous round.
- `risk_eliminated`: monitored in the previous round as unstable after exit, marginal or in sudden
  hardship, and not monitored now (its risk is gone by the data; the flag store's `risk_eliminated`
  status is the cadres' confirmation of it).
- `missed`: poor now, but in the previous round neither identified as poor nor in any monitoring
  category: the exclusion the dynamic management is meant to close.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitoring.categories import CATEGORIES, NOT_MONITORED

ROUND_COLUMNS = ("village_id", "poor", "identified", "exited", "category")
TRANSITIONS = (
    "entering_poverty",
    "exiting_poverty",
    "relapse_after_exit",
    "newly_monitored",
    "risk_eliminated",
    "missed",
)
WATCHED_CATEGORIES = ("unstable_after_exit", "marginal", "sudden_hardship")
COUNTY = "county"


def _check_round(frame: pd.DataFrame, name: str) -> None:
    missing = [column for column in ROUND_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} round lacks column(s): {', '.join(missing)}")
    if not frame.index.is_unique:
        raise ValueError(f"{name} round lists a household more than once")
    unknown = sorted(set(frame["category"].dropna()) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"{name} round has unknown monitoring categories {unknown}")


def _aligned(frame: pd.DataFrame, households: pd.Index) -> dict[str, np.ndarray]:
    """The round's facts on `households`; absent households: not poor, not registered, not monitored."""
    present = frame.reindex(households)
    is_present = households.isin(frame.index)
    poor = present["poor"].to_numpy(dtype=np.float64)
    return {
        "poor": np.where(is_present, poor, 0.0),
        "identified": present["identified"].fillna(0.0).to_numpy(dtype=np.float64) == 1.0,
        "exited": present["exited"].fillna(0.0).to_numpy(dtype=np.float64) == 1.0,
        "category": present["category"].fillna(NOT_MONITORED).to_numpy(dtype=object),
    }


def household_transitions(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """One row per household of either round (index household_id): `village_id` (the current round's,
    else the previous one's), `previous_category`, `current_category` and the 0/1 TRANSITIONS."""
    _check_round(previous, "previous")
    _check_round(current, "current")
    households = current.index.union(previous.index)
    before, now = _aligned(previous, households), _aligned(current, households)
    village = current["village_id"].reindex(households).fillna(previous["village_id"].reindex(households))
    poor_now, poor_before = now["poor"] == 1.0, before["poor"] == 1.0
    monitored_now = now["category"] != NOT_MONITORED
    monitored_before = before["category"] != NOT_MONITORED
    flags = {
        "entering_poverty": (before["poor"] == 0.0) & poor_now,
        "exiting_poverty": poor_before & (now["poor"] == 0.0),
        "relapse_after_exit": poor_now & (now["exited"] | before["exited"]),
        "newly_monitored": monitored_now & ~monitored_before,
        "risk_eliminated": np.isin(before["category"], WATCHED_CATEGORIES) & ~monitored_now,
        "missed": poor_now & ~before["identified"] & ~monitored_before,
    }
    return pd.DataFrame(
        {
            "village_id": village.astype(str).to_numpy(),
            "previous_category": before["category"].astype(str),
            "current_category": now["category"].astype(str),
            **{name: flags[name].astype(np.int64) for name in TRANSITIONS},
        },
        index=households.rename("household_id"),
    )


def transition_counts(transitions: pd.DataFrame) -> pd.DataFrame:
    """Counts of each transition by village (sorted), then a `county` row with the totals; column
    `households` counts the households of either round."""
    by_village = transitions.groupby("village_id", sort=True)[list(TRANSITIONS)].sum()
    by_village.insert(0, "households", transitions.groupby("village_id", sort=True).size())
    county = by_village.sum().to_frame(COUNTY).T
    return pd.concat([by_village, county]).astype(np.int64).rename_axis("village_id")


def category_movements(transitions: pd.DataFrame) -> pd.DataFrame:
    """Households by previous category (rows) and current category (columns), every category listed."""
    table = pd.crosstab(transitions["previous_category"], transitions["current_category"])
    return table.reindex(index=list(CATEGORIES), columns=list(CATEGORIES), fill_value=0).astype(np.int64)
