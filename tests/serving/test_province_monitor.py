"""`povrisk monitor` for a province on a real Dask cluster (`serving.province_monitor`): a `dask scheduler`
and two `dask worker` processes on 127.0.0.1 compare two rounds of two counties part by part; county by
county the household transitions, the counts by village and the category movements equal the single
machine's (`serving.monitor.monitor_rounds`), with households that left the panel, joined it, moved to a
village of another part, and a village that emptied; the province row is the counties' sum. Then the
command end to end on a local cluster, and its refusals."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from features.policy import load_policy
from models.predictor import RiskPredictor
from monitoring.categories import CATEGORIES
from monitoring.transitions import COUNTY, TRANSITIONS
from serving.batch import scored_round
from serving.monitor import MonitorResult, model_features, monitor_rounds
from serving.province import pin_county_versions
from serving.province_monitor import (
    FLAGGED,
    PROVINCE,
    MonitorJob,
    ProvinceMonitor,
    departed,
    feature_drift,
    monitor_province,
    no_facts,
    owned_previously,
    plan_monitor_parts,
    province_report_html,
    reference_edges,
    round_bins,
    training_references,
)
from store.database import create_schema, make_engine
from store.parts import Part
from store.register import ingest_survey, read_register, village_sizes
from survey.io import Survey
from survey.validate import conform
from tests.serving.test_province import dask_cluster  # noqa: F401  (the real cluster fixture)
from training.tracking import load_champion_predictor

pytestmark = pytest.mark.integration

PREVIOUS, CURRENT = 1, 2
COUNTY_VILLAGES = {"C1": ("V0001", "V0002", "V0003"), "C2": ("V0004", "V0005", "V0006")}
PART_HOUSEHOLDS = 100  # about one village a part: movers cross parts


# ------------------------------------------------------------------------------------------ pure parts


def test_parts_cover_the_villages_of_either_round() -> None:
    current = {"C1": {"V1": 80, "V3": 90}}
    previous = {"C1": {"V1": 70, "V2": 60, "V3": 90}, "C2": {"V9": 10}}
    parts = plan_monitor_parts(current, previous, households_per_part=100)
    assert [(p.county_id, p.villages, p.households) for p in parts] == [
        ("C1", ("V1",), 80),
        ("C1", ("V2",), 60),  # emptied since the previous round: its leavers are counted here
        ("C1", ("V3",), 90),
        ("C2", ("V9",), 10),
    ]


def _facts(villages: dict[str, str]) -> pd.DataFrame:
    frame = no_facts()
    rows = pd.DataFrame(
        {
            "village_id": list(villages.values()),
            "poor": 0.0,
            "identified": 0.0,
            "exited": 0.0,
            "category": "not_monitored",
        },
        index=pd.Index(list(villages), name="household_id"),
    )
    return pd.concat([frame, rows])


def test_a_part_counts_its_residents_and_its_leavers_not_those_who_moved_away() -> None:
    before = _facts({"stayed": "V1", "moved_in": "V7", "moved_away": "V1", "left": "V2", "elsewhere": "V8"})
    now = pd.Index(["stayed", "moved_in", "joined"], name="household_id")
    gone = departed(before, now, ("V1", "V2"))
    assert sorted(gone) == ["left", "moved_away"]
    owned = owned_previously(before, now, gone, elsewhere={"moved_away"})
    assert sorted(owned) == ["left", "moved_in", "stayed"]


# ------------------------------------------------------------------------------------ the province


def _rows_in(table: pd.DataFrame | None, kept: pd.MultiIndex) -> pd.DataFrame | None:
    """The rows of a (household_id, round) table whose household and round are among `kept`."""
    if table is None:
        return None
    keys = pd.MultiIndex.from_arrays([table["household_id"], table["round"].astype(np.int64)])
    return table[keys.isin(kept)].reset_index(drop=True)


def _county_of(county: Survey, villages: tuple[str, ...], emptied: str | None = None) -> Survey:
    """The simulated households of `villages`, changed the way a real panel changes by the current round:
    a few leave it, a few join it (no earlier round), a few move to the next village (another part), and
    the households of `emptied` all move to the next village or leave."""
    households = county.households
    ids = sorted(households.loc[households["village_id"].isin(villages), "household_id"].unique())
    leavers, joiners, movers = set(ids[0:12]), set(ids[12:20]), set(ids[20:35])
    rounds, who = households["round"].astype(np.int64), households["household_id"]
    keep = (
        who.isin(ids) & ~(who.isin(leavers) & (rounds == CURRENT)) & ~(who.isin(joiners) & (rounds < CURRENT))
    )
    changed = households[keep].reset_index(drop=True)
    now = changed["round"].astype(np.int64) == CURRENT
    following = dict(zip(villages, (*villages[1:], villages[0]), strict=True))
    moving = now & changed["household_id"].isin(movers)
    changed.loc[moving, "village_id"] = changed.loc[moving, "village_id"].map(following)
    if emptied is not None:
        there = changed.index[now & (changed["village_id"] == emptied)]
        changed.loc[there[::2], "village_id"] = following[emptied]
        changed = changed.drop(index=there[1::2]).reset_index(drop=True)
    kept = pd.MultiIndex.from_arrays([changed["household_id"], changed["round"].astype(np.int64)])
    places = county.villages
    return Survey(
        households=changed,
        members=_rows_in(county.members, kept),
        villages=None
        if places is None
        else places[places["village_id"].isin(villages)].reset_index(drop=True),
        truth=_rows_in(county.truth, kept),
        verification=_rows_in(county.verification, kept),
    )


@pytest.fixture(scope="module")
def province(county: Survey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A register of two counties, the second with a village emptied in the current round."""
    url = f"sqlite:///{tmp_path_factory.mktemp('province-monitor') / 'register.db'}"
    engine = make_engine(url)
    create_schema(engine)
    for county_id, villages in COUNTY_VILLAGES.items():
        emptied = villages[-1] if county_id == "C2" else None
        ingest_survey(engine, _county_of(county, villages, emptied), county_id, source="test", by="test")
    engine.dispose()
    yield url


@pytest.fixture(scope="module")
def single_machine(province: str, registry: str) -> dict[str, MonitorResult]:
    """`monitor_rounds` on each whole county, with the champions."""
    engine = make_engine(province)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", registry)
        predictor = load_champion_predictor()
        results = {
            county_id: monitor_rounds(predictor, conform(read_register(engine, county_id)), PREVIOUS, CURRENT)
            for county_id in COUNTY_VILLAGES
        }
    engine.dispose()
    return results


def _parts(province: str) -> list[Part]:
    engine = make_engine(province)
    sizes = {r: {c: village_sizes(engine, c, r) for c in COUNTY_VILLAGES} for r in (PREVIOUS, CURRENT)}
    engine.dispose()
    return plan_monitor_parts(sizes[CURRENT], sizes[PREVIOUS], PART_HOUSEHOLDS)


@dataclass(frozen=True)
class Compared:
    """The province compared on the real cluster once, for the tests below to read."""

    result: ProvinceMonitor
    parts: list[Part]
    job: MonitorJob
    predictor: RiskPredictor
    out: Path


@pytest.fixture(scope="module")
def compared(
    dask_cluster: dict[str, Any],  # noqa: F811
    province: str,
    registry: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Compared:
    from distributed import Client

    out = tmp_path_factory.mktemp("compared") / "transitions"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", registry)
        versions = pin_county_versions(load_policy(), list(COUNTY_VILLAGES))
        predictor = load_champion_predictor()
        bins = predictor.policy.drift.bins
        job = MonitorJob(
            previous=PREVIOUS,
            current=CURRENT,
            db_url=province,
            tracking_uri=registry,
            versions=versions,
            out=str(out),
            drift_edges=reference_edges(training_references(versions), model_features(predictor), bins),
        )
        parts = _parts(province)
        with Client(dask_cluster["address"]) as client:
            result = monitor_province(client, parts, job)
    return Compared(result, parts, job, predictor, out)


def test_the_cluster_compares_a_province_as_one_machine_does_county_by_county(
    compared: Compared, single_machine: dict[str, MonitorResult]
) -> None:
    result, parts = compared.result, compared.parts
    emptied = COUNTY_VILLAGES["C2"][-1]
    assert any(emptied in part.villages for part in parts), "a village emptied since has a part"
    assert len(parts) >= 5
    assert result.summary["parts"] == len(parts) and result.summary["counties"] == 2
    for county_id, alone in single_machine.items():
        written = pd.read_parquet(compared.out / f"county_id={county_id}")
        assert written["household_id"].is_unique, "a household counted twice"
        mine = written.set_index("household_id").sort_index()
        expected = alone.transitions.sort_index()
        pd.testing.assert_frame_equal(
            mine[expected.columns], expected, check_dtype=False, check_index_type=False
        )
        counts = result.counts_by_village
        by_village = counts[counts.index.get_level_values("county_id") == county_id].droplevel("county_id")
        pd.testing.assert_frame_equal(by_village.drop(columns=FLAGGED), alone.counts.drop(index=COUNTY))
        pd.testing.assert_frame_equal(
            result.movements_by_county[county_id], alone.movements, check_names=False
        )
        row = result.counts_by_county.loc[county_id]
        assert row["households"] == alone.summary["households"]
        assert row[FLAGGED] == alone.summary["flagged_now"]
        assert all(row[name] == alone.summary[name] for name in TRANSITIONS)
    counties = result.counts_by_county.drop(index=PROVINCE)
    assert (result.counts_by_county.loc[PROVINCE] == counties.sum()).all()
    assert result.movements.to_numpy().sum() == result.summary["households"]
    assert list(result.movements.index) == list(CATEGORIES)
    assert result.summary["households"] == sum(one.summary["households"] for one in single_machine.values())
    assert sum(result.summary[name] for name in TRANSITIONS) > 0


def test_the_drift_by_county_is_the_whole_county_s_binned_drift(compared: Compared, province: str) -> None:
    result, job, predictor = compared.result, compared.job, compared.predictor
    assert len(job.drift_edges) > 10
    assert result.drift is not None and result.score_drift is not None
    engine = make_engine(province)
    survey = conform(read_register(engine, "C1"))
    engine.dispose()
    before, now = (
        round_bins(scored_round(predictor, survey, r, explain=False), job.drift_edges)
        for r in (PREVIOUS, CURRENT)
    )
    whole = feature_drift("C1", before, now, predictor.policy.drift.psi_threshold)
    mine = result.drift[result.drift["county_id"] == "C1"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, whole)
    assert set(result.drift["county_id"]) == {"C1", "C2", PROVINCE}
    assert result.summary["drifted_features"] == int(
        result.drift.loc[result.drift["county_id"] == PROVINCE, "drifted"].sum()
    )


def test_the_province_report_is_in_chinese_without_a_code(compared: Compared) -> None:
    report = province_report_html(compared.result, "zh")
    assert '<html lang="zh-CN">' in report
    for heading in ("全省概况", "各县两轮之间的变化", "监测类别的变动", "全省", "脱贫后返贫", "边缘易致贫"):
        assert heading in report
    text = re.sub(r'src="data:image/png;base64,[^"]+"', "", report)
    codes = set(re.findall(r"\b[a-z]+(?:_[a-z0-9]+)+\b", text))
    assert not codes, f"codes shown to a person: {sorted(codes)[:20]}"
    cells = re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", text)
    english = {cell for cell in cells if re.search(r"[a-z]{3,}", cell)}
    assert not english, f"untranslated cells: {sorted(english)[:20]}"
    assert "http://" not in report and "https://" not in report


# --------------------------------------------------------------------------------------- the command


def test_the_command_compares_a_province_on_a_local_cluster(
    province: str, registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("POVRISK_DB_URL", province)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    out = tmp_path / "province"
    arguments = ["monitor", "--engine", "dask", "--previous", str(PREVIOUS), "--current", str(CURRENT)]
    result = CliRunner().invoke(
        app, [*arguments, "--workers", "2", "--out", str(out), "--part-households", "400", "--lang", "en"]
    )
    assert result.exit_code == 0, result.output
    assert "Dask dashboard: http://127.0.0.1:" in result.output and "parts compared" in result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["counties"] == 2 and summary["mlflow_run_id"]
    logged = MlflowClient(registry).list_artifacts(summary["mlflow_run_id"], "monitoring")
    assert {"monitoring/report.html", "monitoring/transitions-by-county.csv"} <= {one.path for one in logged}
    by_county = pd.read_csv(out / "transitions-by-county.csv")
    assert list(by_county["county_id"]) == ["C1", "C2", PROVINCE]
    assert (
        by_county["households"].iloc[-1] == summary["households"] == by_county["households"].iloc[:-1].sum()
    )
    by_village = pd.read_csv(out / "transitions-by-village.csv")
    assert by_village.groupby("county_id")["households"].sum().to_dict() == dict(
        zip(by_county["county_id"].iloc[:-1], by_county["households"].iloc[:-1], strict=True)
    )
    assert (
        pd.read_csv(out / "category-movements.csv").set_index("previous_category").to_numpy().sum()
        == summary["households"]
    )
    assert set(pd.read_csv(out / "category-movements-by-county.csv")["county_id"]) == {"C1", "C2"}
    written = pd.concat(
        pd.read_parquet(path)
        for path in sorted((out / "household-transitions").glob("county_id=*/part-*.parquet"))
    )
    assert len(written) == summary["households"]
    assert not [path for path in out.iterdir() if path.name.startswith(".")], "staging left behind"
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Province summary" in report and "Transitions by county" in report and "Drift" in report


def test_bad_input_is_one_line_and_writes_nothing(
    province: str, registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("POVRISK_DB_URL", province)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    out = tmp_path / "nothing"
    base = ["monitor", "--engine", "dask", "--workers", "1", "--out", str(out)]
    cases = {
        "no county C9": [*base, "--previous", "1", "--current", "2", "--county", "C1,C9"],
        "earlier round": [*base, "--previous", "2", "--current", "1"],
        "no round 7 of county C1": [*base, "--previous", "1", "--current", "7"],
        "not --data": [*base, "--previous", "1", "--current", "2", "--data", str(tmp_path)],
        "--scheduler ADDRESS": ["monitor", "--engine", "dask", "--previous", "1", "--current", "2"],
    }
    for said, arguments in cases.items():
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code == 1, (said, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and said in lines[0], (said, result.output)
    assert not out.exists()
