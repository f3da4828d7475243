"""A province's round scored on a Dask cluster (`dask.distributed`), part by part, never in one process.

A round is cut into parts: a county's villages in order, in blocks of about `households_per_part`
households (`plan_parts`, from the register's village counts). Each part is one task on a worker
(`score_part`): it reads its households from the register (`store.register.read_register_villages`: every
household of its villages in the round, with their earlier rounds), scores them with the model versions
pinned for its county before the round started (the shared models, or the county's own where the policy
gives it models of its own: `training.tracking.scoring_versions`), the same for every part of the county
(features with history, both models, categories, causes, reasons for the flagged: `serving.batch.score_round`,
the single-machine path), writes its flags to the register's database in one idempotent bulk write
(`store.cases.upsert_flags`, keyed by county, household and round) and, with an output folder, its flag
list as one Parquet file named by the part. A part retried after its worker died writes nothing twice:
the flags it wrote are found unchanged, the file is written again whole.

The workers reach the register's database (`POVRISK_DB_URL`: PostgreSQL on a cluster) and the MLflow
registry (`MLFLOW_TRACKING_URI`) themselves: the client sends them addresses, never data.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from features.policy import load_policy
from serving.batch import score_round
from store.cases import upsert_flags
from store.parts import Part, prepare_worker, worker_engine
from store.register import read_register_villages
from survey.validate import conform

RETRIES = 3


PinnedVersions = tuple[tuple[str, str, str], ...]
"""(task, registered model name, version) of each model that scores a county, in task order."""
CountyVersions = tuple[tuple[str, PinnedVersions], ...]
"""(county, its pinned versions) for every county of a round."""


def pinned_versions(versions: Mapping[str, tuple[str, str]]) -> PinnedVersions:
    """`training.tracking.scoring_versions`' answer (task -> (name, version)) as a Job carries it."""
    return tuple((task, name, version) for task, (name, version) in sorted(versions.items()))


def pin_county_versions(policy: Any, counties: Sequence[str]) -> CountyVersions:
    """The model versions that score each county now (`training.tracking.scoring_versions_by_county`),
    each distinct set loaded once here so that a champion unfit for the policy (or incomplete) is refused
    before the cluster starts, not on every worker."""
    from training.tracking import load_predictor_versions, scoring_versions_by_county

    chosen = scoring_versions_by_county(policy, counties)
    pinned = tuple((county, pinned_versions(chosen[county])) for county in counties)
    for versions in sorted({versions for _, versions in pinned}):
        load_predictor_versions({task: (name, version) for task, name, version in versions}, policy)
    return pinned


def versions_of(county_versions: CountyVersions, county_id: str) -> PinnedVersions:
    """The models pinned for `county_id`; `KeyError` naming it when the job pinned none for it."""
    for county, versions in county_versions:
        if county == county_id:
            return versions
    raise KeyError(f"no models were pinned for county {county_id}")


def models_named(county_versions: CountyVersions) -> list[str]:
    """Each distinct model version of the round, as `name vN`, for a heading."""
    named = {f"{name} v{version}" for _, versions in county_versions for _, name, version in versions}
    return sorted(named)


@dataclass(frozen=True)
class Job:
    """What every part of a round needs, sent to the workers: addresses and names, no data."""

    round: int
    db_url: str
    tracking_uri: str
    versions: CountyVersions
    """The models of each county, pinned before the round: every part of a county is scored by the same."""
    policy_file: str | None = None
    lang: str = "zh"
    out: str | None = None
    """A folder the workers can write to (shared), for the flag list's parts; None writes none."""


@dataclass(frozen=True)
class PartScored:
    """What one part came to (small: the client gathers these, never flags)."""

    part: str
    county_id: str
    households: int
    flagged: int
    inserted: int
    updated: int
    unchanged: int
    seconds: float
    peak_rss_mb: float
    worker: str
    read_seconds: float = 0.0
    """Of `seconds`: reading the part from the register, scoring it, writing its flags (store and file)."""
    score_seconds: float = 0.0
    write_seconds: float = 0.0


def score_part(part: Part, job: Job) -> PartScored:
    """Score one part on this worker and write its flags (see the module docstring)."""
    started = time.perf_counter()
    prepare_worker()
    engine = worker_engine(job.db_url)
    predictor = _predictor(job.tracking_uri, versions_of(job.versions, part.county_id), job.policy_file)
    survey = conform(read_register_villages(engine, part.county_id, job.round, part.villages))
    read = time.perf_counter()
    flags = score_round(predictor, survey, job.round, lang=job.lang)  # type: ignore[arg-type]
    flags = flags.assign(county_id=part.county_id)
    scored = time.perf_counter()
    if job.out is not None:
        _write_part(flags, Path(job.out), part)
    written = upsert_flags(engine, flags)
    return PartScored(
        part=part.name,
        county_id=part.county_id,
        households=int((survey.households["round"] == job.round).sum()),
        flagged=len(flags),
        inserted=written.inserted,
        updated=written.updated,
        unchanged=written.unchanged,
        seconds=round(time.perf_counter() - started, 3),
        peak_rss_mb=round(high_water_mb(), 1),
        worker=f"{socket.gethostname()}:{os.getpid()}",
        read_seconds=round(read - started, 3),
        score_seconds=round(scored - read, 3),
        write_seconds=round(time.perf_counter() - scored, 3),
    )


def score_province(
    client: Any,
    parts: Sequence[Part],
    job: Job,
    progress: Callable[[PartScored], None] | None = None,
) -> list[PartScored]:
    """Every part scored on the cluster `client` is connected to (retried on another worker when one dies),
    in the order they finish; `progress` hears of each."""
    return run_parts(client, score_part, parts, job, f"povrisk-score-{job.round}", progress)


def run_parts(
    client: Any,
    work: Callable[[Part, Any], Any],
    parts: Sequence[Part],
    job: Any,
    name: str,
    progress: Callable[[Any], None] | None = None,
) -> list[Any]:
    """`work(part, job)` for every part on the cluster (retried on another worker when one dies), the results
    in the order they finish; `progress` hears of each. Task keys carry `name`, the part and the job's token:
    two jobs on one scheduler never share a task."""
    from dask.base import tokenize
    from distributed import as_completed

    token = tokenize(job)
    futures = client.map(
        work,
        list(parts),
        job=job,
        key=[f"{name}-{part.name}-{token}" for part in parts],
        retries=RETRIES,
        pure=False,
    )
    done = []
    for future in as_completed(futures):
        result = future.result()
        done.append(result)
        if progress is not None:
            progress(result)
    return done


def load_models(client: Any, job: Job) -> float:
    """Load the job's models on every worker of the cluster before the parts (each worker keeps them);
    the seconds it took."""
    started = time.perf_counter()
    for versions in sorted({versions for _, versions in job.versions}):
        client.run(_predictor, job.tracking_uri, versions, job.policy_file)
    return time.perf_counter() - started


def worker_memory_mb(client: Any) -> dict[str, float]:
    """Each worker process's resident memory now (MB), by worker address."""
    return {address: rss / 2**20 for address, rss in client.run(_resident_bytes).items()}


def high_water_mb() -> float:
    """This process's peak resident memory since it started (VmHWM, MB; 0 where /proc is absent). Unlike
    `ru_maxrss`, it does not carry over the memory of the process that spawned it (a local cluster's
    workers are spawned from the client, which may hold a county at the time)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return 0.0
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _resident_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _write_part(flags: Any, folder: Path, part: Part) -> None:
    """The part's flag list, written beside its place and renamed into it (a retry replaces it whole)."""
    target = folder / f"county_id={part.county_id}" / f"part-{part.name}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.writing")
    flags.drop(columns="county_id").to_parquet(staging, index=False)
    staging.replace(target)


@cache
def _predictor(tracking_uri: str, versions: PinnedVersions, policy_file: str | None) -> Any:
    """The pinned models of a county, loaded once per worker process (counties sharing them share one)."""
    import mlflow

    from training.tracking import load_predictor_versions

    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    mlflow.set_tracking_uri(tracking_uri)
    policy = load_policy(Path(policy_file)) if policy_file else load_policy()
    return load_predictor_versions({task: (name, version) for task, name, version in versions}, policy)


@contextmanager
def cluster(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A client of the scheduler at `scheduler` (a running cluster: `dask scheduler`, `dask worker`), or of
    a local cluster of `workers` processes on this machine (one thread each, on 127.0.0.1), closed after."""
    from distributed import Client, LocalCluster

    if (scheduler is None) == (workers is None):
        raise ValueError("give a scheduler's address or a number of local workers, one of them")
    if scheduler is not None:
        with Client(scheduler, timeout="30s") as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        ) as local,
        Client(local) as client,
    ):
        yield client
