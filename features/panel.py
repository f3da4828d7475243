"""Looking across rounds of the same household in a panel, vectorised."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def same_household_in_round(
    values: np.ndarray, household_id: ArrayLike, round: ArrayLike, offset: int
) -> np.ndarray:
    """For each row, the same household's value in round + ``offset`` (-1 = previous round, +1 = next);
    NaN when that round is absent. (household_id, round) must be unique. One hash lookup on integer
    keys, so one household costs microseconds and a county scales linearly.
    """
    return same_household_in_rounds(values, household_id, round, (offset,))[:, 0]


def same_household_in_rounds(
    values: np.ndarray,
    household_id: ArrayLike,
    round: ArrayLike,
    offsets: Sequence[int],
) -> np.ndarray:
    """`same_household_in_round` for several offsets at once: a (rows x offsets) float array, column j
    holding each row's household value in round + ``offsets[j]`` (NaN when absent); the keys are built
    once."""
    source = np.asarray(values, dtype=np.float64)
    looked_up = np.full((len(source), len(offsets)), np.nan)
    if len(source) < 2:  # one row (a serving request) has no other round to look at
        return looked_up
    household_codes, _ = pd.factorize(np.asarray(household_id))
    rounds = np.asarray(round, dtype=np.int64)
    reach = max((abs(offset) for offset in offsets), default=0)
    # keys of different households stay more than `reach` apart, so round + offset never hits a neighbour
    span = int(rounds.max()) + reach + 1
    keys = household_codes.astype(np.int64) * span + rounds
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    if (sorted_keys[1:] == sorted_keys[:-1]).any():
        raise ValueError("same_household_in_round needs unique (household_id, round) pairs")
    for column, offset in enumerate(offsets):
        wanted = keys + offset
        slot = np.minimum(np.searchsorted(sorted_keys, wanted), len(sorted_keys) - 1)
        found = sorted_keys[slot] == wanted
        looked_up[found, column] = source[order[slot[found]]]
    return looked_up
