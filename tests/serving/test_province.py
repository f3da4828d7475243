"""A province's round on a real Dask cluster (`serving.province`): a `dask scheduler` and two `dask worker`
processes on 127.0.0.1 score the register's counties part by part; the flags equal the single-machine
path's, household for household; a worker killed mid-round leaves every household scored once and no
flag written twice; a round scored again writes nothing."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine

from features.policy import CountyModels, Policy, load_policy
from serving.batch import score_round
from serving.province import Job, pin_county_versions, score_province
from store.cases import flag_history, list_flags
from store.database import create_schema, make_engine
from store.parts import Part, plan_parts
from store.register import ingest_survey, read_register, village_sizes
from survey.io import Survey
from survey.validate import conform
from tests.dask_cluster import dask_processes
from training.tracking import load_champion_predictor, log_and_register, promote
from training.train import TrainedTask

pytestmark = pytest.mark.integration

ROUND = 2
COUNTIES = ("C1", "C2")


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory, registry: str) -> Iterator[dict[str, Any]]:
    """A scheduler and two workers, each its own process (no nanny: a killed worker stays dead)."""
    environment = {**os.environ, "MLFLOW_TRACKING_URI": registry}
    with dask_processes(tmp_path_factory.mktemp("dask"), environment) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def register(county: Survey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('province') / 'register.db'}"
    engine = make_engine(url)
    create_schema(engine)
    for county_id in COUNTIES:  # two counties of the same households: the keys never collide
        ingest_survey(engine, county, county_id, source="test", by="test")
    engine.dispose()
    yield url


def _job(
    registry: str, register: str, out: Path, monkeypatch: pytest.MonkeyPatch, policy: Policy | None = None
) -> Job:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    return Job(
        round=ROUND,
        db_url=register,
        tracking_uri=registry,
        versions=pin_county_versions(policy or load_policy(), COUNTIES),
        out=str(out),
    )


def _parts(engine: Engine, households_per_part: int) -> list[Part]:
    return plan_parts({c: village_sizes(engine, c, ROUND) for c in COUNTIES}, households_per_part)


def _single_machine(engine: Engine, registry: str, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    predictor = load_champion_predictor()
    return score_round(predictor, conform(read_register(engine, "C1")), ROUND)


def _ordered(flags: pd.DataFrame) -> pd.DataFrame:
    return flags.sort_values(["village_id", "household_id"]).reset_index(drop=True)


def test_the_cluster_scores_a_province_as_one_machine_does(
    dask_cluster: dict[str, Any],
    register: str,
    registry: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from distributed import Client

    engine = make_engine(register)
    parts = _parts(engine, households_per_part=300)
    assert len(parts) >= 6
    job = _job(registry, register, tmp_path / "flags", monkeypatch)
    with Client(dask_cluster["address"]) as client:
        scored = score_province(client, parts, job)
    assert sorted(one.part for one in scored) == sorted(part.name for part in parts)
    assert len({one.worker for one in scored}) == 2, "both workers took parts"
    alone = _ordered(_single_machine(engine, registry, monkeypatch))
    for county_id in COUNTIES:
        written = pd.read_parquet(tmp_path / "flags" / f"county_id={county_id}")
        pd.testing.assert_frame_equal(_ordered(written)[alone.columns], alone)
        stored = list_flags(engine, county=county_id, round=ROUND)
        assert sorted(stored["household_id"]) == sorted(alone["household_id"])
    assert sum(one.inserted for one in scored) == 2 * len(alone)

    with Client(dask_cluster["address"]) as client:  # the same round again: nothing written twice
        again = score_province(client, parts, job)
    assert sum(one.inserted + one.updated for one in again) == 0
    engine.dispose()


def test_a_worker_killed_mid_round_leaves_every_household_scored_once(
    dask_cluster: dict[str, Any],
    register: str,
    registry: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from distributed import Client

    engine = make_engine(register)
    with engine.begin() as connection:  # a fresh round to write: the first test's flags are gone
        connection.exec_driver_sql("DELETE FROM flag_history")
        connection.exec_driver_sql("DELETE FROM flags")
    parts = _parts(engine, households_per_part=60)
    job = _job(registry, register, tmp_path / "flags", monkeypatch)
    survivor, victim = dask_cluster["workers"]
    finished: list[Any] = []

    def kill_after_the_first(one: Any) -> None:
        finished.append(one)
        if len(finished) == 2 and victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)

    with Client(dask_cluster["address"]) as client:
        scored = score_province(client, parts, job, progress=kill_after_the_first)
    deadline = time.monotonic() + 10
    while victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert victim.poll() is not None, "the worker was not killed"
    assert survivor.poll() is None
    assert sorted(one.part for one in scored) == sorted(part.name for part in parts)
    alone = _single_machine(engine, registry, monkeypatch)
    for county_id in COUNTIES:
        stored = list_flags(engine, county=county_id, round=ROUND)
        assert len(stored) == len(alone) and stored["household_id"].is_unique
    created = flag_history(engine)
    created = created[created["from_status"].isna()]
    assert len(created) == 2 * len(alone) and created["flag_id"].is_unique, "a flag was written twice"
    written = pd.concat(
        [pd.read_parquet(tmp_path / "flags" / f"county_id={county_id}") for county_id in COUNTIES]
    )
    assert len(written) == 2 * len(alone)
    engine.dispose()


def test_the_command_scores_a_county_on_a_local_cluster(
    register: str, registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("POVRISK_DB_URL", register)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    out = tmp_path / "flags"
    arguments = ["score", "--engine", "dask", "--county", "C2", "--round", str(ROUND), "--out", str(out)]
    result = CliRunner().invoke(app, [*arguments, "--workers", "1", "--part-households", "400"])
    assert result.exit_code == 0, result.output
    assert "Dask dashboard: http://127.0.0.1:" in result.output and "parts scored" in result.output
    assert "households flagged in round 2" in result.output
    assert list((out / "county_id=C2").glob("part-*.parquet"))
    refused = CliRunner().invoke(app, [*arguments])
    assert refused.exit_code == 1 and "--scheduler ADDRESS" in refused.output
    missing = CliRunner().invoke(app, [*arguments[:-4], "--round", "9", "--out", str(out), "--workers", "1"])
    assert missing.exit_code == 1 and "no round 9 of county C2" in missing.output
    a_file = tmp_path / "flags.csv"
    a_file.write_text("")
    on_a_file = CliRunner().invoke(app, [*arguments[:-2], "--out", str(a_file), "--workers", "1"])
    assert on_a_file.exit_code == 1 and "is a file" in on_a_file.output
    monkeypatch.setenv("POVRISK_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    empty = CliRunner().invoke(
        app, ["score", "--engine", "dask", "--round", "2", "--out", str(out), "--workers", "1"]
    )
    assert empty.exit_code == 1 and "holds no county" in empty.output


def test_a_county_of_its_own_model_is_scored_by_it_on_the_cluster(
    dask_cluster: dict[str, Any],
    register: str,
    registry: str,
    trained: dict[str, TrainedTask],
    policy: Policy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The policy gives C2 a model of its own (poverty only: relapse stays shared until C2 has one): C2's
    parts are scored by povrisk-poverty-C2 as the single-machine path scores C2, C1's by the shared models."""
    from distributed import Client

    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    own = policy.model_copy(update={"county_models": CountyModels(counties=("C2",))})
    log_and_register(trained["poverty"], policy, "county:C2", county="C2")
    assert promote("poverty", own, county="C2", force=True, force_reason="test")["promoted"]
    engine = make_engine(register)
    job = _job(registry, register, tmp_path / "flags", monkeypatch, own)
    with Client(dask_cluster["address"]) as client:
        score_province(client, _parts(engine, households_per_part=300), job)
    names = {
        county_id: set(pd.read_parquet(tmp_path / "flags" / f"county_id={county_id}")["model_name"])
        for county_id in COUNTIES
    }
    assert names["C1"] == {"povrisk-poverty;povrisk-relapse"}
    assert names["C2"] == {"povrisk-poverty-C2;povrisk-relapse"}
    alone = _ordered(
        score_round(load_champion_predictor(own, "C2"), conform(read_register(engine, "C2")), ROUND)
    )
    written = pd.read_parquet(tmp_path / "flags" / "county_id=C2")
    pd.testing.assert_frame_equal(_ordered(written)[alone.columns], alone)
    engine.dispose()
