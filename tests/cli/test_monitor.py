"""`povrisk monitor` end to end on a small simulated county: simulate -> train -> score -> set statuses ->
monitor, with the report, the tables and the MLflow run checked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from monitoring.categories import CATEGORIES
from monitoring.transitions import TRANSITIONS

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_stores")]

runner = CliRunner()


def run(*arguments: str) -> tuple[int, str]:
    result = runner.invoke(app, list(arguments))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def county(workplace: Path) -> Path:
    out = workplace / "county"
    arguments = ("--out", str(out), "--households", "600", "--villages", "8", "--rounds", "3", "--seed", "5")
    assert run("simulate", *arguments, "--draws", "20")[0] == 0
    return out


@pytest.fixture(scope="module")
def monitored(county: Path, workplace: Path) -> tuple[Path, dict]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workplace / 'mlflow.db'}")
        patch.setenv("POVRISK_DB_URL", f"sqlite:///{workplace / 'flags.db'}")
        for task in ("poverty", "relapse"):
            assert run("train", "--data", str(county), "--task", task)[0] == 0
            assert run("promote", "--task", task)[0] == 0
        for round_ in ("1", "2"):
            code, output = run(
                "score", "--data", str(county), "--round", round_, "--out", str(workplace / "f.csv")
            )
            assert code == 0, output
        code, output = run("flags", "list", "--status", "flagged")
        flag_id = output.splitlines()[1].split()[0]
        assert run("flags", "set", flag_id, "verified", "--by", "cadre Wang", "--note", "visited")[0] == 0
        out = workplace / "report"
        arguments = (
            "--data",
            str(county),
            "--previous",
            "1",
            "--current",
            "2",
            "--out",
            str(out),
            "--lang",
            "en",
        )
        result = runner.invoke(app, ["monitor", *arguments])
        assert result.exit_code == 0, result.output
        return out, json.loads(result.stdout.strip().splitlines()[-1])


def test_monitor_writes_the_tables_and_a_self_contained_report(monitored: tuple[Path, dict]) -> None:
    out, summary = monitored
    counts = pd.read_csv(out / "transitions-by-village.csv")
    assert counts["village_id"].iloc[-1] == "county"
    county = counts.iloc[-1]
    assert county["households"] == 600 == summary["households"]
    for name in TRANSITIONS:
        assert county[name] == counts[name].iloc[:-1].sum() == summary[name]
    assert county["entering_poverty"] > 0 and county["exiting_poverty"] > 0
    movements = pd.read_csv(out / "category-movements.csv").set_index("previous_category")
    assert list(movements.index) == list(CATEGORIES) == list(movements.columns)
    assert movements.to_numpy().sum() == 600
    report = (out / "report.html").read_text(encoding="utf-8")
    for section in (
        "County summary",
        "Transitions by village",
        "Movements",
        "Main causes",
        "Drift",
        "Flagged",
    ):
        assert section in report
    assert report.count("data:image/png;base64,") == 2
    assert "http://" not in report and "https://" not in report  # nothing fetched when opened
    drift = pd.read_csv(out / "drift.csv")
    assert {"feature", "psi", "drifted"} <= set(drift.columns)
    assert summary["drifted_features"] == int(drift["drifted"].sum())


def test_household_transitions_agree_with_the_categories(monitored: tuple[Path, dict]) -> None:
    out, _ = monitored
    transitions = pd.read_csv(out / "household-transitions.csv")
    newly = (transitions["previous_category"] == "not_monitored") & (
        transitions["current_category"] != "not_monitored"
    )
    assert (transitions["newly_monitored"] == newly.astype(int)).all()
    flags = pd.read_csv(out / "flags-round-2.csv")
    assert set(flags["household_id"]) == set(
        transitions.loc[transitions["current_category"] != "not_monitored", "household_id"]
    )


def test_the_report_is_logged_to_mlflow(monitored: tuple[Path, dict], workplace: Path) -> None:
    _, summary = monitored
    client = mlflow.MlflowClient(f"sqlite:///{workplace / 'mlflow.db'}")
    run_ = client.get_run(summary["mlflow_run_id"])
    assert run_.data.tags["kind"] == "monitoring" and run_.data.tags["current_round"] == "2"
    assert run_.data.metrics["missed"] == summary["missed"]
    names = {artifact.path for artifact in client.list_artifacts(run_.info.run_id, "monitoring")}
    assert "monitoring/report.html" in names


def test_rounds_must_exist_and_be_in_order(county: Path, tmp_path: Path) -> None:
    code, output = run(
        "monitor", "--data", str(county), "--previous", "1", "--current", "7", "--out", str(tmp_path)
    )
    assert code == 1 and "--current" in output
    code, output = run(
        "monitor", "--data", str(county), "--previous", "2", "--current", "1", "--out", str(tmp_path)
    )
    assert code == 1 and "earlier round" in " ".join(output.split())
    assert not (tmp_path / "report.html").exists()


def test_the_report_is_in_chinese_with_the_cases_of_each_village(
    monitored: tuple[Path, dict], county: Path, workplace: Path
) -> None:
    out = workplace / "report-zh"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workplace / 'mlflow.db'}")
        patch.setenv("POVRISK_DB_URL", f"sqlite:///{workplace / 'flags.db'}")
        arguments = ("--data", str(county), "--previous", "1", "--current", "2", "--out", str(out))
        code, output = run("monitor", *arguments, "--no-track")
    assert code == 0, output
    report = (out / "report.html").read_text(encoding="utf-8")
    for heading in (
        "全县概况",
        "各村两轮之间的变化",
        "监测类别的变动",
        "各村监测案件办理情况（案件库）",
        "本轮标记农户",
    ):
        assert heading in report
    assert '<html lang="zh-CN">' in report
    assert "待入户核实" in report and "已入户核实，待村民主评议" in report  # the store's statuses, in words
    assert "脱贫后返贫" in report and "边缘易致贫" in report
    text = re.sub(r'src="data:image/png;base64,[^"]+"', "", report)
    codes = set(re.findall(r"\b[a-z]+(?:_[a-z0-9]+)+\b", text))
    assert not codes, f"codes shown to a person: {sorted(codes)[:20]}"
    cells = re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", text)
    english = {cell for cell in cells if re.search(r"[a-z]{3,}", cell)}
    assert not english, f"untranslated cells: {sorted(english)[:20]}"
