"""`povrisk audit`: a household's recorded scores, and `audit retain` applying the retention policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from monitoring.audit import audit_record, household_audit, record_scores
from store.database import create_schema, make_engine

runner = CliRunner()


def _old_scores(url: str, household_id: str, count: int) -> None:
    engine = make_engine(url)
    create_schema(engine)
    long_ago = datetime.now(UTC) - timedelta(days=200)
    records = [
        audit_record(
            key_id="k",
            endpoint="/score",
            household_id=household_id,
            village_id="V1",
            round=1,
            score={"poverty_risk": 0.1 * number, "reasons": []},
            model_name="m",
            model_version="1",
        )
        | {"scored_at": long_ago + timedelta(minutes=number)}
        for number in range(count)
    ]
    record_scores(engine, records)
    engine.dispose()


def test_retain_compacts_what_the_policy_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'povrisk.db'}"
    monkeypatch.setenv("POVRISK_DB_URL", url)
    _old_scores(url, "H1", 5)
    dry = runner.invoke(app, ["audit", "retain", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout.splitlines()[-1])["rows_compacted"] == 4
    done = runner.invoke(app, ["audit", "retain"])
    assert done.exit_code == 0 and json.loads(done.stdout.splitlines()[-1])["rows_left"] == 1
    assert list(household_audit(make_engine(url), "H1")["compacted_scores"]) == [5]
    shown = runner.invoke(app, ["audit", "--household", "H1"])
    assert shown.exit_code == 0 and "compacted_scores" in shown.stdout.splitlines()[0]


def test_a_bad_retention_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POVRISK_DB_URL", f"sqlite:///{tmp_path / 'povrisk.db'}")
    bad = tmp_path / "retention.yaml"
    bad.write_text("version: x\naudit: {keep_every_score_days: -1}\n", encoding="utf-8")
    result = runner.invoke(app, ["audit", "retain", "--retention", str(bad)])
    assert result.exit_code == 1 and "keep_every_score_days" in result.output
    assert runner.invoke(app, ["audit"]).exit_code == 1
