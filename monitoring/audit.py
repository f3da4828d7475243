"""The audit trail of the scoring service, in the flag store's database (`score_audit`).

Every household the service scores is recorded: when, by which API key (its id, never the key), through
which endpoint, the household, village and round, the models' names and versions, both risks, tier,
category, main cause and the top reasons, so that a score can be explained when it is appealed or
reviewed in public. Rows are only ever inserted. Names and ID numbers never reach this table: the
service drops them when it reads a request.

`AuditWriter` takes records from request threads and writes them in batches on a thread of its own, so
that a request does not wait for the database; `close` writes everything still queued. A write that
fails is logged and retried; when the queue is full, `submit` waits (back-pressure) rather than drop a
record.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, insert, select

from monitoring.store import ScoreAudit

logger = logging.getLogger(__name__)

AUDIT_FIELDS = (
    "key_id",
    "endpoint",
    "household_id",
    "village_id",
    "round",
    "poverty_risk",
    "relapse_risk",
    "risk_tier",
    "category",
    "main_cause",
    "reasons",
    "model_name",
    "model_version",
)
BATCH_ROWS = 500
BATCH_SECONDS = 0.05
"""How long the writer gathers records before a write. Small writes often: a 0.5 s batch made the
occasional request that meets a write slower (single-household p99 at concurrency 1: 17.9-18.6 ms against
16.1-16.7 ms with 0.05 s, `make bench`-style runs on 2 shared cores)."""
QUEUE_ROWS = 100_000
RETRY_SECONDS = 1.0


def audit_record(
    *,
    key_id: str,
    endpoint: str,
    household_id: str,
    village_id: str,
    round: int,
    score: Mapping[str, Any],
    model_name: str,
    model_version: str,
) -> dict[str, Any]:
    """One audit row from a scoring answer (`score`: poverty_risk, relapse_risk, risk_tier, category,
    main_cause code, reasons as dicts with indicator, value, contribution)."""
    reasons = [
        {"indicator": r["indicator"], "value": r["value"], "contribution": r["contribution"]}
        for r in score.get("reasons", [])
    ]
    return {
        "scored_at": datetime.now(UTC),
        "key_id": key_id,
        "endpoint": endpoint,
        "household_id": household_id,
        "village_id": village_id,
        "round": int(round),
        "poverty_risk": score.get("poverty_risk"),
        "relapse_risk": score.get("relapse_risk"),
        "risk_tier": score.get("risk_tier"),
        "category": score.get("category"),
        "main_cause": score.get("main_cause"),
        "reasons": json.dumps(reasons, ensure_ascii=False),
        "model_name": model_name,
        "model_version": model_version,
    }


def record_scores(engine: Engine, records: Sequence[Mapping[str, Any]]) -> int:
    """Insert audit rows in one transaction; returns how many."""
    if not records:
        return 0
    with engine.begin() as connection:
        connection.execute(insert(ScoreAudit), [dict(record) for record in records])
    return len(records)


def household_audit(engine: Engine, household_id: str) -> pd.DataFrame:
    """Every recorded score of one household, oldest first."""
    columns = [getattr(ScoreAudit, name) for name in ("id", "scored_at", *AUDIT_FIELDS)]
    query = select(*columns).where(ScoreAudit.household_id == household_id).order_by(ScoreAudit.id)
    with engine.connect() as connection:
        rows = connection.execute(query).fetchall()
    return pd.DataFrame(rows, columns=["id", "scored_at", *AUDIT_FIELDS])


class AuditWriter:
    """Writes audit records on a background thread, in batches (module docstring)."""

    def __init__(self, engine: Engine, batch_rows: int = BATCH_ROWS, batch_seconds: float = BATCH_SECONDS):
        self._engine = engine
        self._batch_rows = batch_rows
        self._batch_seconds = batch_seconds
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=QUEUE_ROWS)
        self._written = 0
        self._thread = threading.Thread(target=self._run, name="povrisk-audit", daemon=True)
        self._thread.start()

    @property
    def written(self) -> int:
        return self._written

    def submit(self, records: Sequence[dict[str, Any]]) -> None:
        for record in records:
            self._queue.put(record)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error(
                "audit writer did not finish within %.0f s; %d record(s) unwritten",
                timeout,
                self._queue.qsize(),
            )

    def _run(self) -> None:
        pending: list[dict[str, Any]] = []
        stopping = False
        while not stopping or pending:
            deadline = time.monotonic() + self._batch_seconds
            while not stopping and len(pending) < self._batch_rows:
                try:
                    record = self._queue.get(timeout=max(deadline - time.monotonic(), 0.001))
                except queue.Empty:
                    break
                if record is None:
                    stopping = True
                else:
                    pending.append(record)
            if pending:
                pending = self._write(pending)

    def _write(self, pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write a batch; on failure log it and keep the batch for the next try."""
        try:
            self._written += record_scores(self._engine, pending)
            return []
        except Exception as error:  # the database may be down for a while; keep the records
            logger.error("could not write %d audit record(s), retrying: %s", len(pending), error)
            time.sleep(RETRY_SECONDS)
            return pending
