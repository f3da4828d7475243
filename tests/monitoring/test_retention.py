"""Retention of the audit trail: every score kept for a while, then one row per household and day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from monitoring.audit import audit_record, household_audit, record_scores
from monitoring.retention import (
    AuditRetention,
    RetentionError,
    apply_retention,
    load_retention,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _score_at(household_id: str, at: datetime, risk: float) -> dict:
    record = audit_record(
        key_id="cadre-li",
        key_role="cadre",
        endpoint="/score",
        household_id=household_id,
        village_id="V1",
        round=3,
        score={"poverty_risk": risk, "reasons": []},
        model_name="povrisk-poverty;povrisk-relapse",
        model_version="3;2",
    )
    return record | {"scored_at": at}


def test_old_scores_are_compacted_to_the_last_of_each_day_and_recent_ones_kept(engine: Engine) -> None:
    old_day = NOW - timedelta(days=100)
    record_scores(
        engine,
        [
            *(_score_at("H1", old_day.replace(hour=hour), hour / 100) for hour in (8, 9, 17)),
            _score_at("H1", old_day + timedelta(days=1), 0.5),  # alone on its day: untouched
            _score_at("H2", old_day.replace(hour=10), 0.3),
            _score_at("H2", old_day.replace(hour=11), 0.4),
            *(_score_at("H1", NOW - timedelta(days=2, hours=hour), 0.6) for hour in range(3)),
        ],
    )
    policy = AuditRetention(keep_every_score_days=90)
    planned = apply_retention(engine, policy, now=NOW, dry_run=True)
    assert (planned.rows_compacted, planned.days_compacted, planned.rows_left) == (3, 1, 6)
    assert len(household_audit(engine, "H1")) == 7  # a dry run changes nothing
    done = apply_retention(engine, policy, now=NOW)
    assert done == planned
    first = household_audit(engine, "H1")
    assert list(first["poverty_risk"]) == [0.17, 0.5, 0.6, 0.6, 0.6]  # the day's last score is kept
    assert list(first["compacted_scores"].fillna(0).astype(int)) == [3, 0, 0, 0, 0]
    assert list(household_audit(engine, "H2")["compacted_scores"]) == [2]
    again = apply_retention(engine, policy, now=NOW)
    assert (again.rows_compacted, again.rows_deleted) == (0, 0)
    # a later compaction of a day already compacted adds up what each row stands for
    record_scores(engine, [_score_at("H2", old_day.replace(hour=12), 0.9)])
    apply_retention(engine, policy, now=NOW)
    assert list(household_audit(engine, "H2")["compacted_scores"]) == [3]


def test_compacted_rows_are_deleted_after_the_policy_says(engine: Engine) -> None:
    record_scores(
        engine,
        [
            _score_at("H1", NOW - timedelta(days=400), 0.1),
            _score_at("H1", NOW - timedelta(days=400, hours=-1), 0.2),
            _score_at("H1", NOW - timedelta(days=200), 0.3),
            _score_at("H1", NOW - timedelta(days=1), 0.4),
        ],
    )
    result = apply_retention(engine, AuditRetention(keep_every_score_days=90, delete_after_days=365), now=NOW)
    assert (result.rows_deleted, result.rows_compacted, result.rows_left) == (2, 0, 2)
    assert list(household_audit(engine, "H1")["poverty_risk"]) == [0.3, 0.4]


def test_the_shipped_policy_loads_and_a_bad_one_is_named(tmp_path: Path) -> None:
    shipped = load_retention()
    assert shipped.audit.keep_every_score_days >= 30 and shipped.version
    bad = tmp_path / "retention.yaml"
    bad.write_text(
        "version: x\naudit: {keep_every_score_days: 90, delete_after_days: 30}\n", encoding="utf-8"
    )
    with pytest.raises(RetentionError, match="delete_after_days must be longer"):
        load_retention(bad)
    bad.write_text("version: x\naudit: {keep_every_score_days: 0}\n", encoding="utf-8")
    with pytest.raises(RetentionError, match=r"audit\.keep_every_score_days"):
        load_retention(bad)
