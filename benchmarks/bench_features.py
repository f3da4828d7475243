"""Feature pipeline throughput: a simulated county's survey panel -> the household feature frame.

Run: .venv/bin/python benchmarks/bench_features.py [--households N]
"""

from __future__ import annotations

import argparse

from _common import emit, latencies_ms, latency_figures, peak_rss_mb, seconds

from features.frame import build_features
from features.policy import load_policy
from survey.simulate import CountySettings, simulate_county


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()

    policy = load_policy()
    settings = CountySettings(
        households=arguments.households,
        villages=max(arguments.households // 250, 10),
        rounds=arguments.rounds,
        seed=0,
        monte_carlo_draws=100,
    )
    simulate_s, county = seconds(lambda: simulate_county(settings))
    emit(
        "simulate_county",
        households=arguments.households,
        rounds=arguments.rounds,
        seconds=simulate_s,
        monte_carlo_draws=settings.monte_carlo_draws,
    )

    rows = len(county.households)
    build_s, features = seconds(lambda: build_features(county.households, county.members, policy))
    emit(
        "feature_pipeline",
        household_rounds=rows,
        indicators=features.shape[1],
        seconds=build_s,
        household_rounds_per_s=rows / build_s,
        peak_rss_mb=peak_rss_mb(),
    )

    latest = county.households["round"].max()
    one = county.households[county.households["round"] == latest].head(1)
    members = county.members[
        (county.members["household_id"] == one["household_id"].iloc[0]) & (county.members["round"] == latest)
    ]
    samples = latencies_ms(lambda: build_features(one, members, policy), repeats=300)
    emit("feature_pipeline_one_household", **latency_figures(samples))


if __name__ == "__main__":
    main()
