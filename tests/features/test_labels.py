"""Labels: poor now (rule and survey override), poor next round, relapse next round."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.frame import build_features
from features.labels import poor_next, poor_now, relapse_next, survey_label
from features.policy import Policy

NAN = np.nan
DEPRIVATIONS = [
    "deprived_food_clothing",
    "deprived_compulsory_education",
    "deprived_basic_medical",
    "deprived_safe_housing",
    "deprived_safe_water",
]


def _panel(keys: list[tuple[str, int]], values: list[float]) -> pd.Series:
    index = pd.MultiIndex.from_tuples(keys, names=["household_id", "round"])
    return pd.Series(values, index=index, dtype=np.float64)


def _deprivations(rows: list[list[float]]) -> pd.DataFrame:
    index = pd.MultiIndex.from_tuples(
        [(f"h{i}", 0) for i in range(len(rows))], names=["household_id", "round"]
    )
    return pd.DataFrame(rows, columns=DEPRIVATIONS, index=index, dtype=np.float64)


def test_poor_now_rule(policy: Policy) -> None:
    features = _deprivations(
        [
            [1, 0, 0, 0, 0],  # income below the line
            [0, 0, 0, 1, 0],  # income fine, dangerous house
            [0, 0, NAN, NAN, NAN],  # income fine, guarantees unknown: not poor as far as known
            [NAN, 0, 0, 0, 0],  # income unknown, no guarantee fails: unknown
            [NAN, NAN, 1, NAN, NAN],  # income unknown, a guarantee fails: still unknown (no label leak)
            [NAN, 1, 1, 1, 1],  # income unknown, every guarantee fails: still unknown
            [1, NAN, NAN, NAN, NAN],  # income below the line, guarantees unknown: poor
        ]
    )
    result = poor_now(features, policy)
    np.testing.assert_array_equal(result.to_numpy(), [1, 1, 0, NAN, NAN, NAN, 1])
    assert result.index.equals(features.index)


def test_unknown_income_says_nothing_about_the_label(policy: Policy) -> None:
    """Among labelled rows, a household with unknown income must not be more often poor: none is labelled."""
    features = _deprivations([[NAN, 0, 0, 1, 0], [NAN, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0]])
    labelled = poor_now(features, policy).dropna()
    assert list(labelled.index.get_level_values("household_id")) == ["h2", "h3"]


def test_survey_label_overrides_where_known(policy: Policy) -> None:
    features = _deprivations([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [NAN, 0, 0, 0, 0]])
    label = pd.Series([0.0, NAN, 1.0], index=features.index)
    np.testing.assert_array_equal(poor_now(features, policy, label_poor=label).to_numpy(), [0, 0, 1])
    as_column = features.assign(label_poor=[0.0, NAN, 1.0])
    np.testing.assert_array_equal(poor_now(as_column, policy).to_numpy(), [0, 0, 1])


def test_survey_label_from_households_aligns_by_key(
    households: pd.DataFrame, members: pd.DataFrame, policy: Policy
) -> None:
    labelled = households.assign(label_poor=[0.0, 1.0, NAN, 1.0])
    features = build_features(labelled, members, policy)
    label = survey_label(labelled.iloc[::-1])  # a different row order still lines up by key
    assert label is not None
    result = poor_now(features, policy, label_poor=label)
    # a0 is poor by the rule (child out of school) but the survey says not; b0 falls back to the rule
    np.testing.assert_array_equal(result.to_numpy(), [0, 1, 1, 1])
    assert survey_label(households) is None


def test_poor_now_needs_the_deprivation_columns(policy: Policy) -> None:
    with pytest.raises(KeyError, match="deprived_safe_water"):
        poor_now(_deprivations([[0, 0, 0, 0, 0]]).drop(columns="deprived_safe_water"), policy)


def test_poor_next_and_relapse_across_rounds_and_gaps() -> None:
    poor = _panel(
        [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 2), ("c", 1), ("c", 0), ("d", 0), ("d", 1)],
        [0, 1, 0, 0, 1, 0, 1, NAN, 1],
    )
    # a: 0 -> 1 relapse, 1 -> 0 poor now (NaN), last round NaN; b: round 1 missing (gap) -> NaN;
    # c (rows out of order): poor in 0 -> NaN, last -> NaN; d: unknown now -> NaN
    np.testing.assert_array_equal(poor_next(poor).to_numpy(), [1, 0, NAN, NAN, NAN, NAN, 0, 1, NAN])
    np.testing.assert_array_equal(relapse_next(poor).to_numpy(), [1, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN])


def test_relapse_zero_when_staying_out_of_poverty() -> None:
    poor = _panel([("a", 0), ("a", 1), ("b", 0), ("b", 1)], [0, 0, 0, NAN])
    np.testing.assert_array_equal(relapse_next(poor).to_numpy(), [0, NAN, NAN, NAN])


def test_household_ids_do_not_leak_between_households() -> None:
    """Household 'a' round 5 must not be read as the next round of household 'b' round 4 or similar."""
    poor = _panel([("b", 4), ("a", 5), ("a", 0), ("b", 5)], [0, 1, 0, 1])
    np.testing.assert_array_equal(poor_next(poor).to_numpy(), [1, NAN, NAN, NAN])


def test_duplicate_keys_raise() -> None:
    with pytest.raises(ValueError, match="unique"):
        poor_next(_panel([("a", 0), ("a", 0)], [0, 1]))


def test_without_survey_noise_the_policy_labels_every_household_as_its_truth(policy: Policy) -> None:
    """The simulator's truly poor and the policy's poor_now are one rule: on a survey without noise
    they agree on every household and round (else a relapse model would learn another outcome than
    the one it is scored on)."""
    from survey.simulate import CountySettings, load_world, simulate_county

    assert load_world().catastrophic_medical_share == policy.catastrophic_medical_share
    survey = simulate_county(
        CountySettings(households=2_000, villages=40, rounds=3, survey_noise=0.0, monte_carlo_draws=2)
    )
    assert survey.truth is not None
    features = build_features(survey.households, survey.members, policy)
    labels = poor_now(features, policy)
    truth = survey.truth.set_index(["household_id", "round"])["poor"].reindex(features.index)
    assert labels.notna().all()
    np.testing.assert_array_equal(labels.to_numpy(), truth.to_numpy())
    assert 0.05 < labels.mean() < 0.25
