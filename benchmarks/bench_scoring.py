"""One household scored and explained: in-process vs through the HTTP service, same models, same work.

Trains both models on a small county, registers and promotes them in a temporary MLflow store, then
measures (sequential, one request at a time):
- in-process: canonical household + members -> features -> both models -> TreeSHAP reasons -> category,
  the exact function the service calls (`serving.scoring.score_household`);
- the same through a real `bentoml serve` over loopback HTTP (POST /score).

Run: .venv/bin/python benchmarks/bench_scoring.py [--requests N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import httpx
from _common import emit, latencies_ms, latency_figures

from features.policy import load_policy
from serving.launch import running_service
from serving.schemas import household_from_survey
from serving.scoring import load_models, score_household
from survey.simulate import CountySettings, simulate_county
from survey.validate import conform
from training.tracking import log_and_register, promote
from training.train import train_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--households", type=int, default=3_000)
    arguments = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="povrisk-bench-"))
    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = tracking
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    policy = load_policy()
    county = conform(
        simulate_county(
            CountySettings(
                households=arguments.households, villages=12, rounds=4, seed=0, monte_carlo_draws=20
            )
        )
    )
    for task in ("poverty", "relapse"):
        log_and_register(train_task(county, task, policy, seed=0), policy)
        promote(task, policy)

    latest = int(county.households["round"].max())
    household_ids = county.households.loc[county.households["round"] == latest, "household_id"].head(50)
    households = [household_from_survey(county, str(h), latest) for h in household_ids]
    models = load_models(policy)
    cycle = iter(range(10**9))

    def in_process() -> None:
        score_household(models, households[next(cycle) % len(households)], lang="zh")

    emit(
        "score_one_household_in_process",
        **latency_figures(latencies_ms(in_process, repeats=arguments.requests)),
    )

    bodies = [
        {"request": {"household": h.model_dump(mode="json", exclude_none=True), "lang": "zh"}}
        for h in households
    ]
    with (
        running_service(tracking_uri=tracking, log=workdir / "serve.log") as base_url,
        httpx.Client() as client,
    ):

        def over_http() -> None:
            response = client.post(f"{base_url}/score", json=bodies[next(cycle) % len(bodies)], timeout=30)
            response.raise_for_status()

        emit(
            "score_one_household_http", **latency_figures(latencies_ms(over_http, repeats=arguments.requests))
        )


if __name__ == "__main__":
    main()
