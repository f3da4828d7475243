"""The service's audit trail in the flag store's database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from monitoring import audit
from monitoring.audit import AuditWriter, audit_record, household_audit, record_scores, rejected_records
from store.database import create_schema, make_engine


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


def test_a_record_the_database_refuses_is_kept_aside_and_the_others_are_written(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A probe found one refused record stopping the whole trail (the same batch retried forever)."""
    writer = AuditWriter(engine, describe_household=lambda household: f"ref-of-{len(household)}")
    refused = {**_record("H-refused"), "key_id": None}  # NOT NULL: refused on every database
    writer.submit([_record("H1"), refused, _record("H2")])
    writer.submit([_record("H3")])
    assert writer.close() == 0
    assert writer.written == 3 and writer.rejected == 1
    assert [len(household_audit(engine, household)) for household in ("H1", "H2", "H3")] == [1, 1, 1]
    kept = rejected_records(engine)
    assert len(kept) == 1 and json.loads(kept.iloc[0]["record"])["household_id"] == "H-refused"
    assert "IntegrityError" in kept.iloc[0]["error"]
    assert "H-refused" not in caplog.text and "ref-of-9" in caplog.text  # the log names it by reference


@pytest.mark.integration
def test_a_nul_byte_postgresql_refuses_does_not_stop_the_trail(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    create_schema(engine)
    writer = AuditWriter(engine)
    writer.submit([_record("H\x00X"), *(_record(f"H{number}") for number in range(5))])
    writer.submit([_record("H-after")])
    assert writer.close() == 0
    assert writer.written == 6 and writer.rejected == 1
    kept = rejected_records(engine)
    assert json.loads(kept.iloc[0]["record"])["household_id"] == "H\x00X"  # kept whole, escaped
    assert "SQLSTATE" in kept.iloc[0]["error"] or "DataError" in kept.iloc[0]["error"]
    engine.dispose()


def _unreachable_engine(tmp_path: Path) -> Engine:
    """A database that does not answer: a SQLite file in a folder that does not exist (yet)."""
    return make_engine(f"sqlite:///{tmp_path / 'not-yet' / 'audit.db'}")


def test_the_queue_is_bounded_and_never_blocks_while_the_database_is_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "RETRY_SECONDS", 0.01)
    writer = AuditWriter(_unreachable_engine(tmp_path), capacity=5)
    assert writer.reserve(3)
    writer.submit([_record("H-secret") for _ in range(3)], reserved=3)
    assert writer.reserve(2) and not writer.reserve(1)  # full: the service answers 503
    writer.release(2)
    writer.submit([_record("H-secret"), _record("H-secret")])  # without a reservation: while room lasts
    with pytest.raises(audit.AuditFull):
        writer.submit([_record("H-secret")])
    deadline = time.monotonic() + 5
    while writer.state().database != "unreachable" and time.monotonic() < deadline:
        time.sleep(0.01)
    state = writer.state()
    assert (state.database, state.accepting, state.queued + state.reserved) == ("unreachable", False, 5)
    assert state.unreachable_since and "OperationalError" in (state.last_error or "")
    started = time.monotonic()
    assert writer.close(timeout=0.3) == 5  # reported, not silently dropped
    assert time.monotonic() - started < 3
    assert writer.state().unwritten_at_shutdown == 5
    assert "5 record(s) unwritten" in caplog.text and "H-secret" not in caplog.text
    assert len([line for line in caplog.text.splitlines() if "does not answer" in line]) == 1


def test_records_wait_while_the_database_is_down_and_are_written_when_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "RETRY_SECONDS", 0.01)
    monkeypatch.setattr(audit, "MAX_RETRY_SECONDS", 0.05)
    engine = _unreachable_engine(tmp_path)
    writer = AuditWriter(engine)
    writer.submit([_record("H7"), _record("H8")])
    time.sleep(0.2)
    assert writer.state().database == "unreachable" and writer.written == 0
    (tmp_path / "not-yet").mkdir()
    create_schema(engine)
    assert writer.close(timeout=5) == 0
    assert writer.written == 2 and writer.state().database == "reachable"
    assert len(household_audit(engine, "H7")) == 1
