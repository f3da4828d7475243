"""The flag store: households to visit, and what monitoring teams decided about each.

A flag is one household in one round that batch scoring put under monitoring. A flag starts as
"flagged"; people move it on: flagged -> verified | rejected, verified -> assisted,
assisted -> risk_eliminated. Every change of status is appended to `flag_history`, which is never
updated or deleted. Re-scoring a round refreshes the scores of flags still "flagged" and leaves every
flag a person has moved on exactly as that person left it.

SQLite by default (a file in the working folder); PostgreSQL or any other SQLAlchemy URL through
`POVRISK_DB_URL`. Every public function runs in one transaction: a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from monitoring.categories import NOT_MONITORED

DB_URL_ENV = "POVRISK_DB_URL"
INITIAL_STATUS = "flagged"
SYSTEM_ACTOR = "batch-scoring"

ALLOWED_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "flagged": frozenset({"verified", "rejected"}),
    "verified": frozenset({"assisted"}),
    "assisted": frozenset({"risk_eliminated"}),
    "rejected": frozenset(),
    "risk_eliminated": frozenset(),
}
STATUSES = tuple(ALLOWED_TRANSITIONS)

# Columns a flag frame must carry (what `serving.batch.score_round` returns); `reasons_json` is stored
# in the `reasons` column.
FLAG_FRAME_COLUMNS = (
    "household_id",
    "village_id",
    "round",
    "category",
    "category_rule",
    "poverty_risk",
    "relapse_risk",
    "risk_tier",
    "reasons_json",
    "model_name",
    "model_version",
)
# What re-scoring may change on a flag that is still "flagged".
_SCORED_FIELDS = (
    "village_id",
    "category",
    "category_rule",
    "poverty_risk",
    "relapse_risk",
    "risk_tier",
    "reasons",
    "model_name",
    "model_version",
)


class IllegalTransition(ValueError):
    """A status change that the monitoring workflow does not allow."""


class FlagNotFound(KeyError):
    """No flag with the given id."""


class Base(DeclarativeBase):
    pass


class Flag(Base):
    """One household flagged in one round, with the scores that flagged it and its current status."""

    __tablename__ = "flags"
    __table_args__ = (
        UniqueConstraint("household_id", "round", name="uq_flags_household_round"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in STATUSES) + ")",
            name="ck_flags_status",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    household_id: Mapped[str] = mapped_column(String(64), index=True)
    village_id: Mapped[str] = mapped_column(String(64), index=True)
    round: Mapped[int] = mapped_column(Integer, index=True)
    category: Mapped[str] = mapped_column(String(32))
    category_rule: Mapped[str] = mapped_column(Text)
    poverty_risk: Mapped[float | None] = mapped_column(Float, nullable=True)
    relapse_risk: Mapped[float | None] = mapped_column(Float, nullable=True)
    risk_tier: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reasons: Mapped[str] = mapped_column(Text, default="[]")
    model_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(32), default=INITIAL_STATUS, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declarative hook


class FlagHistory(Base):
    """Append-only log of status changes; the first row of a flag records its creation."""

    __tablename__ = "flag_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_status: Mapped[str] = mapped_column(String(32))
    by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class UpsertResult:
    """Counts of one upsert. `unchanged` includes flags a person has moved on (never overwritten)."""

    inserted: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class StatusChange:
    """One status change as written to the store."""

    flag_id: int
    from_status: str
    to_status: str
    version: int


def db_url() -> str:
    """The flag store URL: env POVRISK_DB_URL, else a SQLite file `povrisk.db` in the working folder."""
    return os.environ.get(DB_URL_ENV) or f"sqlite:///{Path.cwd() / 'povrisk.db'}"


def make_engine(url: str | None = None) -> Engine:
    """An engine for `url` (default `db_url()`); SQLite connections enforce foreign keys."""
    engine = create_engine(url or db_url())
    if engine.dialect.name == "sqlite":
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _enforce_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def create_schema(engine: Engine) -> None:
    """Create the tables that do not exist yet (idempotent)."""
    Base.metadata.create_all(engine)


def upsert_flags(engine: Engine, flags: pd.DataFrame) -> UpsertResult:
    """Write a flag list, idempotent by (household_id, round).

    New households are inserted as "flagged" with a history row. A flag still "flagged" gets the new
    scores, category and reasons when any of them changed; a flag a person has moved on is left alone.
    """
    rows = _flag_rows(flags)
    now = _now()
    with Session(engine) as session, session.begin():
        existing = _existing_flags(session, rows)
        to_insert, to_update, unchanged = _plan_upsert(rows, existing)
        inserted_ids = _insert_flags(session, to_insert, now)
        _append_history(
            session,
            [
                {"flag_id": flag_id, "from_status": None, "to_status": INITIAL_STATUS, "note": "scored"}
                for flag_id in inserted_ids
            ],
            by=SYSTEM_ACTOR,
            at=now,
        )
        updated = _update_open_flags(session, to_update, now)
    return UpsertResult(
        inserted=len(inserted_ids), updated=updated, unchanged=unchanged + len(to_update) - updated
    )


def list_flags(
    engine: Engine, village: str | None = None, status: str | None = None, round: int | None = None
) -> pd.DataFrame:
    """Flags, optionally filtered, ordered by village, round, then poverty risk (highest first)."""
    query = select(Flag.__table__)
    if village is not None:
        query = query.where(Flag.village_id == village)
    if status is not None:
        query = query.where(Flag.status == status)
    if round is not None:
        query = query.where(Flag.round == round)
    query = query.order_by(Flag.village_id, Flag.round, Flag.poverty_risk.desc(), Flag.id)
    with engine.connect() as connection:
        result = connection.execute(query)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def flag_history(engine: Engine, flag_id: int | None = None) -> pd.DataFrame:
    """History rows (all, or one flag's), oldest first."""
    query = select(FlagHistory.__table__).order_by(FlagHistory.id)
    if flag_id is not None:
        query = query.where(FlagHistory.flag_id == flag_id)
    with engine.connect() as connection:
        result = connection.execute(query)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def set_status(engine: Engine, flag_id: int, status: str, by: str, note: str | None = None) -> StatusChange:
    """Move a flag to `status` (see ALLOWED_TRANSITIONS) and append a history row.

    Raises `FlagNotFound` for an unknown id and `IllegalTransition` for a change the workflow forbids.
    Concurrent changes of the same flag are caught by the version counter (SQLAlchemy `StaleDataError`).
    """
    if not by.strip():
        raise ValueError("set_status needs the name of who made the decision (by)")
    with Session(engine) as session, session.begin():
        flag = session.get(Flag, flag_id)
        if flag is None:
            raise FlagNotFound(f"no flag with id {flag_id}")
        from_status = flag.status
        _check_transition(from_status, status)
        now = _now()
        flag.status = status
        flag.updated_at = now
        session.flush()
        _append_history(
            session,
            [{"flag_id": flag_id, "from_status": from_status, "to_status": status, "note": note}],
            by=by,
            at=now,
        )
        return StatusChange(flag_id=flag_id, from_status=from_status, to_status=status, version=flag.version)


def _check_transition(from_status: str, to_status: str) -> None:
    if to_status not in ALLOWED_TRANSITIONS:
        raise IllegalTransition(f"unknown status {to_status!r}; statuses are {', '.join(STATUSES)}")
    allowed = ALLOWED_TRANSITIONS[from_status]
    if to_status not in allowed:
        allowed_text = ", ".join(sorted(allowed)) or "none (final status)"
        raise IllegalTransition(
            f"cannot move a flag from {from_status!r} to {to_status!r}; allowed from {from_status!r}: "
            f"{allowed_text}"
        )


def _flag_rows(flags: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain-Python records of a flag frame, checked for columns and duplicate keys."""
    missing = [column for column in FLAG_FRAME_COLUMNS if column not in flags.columns]
    if missing:
        raise ValueError(f"flag frame lacks column(s): {', '.join(missing)}")
    frame = flags.loc[:, list(FLAG_FRAME_COLUMNS)].rename(columns={"reasons_json": "reasons"})
    unmonitored = frame["category"] == NOT_MONITORED
    if unmonitored.any():
        raise ValueError(
            f"flag frame holds {int(unmonitored.sum())} household(s) in category {NOT_MONITORED!r}; "
            "only monitored households are flags (serving.batch.score_round leaves them out)"
        )
    duplicated = frame.duplicated(subset=["household_id", "round"])
    if duplicated.any():
        keys = frame.loc[duplicated, ["household_id", "round"]].head(5).to_records(index=False).tolist()
        raise ValueError(f"flag frame has duplicate (household_id, round) keys, e.g. {keys}")
    return [
        {
            "household_id": str(row.household_id),
            "village_id": str(row.village_id),
            "round": _integer(row.round),
            "category": str(row.category),
            "category_rule": str(row.category_rule),
            "poverty_risk": _optional_float(row.poverty_risk),
            "relapse_risk": _optional_float(row.relapse_risk),
            "risk_tier": _optional_str(row.risk_tier),
            "reasons": str(row.reasons),
            "model_name": _optional_str(row.model_name),
            "model_version": _optional_str(row.model_version),
        }
        for row in frame.itertuples(index=False)
    ]


def _existing_flags(session: Session, rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    rounds = sorted({row["round"] for row in rows})
    if not rounds:
        return {}
    columns = [
        Flag.id,
        Flag.household_id,
        Flag.round,
        Flag.status,
        *(getattr(Flag, f) for f in _SCORED_FIELDS),
    ]
    result = session.execute(select(*columns).where(Flag.round.in_(rounds)))
    return {(record.household_id, record.round): dict(record._mapping) for record in result}


def _plan_upsert(
    rows: list[dict[str, Any]], existing: Mapping[tuple[str, int], Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Split rows into (inserts, updates of open flags whose scores changed, count left unchanged)."""
    to_insert: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    unchanged = 0
    for row in rows:
        stored = existing.get((row["household_id"], row["round"]))
        if stored is None:
            to_insert.append(row)
        elif stored["status"] == INITIAL_STATUS and _scores_differ(row, stored):
            to_update.append({**row, "flag_id": stored["id"]})
        else:
            unchanged += 1
    return to_insert, to_update, unchanged


def _scores_differ(row: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    for field in _SCORED_FIELDS:
        new, old = row[field], stored[field]
        if isinstance(new, float) and isinstance(old, float):
            if abs(new - old) > 1e-12:
                return True
        elif new != old:
            return True
    return False


def _insert_flags(session: Session, rows: list[dict[str, Any]], now: datetime) -> list[int]:
    if not rows:
        return []
    records = [
        {**row, "status": INITIAL_STATUS, "created_at": now, "updated_at": now, "version": 1} for row in rows
    ]
    result = session.execute(insert(Flag).returning(Flag.id, sort_by_parameter_order=True), records)
    return [int(flag_id) for flag_id in result.scalars()]


def _update_open_flags(session: Session, rows: list[dict[str, Any]], now: datetime) -> int:
    """Update flags still "flagged"; the status guard keeps a decision taken meanwhile untouched."""
    if not rows:
        return 0
    table = cast(Table, Flag.__table__)
    statement = (
        update(table)
        .where(table.c.id == bindparam("flag_id"), table.c.status == INITIAL_STATUS)
        .values(
            **{field: bindparam(f"new_{field}") for field in _SCORED_FIELDS},
            updated_at=now,
            version=table.c.version + 1,
        )
    )
    parameters = [
        {"flag_id": row["flag_id"], **{f"new_{field}": row[field] for field in _SCORED_FIELDS}}
        for row in rows
    ]
    updated = 0
    connection = session.connection()
    for parameter in parameters:  # one statement per row: rowcount is reliable on every driver
        updated += connection.execute(statement, parameter).rowcount
    return updated


def _append_history(session: Session, entries: Iterable[dict[str, Any]], by: str, at: datetime) -> None:
    records = [{**entry, "by": by, "at": at} for entry in entries]
    if records:
        session.execute(insert(FlagHistory), records)


def _integer(value: Any) -> int:
    return int(value)


def _optional_float(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _now() -> datetime:
    return datetime.now(UTC)
