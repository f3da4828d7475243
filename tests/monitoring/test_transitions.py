"""Transitions on a hand-built six-household, two-round panel whose answer is known."""

from __future__ import annotations

import pandas as pd
import pytest

from monitoring.transitions import (
    TRANSITIONS,
    category_movements,
    household_transitions,
    transition_counts,
)


def round_frame(rows: list[tuple[str, str, float, float, float, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["household_id", "village_id", "poor", "identified", "exited", "category"]
    )
    return frame.set_index("household_id")


# household, village, poor, identified (registered poor), exited (registered exited), category
PREVIOUS = round_frame(
    [
        ("h1", "v1", 0.0, 0.0, 0.0, "marginal"),  # falls into poverty, was watched
        ("h2", "v1", 1.0, 1.0, 0.0, "poor"),  # exits poverty
        ("h3", "v1", 0.0, 0.0, 1.0, "unstable_after_exit"),  # relapses after exit
        ("h4", "v2", 0.0, 0.0, 0.0, "not_monitored"),  # falls into poverty unseen: missed
        ("h5", "v2", 0.0, 0.0, 0.0, "sudden_hardship"),  # recovers: risk eliminated
        ("h6", "v2", 0.0, 0.0, 0.0, "not_monitored"),  # becomes marginal: newly monitored
    ]
)
CURRENT = round_frame(
    [
        ("h1", "v1", 1.0, 0.0, 0.0, "poor"),
        ("h2", "v1", 0.0, 0.0, 1.0, "unstable_after_exit"),
        ("h3", "v1", 1.0, 0.0, 1.0, "poor"),
        ("h4", "v2", 1.0, 0.0, 0.0, "poor"),
        ("h5", "v2", 0.0, 0.0, 0.0, "not_monitored"),
        ("h6", "v2", 0.0, 0.0, 0.0, "marginal"),
    ]
)
EXPECTED = {
    "entering_poverty": {"h1", "h3", "h4"},
    "exiting_poverty": {"h2"},
    "relapse_after_exit": {"h3"},
    "newly_monitored": {"h4", "h6"},
    "risk_eliminated": {"h5"},
    "missed": {"h4"},
}


def test_each_household_gets_the_known_transitions() -> None:
    transitions = household_transitions(PREVIOUS, CURRENT)
    for name in TRANSITIONS:
        assert set(transitions.index[transitions[name] == 1]) == EXPECTED[name], name
    assert transitions.loc["h2", ["previous_category", "current_category"]].tolist() == [
        "poor",
        "unstable_after_exit",
    ]


def test_counts_by_village_and_county() -> None:
    counts = transition_counts(household_transitions(PREVIOUS, CURRENT))
    assert list(counts.index) == ["v1", "v2", "county"]
    assert counts.loc["v1", "entering_poverty"] == 2 and counts.loc["v2", "missed"] == 1
    assert counts.loc["county"].to_dict() == {"households": 6} | {
        name: len(households) for name, households in EXPECTED.items()
    }


def test_category_movements_table() -> None:
    table = category_movements(household_transitions(PREVIOUS, CURRENT))
    assert table.to_numpy().sum() == 6
    assert table.loc["not_monitored", "poor"] == 1 and table.loc["sudden_hardship", "not_monitored"] == 1
    assert table.loc["poor", "unstable_after_exit"] == 1
    assert list(table.index) == list(table.columns)


def test_a_household_new_to_the_panel_counts_as_not_monitored_before() -> None:
    current = pd.concat([CURRENT, round_frame([("h7", "v3", 1.0, 0.0, 0.0, "poor")])])
    transitions = household_transitions(PREVIOUS, current)
    assert transitions.loc["h7", ["missed", "newly_monitored", "entering_poverty"]].tolist() == [1, 1, 1]
    assert transitions.loc["h7", "previous_category"] == "not_monitored"


def test_unknown_poverty_is_neither_entering_nor_exiting() -> None:
    current = CURRENT.assign(poor=CURRENT["poor"].where(CURRENT.index != "h1"))
    transitions = household_transitions(PREVIOUS, current)
    assert transitions.loc["h1", ["entering_poverty", "missed"]].tolist() == [0, 0]


def test_bad_rounds_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="previous round lacks column"):
        household_transitions(PREVIOUS.drop(columns="category"), CURRENT)
    with pytest.raises(ValueError, match="unknown monitoring categories"):
        household_transitions(PREVIOUS, CURRENT.assign(category="watched"))
    with pytest.raises(ValueError, match="more than once"):
        household_transitions(PREVIOUS, pd.concat([CURRENT, CURRENT.iloc[:1]]))
