"""The service's audit trail in the flag store's database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine

from monitoring import audit
from monitoring.audit import AuditWriter, audit_record, household_audit, record_scores


def _record(household_id: str = "H1", **score: Any) -> dict[str, Any]:
    return audit_record(
        key_id="cadre-li",
        endpoint="/score",
        household_id=household_id,
        village_id="V1",
        round=3,
        score={
            "poverty_risk": 0.7,
            "relapse_risk": 0.2,
            "risk_tier": "high",
            "category": "poor",
            "main_cause": "illness",
            "reasons": [
                {"indicator": "deprived_basic_medical", "value": 1.0, "contribution": 2.5, "sentence": "x"}
            ],
        }
        | score,
        model_name="povrisk-poverty;povrisk-relapse",
        model_version="3;2",
    )


def test_a_scored_household_can_be_read_back_for_an_appeal(engine: Engine) -> None:
    record_scores(engine, [_record("H1"), _record("H2"), _record("H1", poverty_risk=0.4)])
    trail = household_audit(engine, "H1")
    assert list(trail["poverty_risk"]) == [0.7, 0.4]
    first = trail.iloc[0]
    assert (first["key_id"], first["endpoint"], first["village_id"], first["round"]) == (
        "cadre-li",
        "/score",
        "V1",
        3,
    )
    assert first["model_version"] == "3;2" and first["main_cause"] == "illness"
    assert json.loads(first["reasons"]) == [
        {"indicator": "deprived_basic_medical", "value": 1.0, "contribution": 2.5}
    ]


def test_the_writer_writes_everything_queued_before_it_stops(engine: Engine) -> None:
    writer = AuditWriter(engine, batch_rows=7)
    for number in range(50):
        writer.submit([_record(f"H{number % 3}")])
    writer.close()
    assert writer.written == 50
    assert sum(len(household_audit(engine, f"H{number}")) for number in range(3)) == 50


def test_a_failed_write_is_retried_not_lost(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "RETRY_SECONDS", 0.01)
    real, failures = audit.record_scores, {"left": 2}

    def flaky(engine: Engine, records: Any) -> int:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database restarting")
        return real(engine, records)

    monkeypatch.setattr(audit, "record_scores", flaky)
    writer = AuditWriter(engine)
    writer.submit([_record("H9"), _record("H9")])
    writer.close()
    assert failures["left"] == 0 and len(household_audit(engine, "H9")) == 2
