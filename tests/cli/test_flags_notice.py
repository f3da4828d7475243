"""`povrisk flags notice`: the public-notice CSV of a round, from a real SQLite flag store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from store.cases import list_flags, set_status, upsert_flags
from store.database import create_schema, make_engine

runner = CliRunner()
NOTICE_HEADER = ["village", "household", "category", "main_cause", "status"]


def _flags(round_: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "household_id": ["h1", "h2", "h3"],
            "village_id": ["v1", "v1", "v2"],
            "round": [round_] * 3,
            "category": ["poor", "marginal", "sudden_hardship"],
            "category_rule": ["poverty risk 0.81 >= 0.60", "relapse risk 0.34 >= 0.20", "shock"],
            "poverty_risk": [0.81, 0.12, 0.30],
            "relapse_risk": [0.1, 0.34, 0.25],
            "risk_tier": ["high", "low", "medium"],
            "reasons_json": [json.dumps([{"indicator": "dangerous_house"}])] * 3,
            "model_name": ["povrisk-poverty;povrisk-relapse"] * 3,
            "model_version": ["1;1"] * 3,
            "main_cause": ["illness", None, "disaster"],
        }
    )


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A flag store with round 2 of one county, round 3 of another, and one field decision carrying a
    private note."""
    database = tmp_path / "flags.db"
    monkeypatch.setenv("POVRISK_DB_URL", f"sqlite:///{database}")
    engine = make_engine(f"sqlite:///{database}")
    create_schema(engine)
    upsert_flags(engine, _flags(2))
    # round 3 of another county (a household has one open case: this county's round-2 ones are open)
    upsert_flags(engine, _flags(3).drop(columns=["main_cause"]).assign(county_id="C2"))
    flags = list_flags(engine, round=2).set_index("household_id")
    set_status(engine, int(flags.loc["h1", "id"]), "verified", by="cadre Li", note="head Wang Fang, ID 1101")
    engine.dispose()
    return database


def _notice(*arguments: str) -> tuple[int, str]:
    result = runner.invoke(app, ["flags", "notice", *arguments])
    return result.exit_code, result.output


def test_notice_of_a_round_lists_its_flags_without_private_data(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "notices" / "round-2.csv"
    code, output = _notice("--round", "2", "--out", str(out))
    assert code == 0, output
    notice = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(notice.columns) == NOTICE_HEADER
    assert notice.values.tolist() == [
        ["v1", "h1", "poor", "illness", "verified"],
        ["v1", "h2", "marginal", "", "flagged"],
        ["v2", "h3", "sudden_hardship", "disaster", "flagged"],
    ]
    text = out.read_text()
    for private in ("Wang Fang", "1101", "cadre Li", "0.81", "dangerous_house"):
        assert private not in text
    assert [path.name for path in out.parent.iterdir()] == ["round-2.csv"]  # no temporary file left


def test_notice_of_one_village(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "v2.csv"
    assert _notice("--round", "3", "--village", "v2", "--out", str(out))[0] == 0
    notice = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert notice.values.tolist() == [["v2", "h3", "sudden_hardship", "", "flagged"]]


def test_notice_of_a_round_without_flags_writes_nothing(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "none.csv"
    code, output = _notice("--round", "9", "--out", str(out))
    assert code == 1
    assert "no flags in round 9" in output
    assert not out.exists()


def test_notice_replaces_an_old_file_whole(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "notice.csv"
    out.write_text("stale content that must not survive\n" * 100)
    assert _notice("--round", "2", "--village", "v1", "--out", str(out))[0] == 0
    assert "stale" not in out.read_text()
    assert len(pd.read_csv(out)) == 2
