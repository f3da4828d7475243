"""A province's round scored on a Dask cluster vs one process (issue 16's goals: households per second per
worker >= 85 % of the single-process path; peak memory per worker flat, <= 2 GB, whatever the province's
size; the 1-worker vs 2-worker time).

A province (default 3 counties x 50,000 households, 3 rounds) is simulated, each county ingested into a
SQLite register; models trained on a small county are registered and promoted in a temporary MLflow store.
Round 2 is then scored three ways, the flag store emptied before each so that each writes every flag:
- `province_score_single`: one process, county by county, as `povrisk score --county C` does (the whole
  county read, scored, its flags written);
- `province_score_dask_1_worker` / `province_score_dask_2_workers`: `serving.province.score_province` on a
  local cluster of 1 and 2 worker processes (one thread each), parts of `--part-households` households.
  A worker's peak memory is its resident memory sampled twice a second (`peak_worker_rss_mb`) and, at
  the end, the kernel's high-water mark of each worker process (`peak_worker_hwm_mb`, VmHWM: the true
  peak, model loading included; not `ru_maxrss`, which a process spawned from this one inherits from it);
  `worker_rss_mb_by_tenth_of_parts`: the largest worker's resident memory when a tenth, two tenths, ...
  of the parts were done (whether a worker's memory stays flat over the round or grows part by part),
  and at the end before and after a garbage collection, `malloc_trim` and Arrow's `release_unused` (live
  memory vs memory freed but kept by the allocators), with the bytes of live Arrow buffers.
Speed per worker two ways: `per_worker_share_of_single` (households a second per worker over the single
process's, wall clock: on a 2-core machine the scheduler and this client share the cores with the
workers) and `cpu_share_of_single` (the single process's CPU seconds a household over the workers' CPU
seconds a household: what a part costs a worker against the same work in one process, whatever else the
machine is doing).

Worker memory alone, for provinces of several sizes (issue 16: flat, <= 2 GB, whatever the size):
`--only-cluster --workers-list 2` skips the single process and the 1-worker run.

Run: .venv/bin/python benchmarks/bench_province.py [--counties K] [--households N] [--part-households P]
     [--only-cluster] [--workers-list 1,2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import emit, peak_rss_mb

ROUND = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counties", type=int, default=3)
    parser.add_argument("--households", type=int, default=50_000, help="households a county")
    parser.add_argument("--villages", type=int, default=200, help="villages a county")
    parser.add_argument("--part-households", type=int, default=20_000)
    parser.add_argument(
        "--only-cluster", action="store_true", help="skip the single-process run (worker memory alone)"
    )
    parser.add_argument(
        "--workers-list", type=_counts, default=(1, 2), help="local clusters to run, e.g. 2 or 1,2"
    )
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="povrisk-bench-province-") as folder:
        root = Path(folder)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
        register = f"sqlite:///{root / 'register.db'}"
        counties = _province_in_register(root, register, arguments)
        _champions()
        single = None if arguments.only_cluster else _single_process(register, counties)
        for workers in arguments.workers_list:
            _on_cluster(register, counties, workers, arguments.part_households, single)


def _counts(text: str) -> tuple[int, ...]:
    """`2` or `1,2`: how many workers each local cluster has."""
    counts = tuple(int(one) for one in text.split(","))
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"worker counts must be positive integers, got {text!r}")
    return counts


def _megabytes(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def _province_in_register(root: Path, register: str, arguments: Any) -> list[str]:
    from store.database import create_schema, make_engine
    from store.register import ingest_survey
    from survey.province import ProvinceSettings, province_county_ids, read_province_county, write_province
    from survey.simulate import CountySettings

    county = CountySettings(
        households=arguments.households, villages=arguments.villages, rounds=3, seed=0, monte_carlo_draws=10
    )
    started = time.perf_counter()
    write_province(ProvinceSettings(counties=arguments.counties, county=county), root / "province")
    simulated = time.perf_counter() - started
    engine = make_engine(register)
    create_schema(engine)
    names = province_county_ids(root / "province")
    started = time.perf_counter()
    for name in names:
        ingest_survey(engine, read_province_county(root / "province", name), name, source="bench", by="bench")
    emit(
        "province_setup",
        counties=len(names),
        households=arguments.counties * arguments.households,
        simulate_seconds=round(simulated, 1),
        ingest_seconds=round(time.perf_counter() - started, 1),
        province_mb=round(_megabytes(root / "province"), 1),
        register_mb=round(Path(register.removeprefix("sqlite:///")).stat().st_size / 2**20, 1),
    )
    engine.dispose()
    return names


def _champions() -> None:
    from features.policy import load_policy
    from survey.simulate import CountySettings, simulate_county
    from survey.validate import conform
    from training.tracking import log_and_register, promote
    from training.train import train_task

    policy = load_policy()
    small = conform(simulate_county(CountySettings(households=5_000, villages=20, rounds=4, seed=1)))
    for task in ("poverty", "relapse"):
        log_and_register(train_task(small, task, policy, seed=0), policy)
        promote(task, policy)


def _emptied(register: str) -> None:
    from store.database import make_engine

    engine = make_engine(register)
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM flag_history")
        connection.exec_driver_sql("DELETE FROM flags")
    engine.dispose()


def _single_process(register: str, counties: list[str]) -> tuple[float, float]:
    """The round county by county in this process; (households a second, CPU seconds a household)."""
    from serving.batch import score_round
    from store.cases import upsert_flags
    from store.database import make_engine
    from store.register import read_register
    from survey.validate import conform
    from training.tracking import load_champion_predictor

    _emptied(register)
    engine = make_engine(register)
    predictor = load_champion_predictor()
    households = flagged = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for name in counties:
        survey = conform(read_register(engine, name))
        flags = score_round(predictor, survey, ROUND)
        upsert_flags(engine, flags.assign(county_id=name))
        households += int((survey.households["round"] == ROUND).sum())
        flagged += len(flags)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    emit(
        "province_score_single",
        households=households,
        flagged=flagged,
        seconds=round(seconds, 2),
        households_per_s=round(households / seconds, 1),
        cpu_seconds=round(cpu, 2),
        cpu_ms_per_household=round(1000 * cpu / households, 4),
        peak_rss_mb=peak_rss_mb(),
    )
    engine.dispose()
    return households / seconds, cpu / households


def _on_cluster(
    register: str,
    counties: list[str],
    workers: int,
    part_households: int,
    single: tuple[float, float] | None,
) -> None:
    from features.policy import load_policy
    from serving.province import (
        Job,
        cluster,
        high_water_mb,
        load_models,
        pin_county_versions,
        score_province,
        worker_memory_mb,
    )
    from store.database import make_engine
    from store.parts import plan_parts
    from store.register import village_sizes
    from training.tracking import tracking_uri

    _emptied(register)
    engine = make_engine(register)
    parts = plan_parts({name: village_sizes(engine, name, ROUND) for name in counties}, part_households)
    engine.dispose()
    job = Job(ROUND, register, tracking_uri(), pin_county_versions(load_policy(), counties))
    with cluster(workers=workers) as client:
        load_s = load_models(client, job)
        peaks: dict[str, float] = {}
        sampling = threading.Event()

        def sample() -> None:  # every worker's resident memory, twice a second, while the parts run
            while not sampling.wait(0.5):
                for address, megabytes in worker_memory_mb(client).items():
                    peaks[address] = max(peaks.get(address, 0.0), megabytes)

        sampler = threading.Thread(target=sample, daemon=True)
        cpu_before = client.run(_cpu_seconds)
        started = time.perf_counter()
        sampler.start()
        after_parts: list[float] = []  # the largest worker's memory as each part finishes: flat, or growing?
        scored = score_province(
            client, parts, job, lambda _: after_parts.append(max(worker_memory_mb(client).values()))
        )
        seconds = time.perf_counter() - started
        cpu_after = client.run(_cpu_seconds)
        sampling.set()
        sampler.join()
        high_water = client.run(high_water_mb)
        at_end = max(worker_memory_mb(client).values())
        trimmed = max(client.run(_trimmed_rss_mb).values())
        arrow = max(client.run(_arrow_allocated_mb).values())
    households = sum(one.households for one in scored)
    rate = households / seconds
    cpu = sum(cpu_after[address] - cpu_before.get(address, 0.0) for address in cpu_after)
    compared = (
        {}
        if single is None
        else {
            "per_worker_share_of_single": round(rate / workers / single[0], 3),
            "cpu_share_of_single": round(single[1] / (cpu / households), 3),
        }
    )
    emit(
        f"province_score_dask_{workers}_worker{'s' if workers > 1 else ''}",
        households=households,
        parts=len(parts),
        part_households=part_households,
        seconds=round(seconds, 2),
        households_per_s=round(rate, 1),
        households_per_s_per_worker=round(rate / workers, 1),
        workers_cpu_seconds=round(cpu, 2),
        cpu_ms_per_household=round(1000 * cpu / households, 4),
        **compared,
        model_load_seconds=round(load_s, 2),
        peak_worker_rss_mb=round(max(peaks.values(), default=0.0), 1),
        peak_worker_hwm_mb=round(max(high_water.values(), default=0.0), 1),
        worker_rss_mb_by_tenth_of_parts=[
            round(after_parts[max(len(after_parts) * k // 10, 1) - 1]) for k in range(1, 11)
        ],
        worker_rss_mb_at_end=round(at_end),
        worker_rss_mb_after_gc_and_trim=round(trimmed),
        worker_arrow_allocated_mb=round(arrow),
        workers_used=len({one.worker for one in scored}),
    )


def _cpu_seconds() -> float:
    """This process's CPU time so far (user + system, all its threads)."""
    import psutil

    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def _trimmed_rss_mb() -> float:
    """This process's resident memory after a garbage collection, glibc's `malloc_trim` and Arrow's
    pool releasing its unused memory (free memory handed back to the system): what is left is live, what
    went was freed memory the allocators kept."""
    import ctypes
    import gc

    import psutil
    import pyarrow

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    pyarrow.default_memory_pool().release_unused()
    return float(psutil.Process().memory_info().rss / 2**20)


def _arrow_allocated_mb() -> float:
    """Memory held by live Arrow buffers in this process (pandas' `str` columns live there)."""
    import pyarrow

    return float(pyarrow.total_allocated_bytes() / 2**20)


if __name__ == "__main__":
    main()
