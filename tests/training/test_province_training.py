"""Training on a province's rounds on a Dask cluster (`training.province`): the rows the workers build equal
the single-machine rows county by county; the model trained through `lightgbm.dask` on a real cluster
(a `dask scheduler` and two `dask worker` processes) has held-out metrics within the noise of the
single-machine model's on the same households; `povrisk train --engine dask` logs and registers it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import yaml

from features.policy import DEFAULT_POLICY_PATH, Policy
from store.database import create_schema, make_engine
from store.register import ingest_survey, read_register, register_rounds, village_sizes
from survey.province import ProvinceSettings, province_county_ids, read_province_county, write_province
from survey.simulate import CountySettings
from survey.validate import conform
from tests.dask_cluster import dask_processes
from training.bootstrap import paired_bootstrap
from training.province import (
    FOLD,
    RowPart,
    TrainJob,
    early_stopped_iterations,
    fold_of,
    household_draw,
    plan_row_parts,
    province_as_one_survey,
    province_data_hash,
    province_rows,
    staged_log_loss,
    summed_counts,
    train_province_task,
)
from training.train import HELD_OUT_RISK, LABEL, Task, task_data, train_task

# ----------------------------------------------------------------------------------------------- units


def test_a_households_draw_is_the_same_wherever_it_is_made_and_differs_by_purpose() -> None:
    counties = pd.Series(["C1", "C1", "C2"])
    households = pd.Series(["H1", "H2", "H1"])
    draw = household_draw(counties, households, seed=0, salt="fold")
    assert ((draw >= 0) & (draw < 1)).all()
    assert draw[0] != draw[2], "the same household number in another county is another household"
    again = household_draw(counties.iloc[[2, 0]], households.iloc[[2, 0]], seed=0, salt="fold")
    np.testing.assert_array_equal(again, draw[[2, 0]])
    assert not np.array_equal(draw, household_draw(counties, households, seed=1, salt="fold"))
    assert not np.array_equal(draw, household_draw(counties, households, seed=0, salt="sample"))


def test_folds_cover_the_range_about_evenly() -> None:
    households = pd.Series([f"H{number}" for number in range(5000)])
    folds = fold_of(pd.Series(["C1"] * 5000), households, seed=3, folds=5)
    counts = np.bincount(folds, minlength=5)
    assert set(folds) == {0, 1, 2, 3, 4} and counts.min() > 900


def test_early_stopping_keeps_the_best_iteration_before_the_patience_runs_out() -> None:
    curve = np.array([5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.0])
    assert early_stopped_iterations(curve, rounds=3) == 3, "stopped at 3 worse iterations in a row"
    assert early_stopped_iterations(curve, rounds=4) == 7, "the later best is reached first"
    assert early_stopped_iterations(np.array([1.0, 1.0, 1.0]), rounds=1) == 1, "equal is no improvement"


def test_the_staged_log_loss_is_the_loss_of_each_truncated_model() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + rng.normal(size=400) > 0).astype(np.float64)
    params = {"objective": "binary", "num_leaves": 7, "verbosity": -1, "seed": 0}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=12)
    staged = staged_log_loss(booster, X, y)
    for iteration in (1, 5, 12):
        margin = booster.predict(X, raw_score=True, num_iteration=iteration)
        expected = np.sum(np.logaddexp(0.0, margin) - y * margin)
        assert staged[iteration - 1] == pytest.approx(expected, rel=1e-9)


def test_parts_counts_add_up_and_none_stays_none() -> None:
    assert summed_counts([None, {"used": 2, "filled": 1}, {"used": 3}]) == {"used": 5, "filled": 1}
    assert summed_counts([None, None]) is None


def test_row_parts_are_the_latest_round_for_poverty_and_every_labelled_round_for_relapse() -> None:
    rounds = {"C1": [0, 1, 2], "C2": [1, 2]}

    def sizes(county: str, round_: int) -> dict[str, int]:
        return {"V1": 10, "V2": 10}

    poverty = plan_row_parts(rounds, sizes, "poverty", households_per_part=100)
    relapse = plan_row_parts(rounds, sizes, "relapse", households_per_part=10)
    assert [(p.part.county_id, p.round) for p in poverty] == [("C1", 2), ("C2", 2)]
    assert sorted({(p.part.county_id, p.round) for p in relapse}) == [("C1", 0), ("C1", 1), ("C2", 1)]
    assert len(relapse) == 6, "each round cut into a part per village"


# ---------------------------------------------------------------------------------------- on a cluster


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two counties of 900 households, 3 rounds, in a SQLite register."""
    folder = tmp_path_factory.mktemp("province")
    county = CountySettings(households=900, villages=10, rounds=3, seed=0, monte_carlo_draws=10)
    write_province(ProvinceSettings(counties=2, county=county), folder / "province")
    url = f"sqlite:///{folder / 'register.db'}"
    engine = make_engine(url)
    create_schema(engine)
    counties = province_county_ids(folder / "province")
    for county_id in counties:
        survey = read_province_county(folder / "province", county_id)
        ingest_survey(engine, survey, county_id, source="test", by="test")
    held = register_rounds(engine)
    rounds = {str(c): sorted(int(r) for r in rows["round"]) for c, rows in held.groupby("county_id")}
    yield {"url": url, "engine": engine, "counties": counties, "rounds": rounds, "held": held}
    engine.dispose()


@pytest.fixture(scope="module")
def cluster_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with dask_processes(tmp_path_factory.mktemp("dask"), dict(os.environ)) as cluster:
        yield cluster["address"]


def _parts(province: dict[str, Any], task: Task, households_per_part: int) -> list[RowPart]:
    engine = province["engine"]
    return plan_row_parts(
        province["rounds"], lambda c, r: village_sizes(engine, c, r), task, households_per_part
    )


def _job(province: dict[str, Any], task: Task) -> TrainJob:
    return TrainJob(task=task, db_url=province["url"], seed=0, folds=5, validation_share=0.2)


@pytest.mark.integration
@pytest.mark.parametrize("task", ["poverty", "relapse"])
def test_the_workers_build_the_rows_one_machine_builds(
    task: Task, province: dict[str, Any], cluster_address: str, policy: Policy
) -> None:
    from distributed import Client

    parts = _parts(province, task, households_per_part=150)
    assert len(parts) >= 10
    with Client(cluster_address) as client:
        data = province_rows(client, parts, _job(province, task))
        rows = data.frame.compute()
    assert data.rows == len(rows)
    for county_id in province["counties"]:
        alone = task_data(conform(read_register(province["engine"], county_id)), task, policy)
        mine = rows[rows["county_id"] == county_id].set_index(["household_id", "round"]).sort_index()
        expected = alone.X.sort_index()
        assert mine.index.tolist() == expected.index.tolist()
        pd.testing.assert_frame_equal(
            mine[list(expected.columns)],
            expected.astype(np.float64),
            check_names=False,
            check_index_type=False,
        )
        np.testing.assert_array_equal(mine[LABEL].to_numpy(), alone.label.sort_index().to_numpy())
        assert mine.groupby(level="household_id")[FOLD].nunique().max() == 1, "a household has one fold"


@pytest.mark.integration
def test_the_cluster_model_is_within_the_noise_of_one_machines(
    province: dict[str, Any], cluster_address: str, policy: Policy
) -> None:
    from distributed import Client

    with Client(cluster_address) as client:
        trained = train_province_task(
            client, _parts(province, "poverty", 400), _job(province, "poverty"), policy, "test"
        )
    one_survey = province_as_one_survey(province["engine"], province["counties"])
    # the noise: which held-out households (the bootstrap's interval) and the training's own randomness
    # (one machine's models under three seeds; the cluster's varies with where its parts lie)
    alone = [train_task(one_survey, "poverty", policy, seed=seed) for seed in (0, 1, 2)]
    assert len(trained.held_out) == len(alone[0].held_out), "every household held out once"
    assert trained.model.booster is not None and trained.model.booster.num_trees() > 5
    assert trained.metrics["roc_auc"] > 0.65, "the cluster's model learned something"
    alone_risk = alone[0].held_out[[HELD_OUT_RISK]].rename(columns={HELD_OUT_RISK: "alone"})
    both = trained.held_out[[LABEL, HELD_OUT_RISK]].join(alone_risk, how="inner", validate="one_to_one")
    assert len(both) == len(alone[0].held_out)
    intervals = paired_bootstrap(
        both[LABEL].to_numpy(),
        both[HELD_OUT_RISK].to_numpy(),
        both["alone"].to_numpy(),
        both.index.get_level_values("household_id").to_numpy(),
        replicates=500,
    )
    for metric in ("roc_auc", "brier"):
        low, high = intervals[metric]
        half_width = (high - low) / 2
        seeds = [one.metrics[metric] for one in alone]
        assert min(seeds) - half_width <= trained.metrics[metric] <= max(seeds) + half_width, (
            f"{metric}: cluster {trained.metrics[metric]:.4f}, one machine {seeds}, interval half-width "
            f"{half_width:.4f}"
        )
    importance = trained.model.explanatory_weight
    assert importance and abs(sum(importance.values()) - 1.0) < 1e-9
    assert set(trained.figures) == {"shap_summary.png", "calibration.png"}


@pytest.mark.integration
def test_the_command_trains_and_registers_a_province_model(
    province: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("POVRISK_DB_URL", province["url"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    shared, own = province["counties"]
    settings = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    settings["county_models"] = {"counties": [own]}
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    arguments = [
        "train",
        "--task",
        "relapse",
        "--engine",
        "dask",
        "--workers",
        "2",
        "--part-households",
        "500",
        "--policy",
        str(policy_file),
    ]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "Dask dashboard: http://127.0.0.1:" in result.output
    assert "2 model(s)" in result.output
    printed = [json.loads(line) for line in result.stdout.strip().splitlines()[-2:]]
    assert [one["model_name"] for one in printed] == ["povrisk-relapse", f"povrisk-relapse-{own}"]
    for one in printed:
        assert one["engine"] == "dask" and one["task"] == "relapse" and 0.5 < one["roc_auc"] <= 1.0
    client = MlflowClient()
    held = province["held"]
    for name, source, county in (
        ("povrisk-relapse", f"province:{shared}", shared),
        (f"povrisk-relapse-{own}", f"county:{own}", own),
    ):
        run = client.get_run(str(client.get_model_version_by_alias(name, "challenger").run_id))
        assert run.data.tags["source"] == source
        assert run.data.tags["data_hash"] == province_data_hash(held[held["county_id"] == county])
        assert json.loads(run.data.tags["trained_rounds"]) == [0, 1]

    refused = CliRunner().invoke(app, [*arguments[:5], "--data", str(tmp_path)])
    assert refused.exit_code == 1 and "not --data" in refused.output
    unknown = CliRunner().invoke(app, [*arguments, "--county", "C999"])
    assert unknown.exit_code == 1 and "no county C999" in unknown.output
