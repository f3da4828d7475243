"""Welfare per adult equivalent as a policy option: the scale as data, per capita by default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.labels import adult_equivalents, poor_now
from features.policy import EquivalenceScale, Policy, load_policy, policy_from_mapping

NAN = np.nan
OECD = EquivalenceScale(first_adult=1.0, other_adults=0.5, children=0.3)


def _features(rows: list[tuple[float, float, float]]) -> pd.DataFrame:
    """Income-to-line ratio (per person), household size, share of children; no guarantee fails."""
    index = pd.MultiIndex.from_tuples(
        [(f"h{i}", 0) for i in range(len(rows))], names=["household_id", "round"]
    )
    ratio, size, children = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
    return pd.DataFrame(
        {
            "deprived_food_clothing": np.where(np.isnan(ratio), NAN, (ratio < 1.0).astype(np.float64)),
            "deprived_compulsory_education": 0.0,
            "deprived_basic_medical": 0.0,
            "deprived_safe_housing": 0.0,
            "deprived_safe_water": 0.0,
            "income_to_line_ratio": ratio,
            "household_size": size,
            "share_children": children,
        },
        index=index,
    )


def _with_welfare(policy: Policy, measure: str) -> Policy:
    settings = policy.model_dump(mode="python")
    settings["welfare"] = {"measure": measure, "equivalence_scale": OECD.model_dump()}
    return policy_from_mapping(settings)


def test_oecd_modified_scale() -> None:
    equivalents = adult_equivalents(
        np.array([1.0, 2.0, 4.0, 2.0, 3.0, NAN]), np.array([0.0, 0.0, 2.0, 2.0, NAN, 0.0]), OECD
    )
    # one adult; two adults; two adults and two children; two children alone; children unknown: adults
    np.testing.assert_allclose(equivalents, [1.0, 1.5, 2.1, 1.3, 2.0, NAN])


def test_per_capita_is_the_shipped_default() -> None:
    assert load_policy().welfare.measure == "per_capita"


def test_per_capita_compares_income_per_member(policy: Policy) -> None:
    # 0.8 of the line per person is poor per capita, whatever the household's make-up
    features = _features([(0.8, 4.0, 0.5), (1.2, 4.0, 0.5), (NAN, 2.0, 0.0)])
    np.testing.assert_array_equal(poor_now(features, _with_welfare(policy, "per_capita")), [1.0, 0.0, NAN])


def test_adult_equivalent_divides_by_adult_equivalents(policy: Policy) -> None:
    features = _features(
        [
            (0.8, 4.0, 0.5),  # 0.8 x 4 / 2.1 = 1.52 of the line per adult equivalent: not poor
            (0.5, 4.0, 0.5),  # 0.5 x 4 / 2.1 = 0.95: poor
            (0.9, 1.0, 0.0),  # one person: the same as per capita, poor
            (NAN, 2.0, 0.0),  # income unknown: unknown
        ]
    )
    labels = poor_now(features, _with_welfare(policy, "adult_equivalent"))
    np.testing.assert_array_equal(labels, [0.0, 1.0, 1.0, NAN])
    assert features["deprived_food_clothing"].tolist()[:3] == [1.0, 1.0, 1.0]  # the input is not modified


def test_adult_equivalent_needs_its_indicators(policy: Policy) -> None:
    features = _features([(0.8, 4.0, 0.5)]).drop(columns="share_children")
    with pytest.raises(KeyError, match="share_children"):
        poor_now(features, _with_welfare(policy, "adult_equivalent"))


def test_an_unknown_measure_is_refused(policy: Policy) -> None:
    settings = policy.model_dump(mode="python") | {"welfare": {"measure": "per_household"}}
    with pytest.raises(ValueError, match=r"welfare\.measure"):
        policy_from_mapping(settings)
