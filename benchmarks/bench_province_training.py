"""A province's model trained on a Dask cluster (`povrisk train --engine dask`, `training.province`) against
one machine trained on the same households (`training.train.train_task` on the counties as one survey):
held-out metrics of both, the 95 % paired bootstrap interval of their difference (1,000 household
resamples), one machine's metrics under seeds 0, 1, 2 (the training's own noise), and the seconds each
took (issue 16: "held-out metrics within noise of a single-machine model trained on the same data").

A province (default 2 counties x 2,000 households, 3 rounds) is simulated and ingested into a SQLite
register; each task is trained on a local cluster of `--workers` worker processes, then on one machine.

Run: .venv/bin/python benchmarks/bench_province_training.py [--counties K] [--households N] [--workers W]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import emit

TASKS = ("poverty", "relapse")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counties", type=int, default=2)
    parser.add_argument("--households", type=int, default=2_000, help="households a county")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--part-households", type=int, default=1_000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="povrisk-bench-province-training-") as folder:
        register = f"sqlite:///{Path(folder) / 'register.db'}"
        counties = _province(Path(folder), register, arguments.counties, arguments.households)
        for task in TASKS:
            _compare(register, counties, task, arguments.workers, arguments.part_households)


def _province(root: Path, register: str, counties: int, households: int) -> list[str]:
    from store.database import create_schema, make_engine
    from store.register import ingest_survey
    from survey.province import ProvinceSettings, province_county_ids, read_province_county, write_province
    from survey.simulate import CountySettings

    county = CountySettings(households=households, villages=20, rounds=3, seed=0, monte_carlo_draws=10)
    write_province(ProvinceSettings(counties=counties, county=county), root / "province")
    engine = make_engine(register)
    create_schema(engine)
    names = province_county_ids(root / "province")
    for name in names:
        ingest_survey(engine, read_province_county(root / "province", name), name, source="bench", by="bench")
    engine.dispose()
    return names


def _compare(register: str, counties: list[str], task: str, workers: int, part_households: int) -> None:
    from features.policy import load_policy
    from serving.province import cluster
    from store.database import make_engine
    from store.register import register_rounds, village_sizes
    from training.bootstrap import paired_bootstrap
    from training.province import TrainJob, plan_row_parts, province_as_one_survey, train_province_task
    from training.train import HELD_OUT_RISK, LABEL, train_task

    policy = load_policy()
    engine = make_engine(register)
    held = register_rounds(engine)
    rounds_of = {str(c): sorted(int(r) for r in rows["round"]) for c, rows in held.groupby("county_id")}
    parts = plan_row_parts(rounds_of, lambda c, r: village_sizes(engine, c, r), task, part_households)  # type: ignore[arg-type]
    started = time.perf_counter()
    with cluster(workers=workers) as client:
        on_cluster = train_province_task(client, parts, TrainJob(task, register, 0, 5, 0.2), policy, "bench")  # type: ignore[arg-type]
    cluster_seconds = time.perf_counter() - started
    one_survey = province_as_one_survey(engine, counties)
    started = time.perf_counter()
    alone = train_task(one_survey, task, policy, seed=0)  # type: ignore[arg-type]
    alone_seconds = time.perf_counter() - started
    other_seeds = [train_task(one_survey, task, policy, seed=seed) for seed in (1, 2)]  # type: ignore[arg-type]
    engine.dispose()
    risks = alone.held_out[[HELD_OUT_RISK]].rename(columns={HELD_OUT_RISK: "alone"})
    both = on_cluster.held_out[[LABEL, HELD_OUT_RISK]].join(risks, how="inner", validate="one_to_one")
    intervals = paired_bootstrap(
        both[LABEL].to_numpy(),
        both[HELD_OUT_RISK].to_numpy(),
        both["alone"].to_numpy(),
        both.index.get_level_values("household_id").to_numpy(),
        replicates=1000,
    )
    keys = ("roc_auc", "pr_auc", "brier", "ece")
    emit(
        f"province_training_{task}",
        households=int(sum(held["households"][held["round"] == held["round"].max()])),
        held_out_rows=len(both),
        workers=workers,
        cluster_seconds=round(cluster_seconds, 1),
        one_machine_seconds=round(alone_seconds, 1),
        cluster_candidate=on_cluster.model.candidate,
        one_machine_candidate=alone.model.candidate,
        **{f"cluster_{key}": round(on_cluster.metrics[key], 4) for key in keys},
        **{f"one_machine_{key}": round(alone.metrics[key], 4) for key in keys},
        **{
            f"difference_{key}_95": [round(bound, 4) for bound in intervals[key]]
            for key in ("roc_auc", "brier")
        },
        **{
            f"one_machine_{key}_seeds_0_1_2": [round(one.metrics[key], 4) for one in (alone, *other_seeds)]
            for key in ("roc_auc", "brier")
        },
    )


if __name__ == "__main__":
    main()
