"""The audit trail of the scoring service, in the flag store's database (`score_audit`).

Every household the service scores is recorded: when, by which API key (its id and role, never the
key), through which endpoint, the household, village and round, the models' names and versions, both
risks, tier, category, main cause and the top reasons, so that a score can be explained when it is
appealed or reviewed in public. Names and ID numbers never reach this table: the service drops them
when it reads a request. Rows are only inserted, except by retention (`apply_retention`), which the
policy governs.

`AuditWriter` takes records from request handlers and writes them in batches on a thread of its own, so
that a request does not wait for the database. Its policy:
- **Bounded, never blocking.** At most `capacity` records wait in memory (queued, or reserved by
  requests being scored). A request first reserves room for its records (`reserve`); when there is
  none (the database is down or cannot keep up) the service answers 503 and scores nothing: no score
  is given without its audit record, and no record is dropped. Nothing is spooled to disk: records
  name households, and the protected database is the only place they are kept.
- **One bad record never blocks the others.** When the database refuses a batch for what it holds
  (`refuses_a_record`: a value it cannot store, a broken constraint), its records are written one by
  one; one the database refuses (e.g. text it cannot store) is kept in
  `score_audit_rejected` as escaped JSON with the reason, counted and logged by the salted hash of its
  household, and the rest are written.
- **Database down.** The batch is kept and retried with a growing pause (up to `MAX_RETRY_SECONDS`);
  the log says so once when it happens, once a minute while it lasts and once when it ends (counts
  only, never ids or SQL parameters). `state()` reports it, for the health endpoints.
- **Shutdown.** `close` writes what is queued within its timeout; what it could not write is reported
  in the log (count, endpoints, time span, salted household hashes) and returned.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from store.cases import NO_COUNTY, ScoreAudit, ScoreAuditRejected
from store.database import frame_of

logger = logging.getLogger(__name__)

AUDIT_FIELDS = (
    "key_id",
    "key_role",
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
    "compacted_scores",
)
BATCH_ROWS = 500
BATCH_SECONDS = 0.05
"""How long the writer gathers records before a write. Small writes often: a 0.5 s batch made the
occasional request that meets a write slower (single-household p99 at concurrency 1: 17.9-18.6 ms against
16.1-16.7 ms with 0.05 s, `make bench`-style runs on 2 shared cores)."""
QUEUE_ROWS = 20_000
"""Records that may wait in memory (a record is about 1 kB: ~20 MB at most): 100 full batch requests,
or about 10 s of the service's top rate. Beyond it, scoring requests get 503."""
RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 10.0
REMINDER_SECONDS = 60.0
"""While the database stays unreachable, how often the log says so again."""
SHUTDOWN_SECONDS = 10.0
REPORTED_HOUSEHOLDS = 20
"""How many salted household hashes a report of unwritten records lists."""


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
    key_role: str | None = None,
    county_id: str | None = None,
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
        "key_role": key_role,
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
        "county_id": county_id or NO_COUNTY,
    }


def record_scores(engine: Engine, records: Sequence[Mapping[str, Any]]) -> int:
    """Insert audit rows in one transaction; returns how many."""
    if not records:
        return 0
    with engine.begin() as connection:
        connection.execute(insert(ScoreAudit), [dict(record) for record in records])
    return len(records)


def keep_rejected(engine: Engine, record: Mapping[str, Any], error: BaseException) -> None:
    """Keep a record the database refused in `score_audit_rejected`: escaped JSON (every control
    character written as an escape, so the text is storable) with the reason."""
    with engine.begin() as connection:
        connection.execute(
            insert(ScoreAuditRejected).values(
                rejected_at=datetime.now(UTC),
                error=json.dumps(database_error(error)),
                record=json.dumps(dict(record), default=str, ensure_ascii=True),
            )
        )


def rejected_records(engine: Engine) -> pd.DataFrame:
    """The records the database refused, oldest first: id, rejected_at, error, record (JSON)."""
    query = select(ScoreAuditRejected.__table__).order_by(ScoreAuditRejected.id)
    with engine.connect() as connection:
        result = connection.execute(query)
        return frame_of(result)


def household_audit(engine: Engine, household_id: str) -> pd.DataFrame:
    """Every recorded score of one household, oldest first."""
    columns = [getattr(ScoreAudit, name) for name in ("id", "scored_at", *AUDIT_FIELDS)]
    query = select(*columns).where(ScoreAudit.household_id == household_id).order_by(ScoreAudit.id)
    with engine.connect() as connection:
        rows = connection.execute(query).fetchall()
    return pd.DataFrame(rows, columns=["id", "scored_at", *AUDIT_FIELDS])


def refuses_a_record(error: BaseException) -> bool:
    """Whether a failed write says something about the records (a value the database cannot store, a
    broken constraint), rather than about the database (down, restarting, out of connections), which
    is worth waiting for."""
    if isinstance(error, DataError | IntegrityError):
        return True
    # the driver refused a value before sending anything (a StatementError that is not the database's)
    return isinstance(error, StatementError) and not isinstance(error, DBAPIError)


def database_error(error: BaseException) -> str:
    """What went wrong, safe for a log line: the exception types and the database's error code, never
    the SQL parameters or a value (SQLAlchemy's message quotes both, and they name households)."""
    cause = getattr(error, "orig", None)
    names = type(error).__name__ if cause is None else f"{type(error).__name__} ({type(cause).__name__})"
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return f"{names}, SQLSTATE {code}" if code else names


@dataclass(frozen=True)
class AuditState:
    """What the writer is doing, for the health endpoints and the log."""

    accepting: bool
    """Whether a scoring request may be answered now (there is room for its records)."""
    database: str
    """"reachable", or "unreachable" since the last failed write that a probe confirmed."""
    queued: int
    reserved: int
    capacity: int
    written: int
    rejected: int
    """Records the database refused, kept in score_audit_rejected."""
    unwritten_at_shutdown: int
    unreachable_since: str | None
    last_error: str | None
    writer_alive: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class AuditWriter:
    """Writes audit records on a background thread, in batches (module docstring).

    `describe_household` turns a household id into what a log line may say about it (the service passes
    its salted hash); the default says nothing about it."""

    def __init__(
        self,
        engine: Engine,
        batch_rows: int = BATCH_ROWS,
        batch_seconds: float = BATCH_SECONDS,
        capacity: int = QUEUE_ROWS,
        describe_household: Callable[[str], str] = lambda _: "(id withheld)",
    ):
        self._engine = engine
        self._batch_rows = batch_rows
        self._batch_seconds = batch_seconds
        self._capacity = capacity
        self._describe = describe_household
        self._lock = threading.Condition()
        self._queue: deque[dict[str, Any]] = deque()
        self._reserved = 0
        self._closing = False
        self._deadline: float | None = None
        self._written = 0
        self._rejected = 0
        self._unwritten_at_shutdown = 0
        self._unreachable_since: datetime | None = None
        self._last_error: str | None = None
        self._reminded = 0.0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="povrisk-audit", daemon=True)
        self._thread.start()

    @property
    def written(self) -> int:
        return self._written

    @property
    def rejected(self) -> int:
        return self._rejected

    # ---------------------------------------------------------------------------------- request side

    def reserve(self, count: int) -> bool:
        """Room for `count` records, held until `submit` (or `release`); False when there is none."""
        with self._lock:
            if self._closing or len(self._queue) + self._reserved + count > self._capacity:
                return False
            self._reserved += count
            return True

    def release(self, count: int) -> None:
        """Give back room reserved for records that will not come (the request failed)."""
        with self._lock:
            self._reserved = max(self._reserved - count, 0)

    def submit(self, records: Sequence[dict[str, Any]], reserved: int = 0) -> None:
        """Queue records (never blocks). `reserved`: the room `reserve` gave for them, now released;
        records beyond any reservation are taken only while there is room (`AuditFull` otherwise)."""
        with self._lock:
            self._reserved = max(self._reserved - reserved, 0)
            unreserved = len(records) - reserved
            if unreserved > 0 and len(self._queue) + self._reserved + unreserved > self._capacity:
                raise AuditFull(
                    f"the audit queue holds {len(self._queue):,} records (capacity {self._capacity:,})"
                )
            self._queue.extend(records)
            self._lock.notify()

    def state(self) -> AuditState:
        with self._lock:
            return AuditState(
                accepting=not self._closing and len(self._queue) + self._reserved < self._capacity,
                database="unreachable" if self._unreachable_since else "reachable",
                queued=len(self._queue),
                reserved=self._reserved,
                capacity=self._capacity,
                written=self._written,
                rejected=self._rejected,
                unwritten_at_shutdown=self._unwritten_at_shutdown,
                unreachable_since=self._unreachable_since.isoformat() if self._unreachable_since else None,
                last_error=self._last_error,
                writer_alive=self._thread.is_alive(),
            )

    def close(self, timeout: float = SHUTDOWN_SECONDS) -> int:
        """Write everything queued within `timeout` seconds, then stop; returns (and logs) how many
        records could not be written."""
        with self._lock:
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._lock.notify()
        self._closed.set()
        self._thread.join(timeout + 1.0)
        with self._lock:
            left = list(self._queue)
            self._queue.clear()
        if left:
            self._report_unwritten(left)
        return len(left)

    # ----------------------------------------------------------------------------------- writer side

    def _run(self) -> None:
        pause = RETRY_SECONDS
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            unwritten = self._write(batch)
            if not unwritten:
                pause = RETRY_SECONDS
                continue
            with self._lock:
                self._queue.extendleft(reversed(unwritten))  # first in line again, in their order
                if self._past_deadline():
                    return
                wait = pause if self._deadline is None else min(pause, self._deadline - time.monotonic())
            self._closed.wait(max(wait, 0.0))  # a close ends the pause: the last tries are its own
            pause = min(pause * 2, MAX_RETRY_SECONDS)

    def _next_batch(self) -> list[dict[str, Any]] | None:
        """Up to `batch_rows` records, gathered for up to `batch_seconds` after the first arrives; None
        when closing and nothing is left, or the shutdown deadline has passed."""
        with self._lock:
            while not self._queue and not self._closing:
                self._lock.wait()
            if not self._queue or self._past_deadline():
                return None
            gathering_until = time.monotonic() + self._batch_seconds
            while len(self._queue) < self._batch_rows and not self._closing:
                remaining = gathering_until - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            return [self._queue.popleft() for _ in range(min(len(self._queue), self._batch_rows))]

    def _write(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write a batch; returns the records to try again (the database is unreachable)."""
        try:
            self._written += record_scores(self._engine, batch)
            self._reachable_again()
            return []
        except Exception as error:
            failure = error
        if not refuses_a_record(failure) or not self._database_answers():
            self._unreachable(failure, len(batch))
            return batch
        return self._write_one_by_one(batch)

    def _write_one_by_one(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The database answers but refused the batch: find the records it refuses, keep them aside,
        write the rest. Returns what is left when the database stops answering meanwhile."""
        for position, record in enumerate(batch):
            try:
                self._written += record_scores(self._engine, [record])
                continue
            except Exception as error:
                refused = error
            if not refuses_a_record(refused):  # the database went away meanwhile
                self._unreachable(refused, len(batch) - position)
                return batch[position:]
            try:
                keep_rejected(self._engine, record, refused)
            except Exception as error:
                if not self._database_answers():
                    self._unreachable(error, len(batch) - position)
                    return batch[position:]
                raise  # cannot happen: escaped JSON is storable text; the writer thread logs and ends
            self._rejected += 1
            self._last_error = database_error(refused)
            logger.error(
                "audit record of household %s (%s by key %s) refused by the database (%s); kept in %s, "
                "the others are written",
                self._describe(str(record.get("household_id", ""))),
                record.get("endpoint"),
                record.get("key_id"),
                database_error(refused),
                ScoreAuditRejected.__tablename__,
            )
        self._reachable_again()
        return []

    def _database_answers(self) -> bool:
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def _unreachable(self, error: BaseException, holding: int) -> None:
        now = datetime.now(UTC)
        self._last_error = database_error(error)
        if self._unreachable_since is None:
            self._unreachable_since, self._reminded = now, time.monotonic()
            logger.error(
                "audit trail: the database does not answer (%s); holding %d record(s) and retrying; "
                "scoring requests get 503 once %d records wait",
                self._last_error,
                holding,
                self._capacity,
            )
        elif time.monotonic() - self._reminded >= REMINDER_SECONDS:
            self._reminded = time.monotonic()
            logger.error(
                "audit trail: the database has not answered since %s (%s); %d record(s) waiting",
                self._unreachable_since.isoformat(timespec="seconds"),
                self._last_error,
                len(self._queue) + holding,
            )

    def _reachable_again(self) -> None:
        if self._unreachable_since is not None:
            lasted = (datetime.now(UTC) - self._unreachable_since).total_seconds()
            logger.warning("audit trail: the database answers again after %.0f s; writing the queue", lasted)
            self._unreachable_since = None

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _report_unwritten(self, records: list[dict[str, Any]]) -> None:
        self._unwritten_at_shutdown += len(records)
        times = sorted(record["scored_at"] for record in records if "scored_at" in record)
        households = sorted({self._describe(str(record.get("household_id", ""))) for record in records})
        endpoints = sorted({str(record.get("endpoint")) for record in records})
        logger.error(
            "audit trail: stopping with %d record(s) unwritten (%s; database %s); endpoints %s, scored "
            "%s to %s, households %s%s",
            len(records),
            self._last_error or "no error recorded",
            "unreachable" if self._unreachable_since else "reachable",
            ", ".join(endpoints),
            times[0].isoformat(timespec="seconds") if times else "?",
            times[-1].isoformat(timespec="seconds") if times else "?",
            ", ".join(households[:REPORTED_HOUSEHOLDS]),
            f" and {len(households) - REPORTED_HOUSEHOLDS} more"
            if len(households) > REPORTED_HOUSEHOLDS
            else "",
        )


class AuditFull(RuntimeError):
    """Records submitted without a reservation when the queue has no room for them."""
