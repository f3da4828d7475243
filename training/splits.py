"""Honest splits: no household on both sides; for a panel, never train on the future."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold


def grouped_kfold(
    groups: Sequence[object] | np.ndarray, y: Sequence[float] | np.ndarray, n_splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified group k-fold: (train positions, test positions) per fold; a group (household) is in
    exactly one test fold. Falls back to plain group k-fold when `y` has a single class."""
    group_ids = np.asarray(groups)
    labels = np.asarray(y)
    if len(group_ids) != len(labels):
        raise ValueError(f"groups and y differ in length: {len(group_ids)} vs {len(labels)}")
    n_groups = len(np.unique(group_ids))
    if n_splits < 2 or n_splits > n_groups:
        raise ValueError(f"n_splits must be between 2 and the number of groups ({n_groups}), got {n_splits}")
    positions = np.zeros((len(labels), 1))
    if len(np.unique(labels)) < 2:
        splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(train, test) for train, test in splitter.split(positions, labels, group_ids)]


def round_to_round_splits(rounds: Sequence[int] | np.ndarray) -> list[tuple[tuple[int, ...], int]]:
    """For every round t but the last: (rounds <= t, t + 1's round) — train on the past, test on the next."""
    ordered = sorted({int(r) for r in rounds})
    return [(tuple(ordered[: i + 1]), ordered[i + 1]) for i in range(len(ordered) - 1)]
