"""Training time of both tasks (with the in-training model-size choice and calibration) on a county.

Run: .venv/bin/python benchmarks/bench_training.py [--households N]
"""

from __future__ import annotations

import argparse

from _common import emit, peak_rss_mb, seconds

from features.policy import load_policy
from survey.simulate import CountySettings, simulate_county
from survey.validate import conform
from training.train import train_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()

    policy = load_policy()
    county = conform(
        simulate_county(
            CountySettings(
                households=arguments.households,
                villages=max(arguments.households // 250, 10),
                rounds=arguments.rounds,
                seed=0,
                monte_carlo_draws=50,
            )
        )
    )
    for task in ("poverty", "relapse"):
        train_s, trained = seconds(lambda task=task: train_task(county, task, policy, seed=0))
        emit(
            f"train_{task}",
            households=arguments.households,
            rounds=arguments.rounds,
            training_rows=len(trained.held_out),
            seconds=train_s,
            held_out_roc_auc=trained.metrics["roc_auc"],
            peak_rss_mb=peak_rss_mb(),
        )


if __name__ == "__main__":
    main()
