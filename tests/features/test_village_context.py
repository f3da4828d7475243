"""Village context: a household scored alone with its village's counts (as the register keeps them)
gets the village indicator a whole round's table gives it; without them, the indicator is unknown."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.frame import VILLAGE_CONTEXT, build_features
from features.policy import load_policy
from survey.village_context import village_round_context

NAN = float("nan")


def _round() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "household_id": [f"H{index}" for index in range(9)],
            "village_id": ["V1"] * 8 + ["V2"],
            "round": [2] * 9,
            "shock_disaster": [1, 0, 0, 1, 0, NAN, 1, 0, 1],
            "shock_job_loss": [0, 0, NAN, 1, 0, NAN, 0, 1, 0],
        }
    )


def test_the_rounds_counts_are_per_village_and_round() -> None:
    context = village_round_context(_round()).set_index("village_id")
    assert context.loc["V1", ["households", "answering_shocks", "with_shocks"]].tolist() == [8, 7, 4]
    assert context.loc["V2", ["households", "answering_shocks", "with_shocks"]].tolist() == [1, 1, 1]


def test_a_household_alone_with_its_villages_counts_gets_the_rounds_share() -> None:
    policy = load_policy()
    table = _round()
    whole = build_features(table, None, policy)["village_shock_share"]
    context = village_round_context(table).set_index("village_id")
    for position in range(len(table)):
        row = table.iloc[[position]].copy()
        village = context.loc[row["village_id"].iloc[0]]
        answered = float(row[["shock_disaster", "shock_job_loss"]].notna().any(axis=1).iloc[0])
        reported = float((row[["shock_disaster", "shock_job_loss"]] > 0).any(axis=1).iloc[0])
        alone = row.assign(
            **{
                VILLAGE_CONTEXT[0]: village["answering_shocks"] - answered,
                VILLAGE_CONTEXT[1]: village["with_shocks"] - reported,
            }
        )
        got = build_features(alone.assign(village_id="elsewhere"), None, policy)["village_shock_share"]
        np.testing.assert_equal(got.to_numpy(), whole.iloc[[position]].to_numpy())
    assert whole.notna().sum() == 8  # V1's households see 6 or 7 answering neighbours; V2's none


def test_without_context_a_household_alone_has_no_village_share() -> None:
    alone = _round().iloc[[0]]
    assert np.isnan(build_features(alone, None, load_policy())["village_shock_share"].iloc[0])
