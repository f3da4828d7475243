"""Registered derivations: the computations of an import that a mapping file cannot express.

A mapping names them (``derivations: [costa_rica]``); each is a function of the source rows and the
canonical columns mapped so far that returns more columns (or replaces some) and counts for the import
log. The registry below is the table of (name, function); tests/survey/test_table_import.py checks every
entry's contract (its columns have the households' / members' length and index).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from survey.adapters import costa_rica


@dataclass(frozen=True)
class DerivationInput:
    """What a derivation sees.

    ``rows``: every source row (per member, or per household); ``household_of_row``: each row's household
    id; ``row_is_head``: whether each row is its household's head's (all False when the mapping names no
    head). ``household_rows``: the source row each household was read from, in the households' order
    (index = position in the households table), with ``household_row_is_head``. ``households``: the
    canonical household columns mapped so far (same index)."""

    rows: pd.DataFrame
    household_of_row: pd.Series
    row_is_head: pd.Series
    household_rows: pd.DataFrame
    household_row_is_head: np.ndarray
    households: pd.DataFrame


@dataclass(frozen=True)
class Derived:
    """A derivation's result: household columns (index = the households'), member columns (index = the
    source rows', for member rows), the source headers it read, and counts for the import log."""

    households: dict[str, pd.Series] = field(default_factory=dict)
    members: dict[str, pd.Series] = field(default_factory=dict)
    reads: frozenset[str] = frozenset()
    log: dict[str, int] = field(default_factory=dict)


Derivation = Callable[[DerivationInput], Derived]


def costa_rica_survey(given: DerivationInput) -> Derived:
    """What the Costa Rica adapter computes beyond a mapping (survey/adapters/costa_rica.py says why):
    ``dangerous_house`` (walls or roof bad), ``durable_assets`` (a sum with the tablets rule),
    ``rent_paid`` (12 x v2a1, 0 for tenures that pay nothing), ``head_sex`` (the head row's sex, NaN
    without one), the labels (the head's Target, else the members' most frequent, a tie to the poorer)
    and every other household-level source column kept as an extra column (the yes/no numbers parsed)."""
    rows = given.household_rows
    tenure = given.households["tenure"] if "tenure" in given.households.columns else None
    labels = costa_rica.household_labels(
        given.household_of_row.astype("str"),
        given.row_is_head,
        pd.to_numeric(given.rows["Target"], errors="coerce").astype(np.float64),
    )
    household_ids = given.households["household_id"].to_numpy()
    computed: dict[str, pd.Series | None] = {
        "head_sex": costa_rica._head_sex(rows, given.household_row_is_head),
        "dangerous_house": costa_rica._dangerous_house(rows),
        "durable_assets": costa_rica._durable_assets(rows),
        "rent_paid": costa_rica._rent_paid(rows, tenure),
        "label_level": pd.Series(labels["label_level"].reindex(household_ids).to_numpy(), index=rows.index),
        "label_poor": pd.Series(labels["label_poor"].reindex(household_ids).to_numpy(), index=rows.index),
    }
    extras = {
        column: (
            costa_rica.parse_yes_no_number(rows[column])
            if column in costa_rica.YES_NO_NUMBER_COLUMNS
            else rows[column]
        )
        for column in costa_rica._extra_columns(rows.columns)
        if column not in computed and column not in given.households.columns
    }
    is_head = given.row_is_head.to_numpy()
    log = {
        "households_without_head": int((~given.household_row_is_head).sum()),
        "households_with_several_heads": int(
            (pd.Series(is_head).groupby(given.household_of_row.to_numpy()).sum() > 1).sum()
        ),
        "households_with_disagreeing_targets": int(labels["targets_disagree"].sum()),
        "households_without_label": int(labels["label_level"].isna().sum()),
    }
    households = {name: values for name, values in computed.items() if values is not None} | extras
    return Derived(households=households, reads=frozenset(rows.columns), log=log)


DERIVATIONS: dict[str, Derivation] = {
    "costa_rica": costa_rica_survey,
}
"""Every registered derivation, by the name a mapping file uses."""
