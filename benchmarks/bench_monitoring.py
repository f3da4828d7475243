"""Dynamic management at county scale (issue 4's budgets: each under 60 s on 2 cores, peak under 4 GB).

Trains both models on a small county (5,000 households), then on a full simulated county (default
155,000 households, 3 rounds) measures:
- `score_round`: the last round with monitoring categories, causes and reasons for every flagged
  household, plus writing the flags to a SQLite flag store (`upsert_flags`);
- `monitor_rounds`: both rounds scored, transitions, category movements, drift and the HTML report.

Run: .venv/bin/python benchmarks/bench_monitoring.py [--households N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import emit, peak_rss_mb, seconds

from features.policy import load_policy
from models.predictor import RiskPredictor
from serving.batch import score_round
from serving.monitor import monitor_rounds
from store.cases import upsert_flags
from store.database import create_schema, make_engine
from survey.simulate import CountySettings, simulate_county
from survey.validate import conform
from training.train import train_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=155_000)
    parser.add_argument("--villages", type=int, default=631)
    arguments = parser.parse_args()

    policy = load_policy()
    small = conform(simulate_county(CountySettings(households=5_000, villages=20, rounds=4, seed=1)))
    tasks = {task: train_task(small, task, policy, seed=0).model for task in ("poverty", "relapse")}
    predictor = RiskPredictor(poverty=tasks["poverty"], relapse=tasks["relapse"], policy=policy)

    simulate_s, county = seconds(
        lambda: conform(
            simulate_county(
                CountySettings(
                    households=arguments.households,
                    villages=arguments.villages,
                    rounds=3,
                    seed=0,
                    monte_carlo_draws=10,
                )
            )
        )
    )
    last = int(county.households["round"].max())
    with tempfile.TemporaryDirectory(prefix="povrisk-bench-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'flags.db'}")
        create_schema(engine)
        score_s, flags = seconds(lambda: score_round(predictor, county, last, lang="zh"))
        store_s, _ = seconds(lambda: upsert_flags(engine, flags))
    emit(
        "score_round_and_store",
        households=arguments.households,
        flagged=len(flags),
        simulate_seconds=simulate_s,
        score_seconds=score_s,
        store_seconds=store_s,
        total_seconds=score_s + store_s,
        peak_rss_mb=peak_rss_mb(),
    )
    monitor_s, result = seconds(lambda: monitor_rounds(predictor, county, last - 1, last, lang="zh"))
    report_s, report = seconds(result.report_html)
    emit(
        "monitor_two_rounds",
        households=arguments.households,
        monitor_seconds=monitor_s,
        report_seconds=report_s,
        total_seconds=monitor_s + report_s,
        report_mb=len(report.encode("utf-8")) / 1e6,
        peak_rss_mb=peak_rss_mb(),
    )


if __name__ == "__main__":
    main()
