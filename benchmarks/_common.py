"""Shared bits of the benchmarks: timing, percentiles, peak memory, one JSON line per measurement."""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
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
