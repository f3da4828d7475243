"""Size of the audit trail and what retention does to it (issue 11): a trail of 900,000 scores (1,000
households scored 5 times a day for 180 days, the reasons of a real answer in each row) written to
SQLite and to PostgreSQL (when it answers at POVRISK_TEST_PG_URL, default 127.0.0.1:5432/test), then
`apply_retention` with the shipped policy (every score kept 90 days, then one row per household and
day). JSON lines: bytes per row (table and indexes), MB a minute at the service's measured top rate,
rows and bytes before and after, seconds to compact.

Run: .venv/bin/python benchmarks/bench_audit_retention.py [--households N] [--days D]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import emit, seconds
from sqlalchemy import Engine, create_engine, make_url, text

from monitoring.audit import audit_record, record_scores
from monitoring.retention import apply_retention, load_retention
from store.database import create_schema, make_engine

SCORES_PER_DAY = 5
SERVICE_HOUSEHOLDS_PER_S = 6_000
"""The service's top measured rate (README speed table: /score_batch, 2 workers), for MB a minute."""
REASONS = [
    {"indicator": "per_capita_net_income_to_line", "value": 0.83, "contribution": 1.92, "sentence": ""},
    {"indicator": "deprived_basic_medical", "value": 1.0, "contribution": 0.71, "sentence": ""},
    {"indicator": "dependency_ratio", "value": 1.5, "contribution": 0.33, "sentence": ""},
]


def fill(engine: Engine, households: int, days: int) -> int:
    start = datetime.now(UTC) - timedelta(days=days)
    total = 0
    for day in range(days):
        records = [
            audit_record(
                key_id="cadre-li",
                key_role="cadre",
                endpoint="/score_batch",
                household_id=f"H{household:06d}",
                village_id=f"V{household % 40:04d}",
                round=4,
                score={
                    "poverty_risk": 0.42,
                    "relapse_risk": 0.17,
                    "risk_tier": "medium",
                    "category": "marginal",
                    "main_cause": "illness",
                    "reasons": REASONS,
                },
                model_name="povrisk-poverty;povrisk-relapse",
                model_version="12;9",
            )
            | {"scored_at": start + timedelta(days=day, hours=8 + score)}
            for household in range(households)
            for score in range(SCORES_PER_DAY)
        ]
        total += record_scores(engine, records)
    return total


def table_bytes(engine: Engine, path: Path | None) -> int:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT pg_total_relation_size('score_audit')")).scalar_one())
    assert path is not None
    with engine.connect() as connection:
        connection.execute(text("VACUUM"))
    return path.stat().st_size


def measure(name: str, engine: Engine, path: Path | None, households: int, days: int) -> None:
    create_schema(engine)
    fill_s, rows = seconds(lambda: fill(engine, households, days))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM FULL score_audit"))
    before = table_bytes(engine, path)
    policy = load_retention()
    compact_s, result = seconds(lambda: apply_retention(engine, policy.audit))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM FULL score_audit"))
    after = table_bytes(engine, path)
    per_row = before / rows
    emit(
        f"audit_retention_{name}",
        rows_before=rows,
        rows_after=result.rows_left,
        bytes_per_row=round(per_row),
        mb_per_minute_at_service_top_rate=per_row * SERVICE_HOUSEHOLDS_PER_S * 60 / 1e6,
        mb_before=before / 1e6,
        mb_after=after / 1e6,
        insert_rows_per_s=rows / fill_s,
        compact_s=compact_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=180)
    arguments = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="povrisk-audit-"))
    path = folder / "audit.db"
    measure("sqlite", make_engine(f"sqlite:///{path}"), path, arguments.households, arguments.days)
    url = os.environ.get("POVRISK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"povrisk_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # no PostgreSQL here: the SQLite figures stand alone
        emit("audit_retention_postgresql", skipped=f"{type(error).__name__}")
        return
    try:
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        engine = make_engine(scoped.render_as_string(hide_password=False))
        measure("postgresql", engine, None, arguments.households, arguments.days)
        engine.dispose()
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
