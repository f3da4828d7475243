"""Shared bits of the benchmarks: timing, percentiles, peak memory, one JSON line per measurement."""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def emit(benchmark: str, **figures: Any) -> None:
    """Print one measurement as a JSON line: {"benchmark": NAME, ...figures with units in the keys}."""
    rounded = {key: round(value, 3) if isinstance(value, float) else value for key, value in figures.items()}
    print(json.dumps({"benchmark": benchmark, **rounded}), flush=True)


def seconds(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def latencies_ms(work: Callable[[], Any], *, repeats: int, warmup: int = 5) -> np.ndarray:
    for _ in range(warmup):
        work()
    samples = np.empty(repeats)
    for index in range(repeats):
        start = time.perf_counter()
        work()
        samples[index] = (time.perf_counter() - start) * 1000
    return samples


def latency_figures(samples_ms: np.ndarray) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(samples_ms, 50)),
        "p99_ms": float(np.percentile(samples_ms, 99)),
        "mean_ms": float(samples_ms.mean()),
        "requests": len(samples_ms),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def county_with_champions(workdir: Path, households: int) -> tuple[str, Any, Any]:
    """A simulated county (`households`, 12 villages, 4 rounds) whose two models are trained, registered
    and promoted in a new MLflow store in `workdir`, set as this process's tracking URI (and model cache).
    Returns the tracking URI, the conformed county and the policy."""
    from features.policy import load_policy
    from survey.simulate import CountySettings, simulate_county
    from survey.validate import conform
    from training.tracking import log_and_register, promote
    from training.train import train_task

    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    os.environ |= {
        "MLFLOW_TRACKING_URI": tracking,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "POVRISK_MODEL_CACHE": str(workdir / "cache"),
    }
    policy = load_policy()
    settings = CountySettings(households=households, villages=12, rounds=4, seed=0, monte_carlo_draws=20)
    county = conform(simulate_county(settings))
    for task in ("poverty", "relapse"):
        log_and_register(train_task(county, task, policy, seed=0), policy)
        promote(task, policy)
    return tracking, county, policy


def service_environment(workdir: Path, key_id: str, role: str) -> tuple[str, dict[str, str]]:
    """A new API key of `role` and the environment a service in `workdir` needs (keys, audit database,
    BentoML home)."""
    from serving.keys import add_key

    keys = workdir / "keys.yaml"
    key = add_key(keys, key_id, role)  # type: ignore[arg-type]
    return key, {
        "POVRISK_API_KEYS_FILE": str(keys),
        "POVRISK_DB_URL": f"sqlite:///{workdir / 'povrisk.db'}",
        "BENTOML_HOME": str(workdir / "bentoml"),
    }
