"""Field decisions as labels: which decisions are poverty outcomes, and how they correct labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.labels import correct_with_field_outcomes, field_poverty_outcomes, relapse_next

NAN = np.nan


def _labels(keys: list[tuple[str, int]], values: list[float]) -> pd.Series:
    index = pd.MultiIndex.from_tuples(keys, names=["household_id", "round"])
    return pd.Series(values, index=index, dtype=np.float64, name="poor_now")


def _outcomes(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["household_id", "round", "outcome"])


def _decisions(rows: list[tuple[str, int, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["household_id", "round", "category", "decision"])


def test_only_decisions_on_poor_flags_are_poverty_outcomes() -> None:
    decisions = _decisions(
        [
            ("h1", 2, "poor", "verified"),
            ("h2", 2, "poor", "rejected"),
            ("h3", 2, "marginal", "verified"),
            ("h4", 2, "unstable_after_exit", "rejected"),
            ("h5", 2, "sudden_hardship", "verified"),
        ]
    )
    outcomes = field_poverty_outcomes(decisions)
    assert outcomes.to_dict("list") == {"household_id": ["h1", "h2"], "round": [2, 2], "outcome": [1.0, 0.0]}


def test_an_unknown_decision_or_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="assisted"):
        field_poverty_outcomes(_decisions([("h1", 2, "poor", "assisted")]))
    with pytest.raises(KeyError, match="category"):
        field_poverty_outcomes(pd.DataFrame({"household_id": ["h1"], "round": [2], "decision": ["verified"]}))


def test_outcomes_confirm_flip_both_ways_fill_and_count_the_unmatched() -> None:
    labels = _labels([("h1", 3), ("h2", 3), ("h3", 3), ("h4", 3), ("h5", 3)], [1.0, 0.0, 1.0, NAN, 0.0])
    outcomes = _outcomes(
        [
            ("h1", 3, 1.0),  # confirmed
            ("h2", 3, 1.0),  # 0 -> 1
            ("h3", 3, 0.0),  # 1 -> 0
            ("h4", 3, 0.0),  # unknown -> 0
            ("h9", 3, 1.0),  # household not among the labels
            ("h5", 1, 1.0),  # a round not among the labels
        ]
    )
    correction = correct_with_field_outcomes(labels, outcomes)
    assert correction.labels.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert correction.labels.index.equals(labels.index)
    assert correction.counts() == {
        "used": 4,
        "confirmed": 1,
        "flipped_to_poor": 1,
        "flipped_to_not_poor": 1,
        "filled": 1,
        "unmatched": 2,
    }
    assert labels.tolist()[:3] == [1.0, 0.0, 1.0]  # the given labels are not modified


def test_no_outcomes_change_nothing() -> None:
    labels = _labels([("h1", 1), ("h2", 1)], [1.0, 0.0])
    correction = correct_with_field_outcomes(labels, _outcomes([]))
    assert correction.labels.equals(labels)
    assert correction.used == 0 and correction.unmatched == 0


def test_a_field_outcome_in_the_next_round_becomes_the_relapse_label() -> None:
    # not poor in round 1 by the rule, found poor in round 2 by a field visit: relapse in round 1
    poor = _labels([("h1", 1), ("h1", 2), ("h2", 1), ("h2", 2)], [0.0, 0.0, 0.0, 1.0])
    corrected = correct_with_field_outcomes(poor, _outcomes([("h1", 2, 1.0), ("h2", 2, 0.0)])).labels
    assert relapse_next(corrected).tolist()[0::2] == [1.0, 0.0]


def test_duplicate_or_non_binary_outcomes_are_errors() -> None:
    labels = _labels([("h1", 1)], [1.0])
    with pytest.raises(ValueError, match="more than one outcome"):
        correct_with_field_outcomes(labels, _outcomes([("h1", 1, 1.0), ("h1", 1, 0.0)]))
    with pytest.raises(ValueError, match=r"0\.0 or 1\.0"):
        correct_with_field_outcomes(labels, _outcomes([("h1", 1, 0.5)]))
    with pytest.raises(KeyError, match="outcome"):
        correct_with_field_outcomes(labels, pd.DataFrame({"household_id": ["h1"], "round": [1]}))
