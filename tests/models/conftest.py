"""Small synthetic feature frames with a known signal, for model units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def synthetic_frame(n: int = 500, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Three informative indicators, one noise column with missing values; index (household_id, round)."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(mean=8.5, sigma=0.6, size=n)
    illness = rng.binomial(1, 0.2, size=n).astype(float)
    labour = rng.integers(0, 4, size=n).astype(float)
    noise = rng.normal(size=n)
    noise[rng.random(n) < 0.1] = np.nan
    logit = -1.0 - 1.5 * (np.log(income) - 8.5) + 1.5 * illness - 0.6 * (labour - 1.5)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(float)
    index = pd.MultiIndex.from_arrays(
        [[f"h{i:04d}" for i in range(n)], np.zeros(n, dtype=int)], names=["household_id", "round"]
    )
    X = pd.DataFrame(
        {
            "per_capita_net_income": income,
            "shock_serious_illness": illness,
            "labour_capable_members": labour,
            "distance_market_km": noise,
        },
        index=index,
    )
    return X, pd.Series(y, index=index, name="label")


@pytest.fixture(scope="session")
def synthetic() -> tuple[pd.DataFrame, pd.Series]:
    return synthetic_frame()


@pytest.fixture(scope="session")
def booster(synthetic):
    from models.fit import fit_booster
    from models.spec import load_spec

    X, y = synthetic
    groups = X.index.get_level_values("household_id").to_numpy()
    return fit_booster(X, y, groups, load_spec(), seed=0)
