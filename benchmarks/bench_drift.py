"""Drift between two rounds: PSI, KS test and missing shares of every indicator, and the score drift.

Two measurements: two rounds of a simulated county (real indicator columns: many discrete), and the
worst case of the same size where every column is continuous (every value distinct), the second round
shifted. Run: .venv/bin/python benchmarks/bench_drift.py [--households N]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from _common import emit, peak_rss_mb, seconds

from features.frame import build_features
from features.policy import load_policy
from monitoring.drift import drift_report
from survey.simulate import CountySettings, simulate_county


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=155_000)
    arguments = parser.parse_args()
    policy = load_policy()

    settings = CountySettings(
        households=arguments.households,
        villages=max(arguments.households // 250, 10),
        rounds=2,
        seed=0,
        monte_carlo_draws=10,
    )
    county = simulate_county(settings)
    features = build_features(county.households, county.members, policy)
    rounds = features.index.get_level_values("round")
    previous, current = features[rounds == 0], features[rounds == 1]
    rng = np.random.default_rng(0)
    scores = rng.beta(2, 8, size=len(previous)), rng.beta(2, 7, size=len(current))
    drift_s, report = seconds(lambda: drift_report(previous, current, policy.drift, *scores))
    emit(
        "drift_two_county_rounds",
        rows_per_round=len(previous),
        features=features.shape[1],
        seconds=drift_s,
        drifted_features=len(report.summary.drifted_features),
        peak_rss_mb=peak_rss_mb(),
    )

    columns = [f"x{index}" for index in range(features.shape[1])]
    reference = pd.DataFrame(rng.normal(size=(len(previous), len(columns))), columns=columns)
    shifted = pd.DataFrame(rng.normal(0.1, 1.1, size=(len(current), len(columns))), columns=columns)
    shifted.iloc[rng.random(len(shifted)) < 0.05, 0] = np.nan
    continuous_s, _ = seconds(lambda: drift_report(reference, shifted, policy.drift, *scores))
    emit(
        "drift_continuous_worst_case",
        rows_per_round=len(reference),
        features=len(columns),
        seconds=continuous_s,
        peak_rss_mb=peak_rss_mb(),
    )


if __name__ == "__main__":
    main()
