"""Property tests: identities and bounds that hold for any survey the schema admits."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.frame import build_features
from features.policy import load_policy

POLICY = load_policy()

money = st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False))
farm_money = st.one_of(st.none(), st.floats(min_value=-1e5, max_value=1e6, allow_nan=False))
yes_no = st.sampled_from([0.0, 1.0, None])


@st.composite
def surveys(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_households = draw(st.integers(min_value=1, max_value=5))
    rows, member_rows = [], []
    for h in range(n_households):
        for round_ in draw(st.sets(st.integers(min_value=0, max_value=4), min_size=1, max_size=3)):
            rows.append(
                {
                    "household_id": f"h{h}",
                    "village_id": "v",
                    "round": round_,
                    "income_wages": draw(money),
                    "income_agriculture_net": draw(farm_money),
                    "income_transfers": draw(money),
                    "medical_expenses": draw(money),
                    "medical_insurance": draw(yes_no),
                    "dangerous_house": draw(yes_no),
                    "safe_drinking_water": draw(yes_no),
                }
            )
            for m in range(draw(st.integers(min_value=0, max_value=4))):
                member_rows.append(
                    {
                        "household_id": f"h{h}",
                        "member_id": str(m),
                        "round": round_,
                        "age": draw(st.one_of(st.none(), st.floats(min_value=0, max_value=100))),
                        "in_school": draw(yes_no),
                        "health_status": draw(
                            st.sampled_from(["healthy", "chronic", "serious_illness", None])
                        ),
                    }
                )
    members = pd.DataFrame(
        member_rows, columns=["household_id", "member_id", "round", "age", "in_school", "health_status"]
    )
    return pd.DataFrame(rows).astype({"income_wages": float, "income_transfers": float}), members


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(surveys())
def test_identities_and_bounds(survey: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    households, members = survey
    features = build_features(households, members, POLICY)
    values = features.to_numpy()
    assert not np.isinf(values).any()
    assert len(features) == len(households)

    size = features["household_size"]
    both = features["per_capita_net_income"].notna()
    np.testing.assert_allclose(
        (features["per_capita_net_income"] * size)[both], features["net_income"][both], rtol=1e-9, atol=1e-6
    )
    assert (size.dropna() >= 1).all()

    score = features["deprivation_score"].dropna()
    assert ((score >= 0) & (score <= 1)).all()
    flags = features[[name for name in features.columns if name.startswith("deprived_")]].to_numpy()
    assert np.isin(flags[~np.isnan(flags)], [0.0, 1.0]).all()
    poor_by_score = features["multidimensionally_poor"].dropna()
    assert (poor_by_score == (features["deprivation_score"][poor_by_score.index] >= 0.4 - 1e-12)).all()
