"""The flag store, a case file: households to visit, and every step people took on each.

A flag (a case) is one household in one round put under monitoring: by batch scoring (channel "model")
or by a person (`open_case`: a household's declaration, a department's data). A case starts as
"flagged" and follows the monitoring procedure (ALLOWED_TRANSITIONS below; the steps and who may take
them: `monitoring/procedure.yaml`). Every step is appended to `flag_history` (who, in which role, when,
the note and the step's details), which is never updated or deleted; `add_case_note` records something
without moving the case (an objection during the public notice). A household has at most one open case
(any status but rejected and risk_eliminated): batch scoring of another round leaves it alone.
Re-scoring a round refreshes the scores of flags still "flagged" and leaves every flag a person has moved
on exactly as that person left it.

SQLite by default (a file in the working folder); PostgreSQL or any other SQLAlchemy URL through
`POVRISK_DB_URL`. Every public function runs in one transaction: a failure leaves nothing half-written.
The schema is made and kept up to date by this project's Alembic migrations (`store/migrations`),
run by `store.database.create_schema`. Two people changing the same flag at once never lose a
change: the flag's version counter turns the slower write into a retry (when only re-scoring
intervened) or a `FlagConflict` (when someone else already moved the status on).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pandas as pd
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    case,
    func,
    insert,
    inspect,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from store.amendments import Amendment, write_amendments
from store.database import Base, frame_of, refresh_statistics
from store.offline import Receipt, add_receipt
from survey.text import control_characters

INITIAL_STATUS = "flagged"
# The category of a household scoring found no reason to monitor (monitoring.categories): never a flag.
NOT_MONITORED = "not_monitored"
# The county of flags and audit rows scored from a survey folder that names none (`score --data DIR`).
NO_COUNTY = ""
SYSTEM_ACTOR = "batch-scoring"
# How often `set_status` re-reads a flag that re-scoring changed between its read and its write.
STATUS_CHANGE_ATTEMPTS = 3
# How often `upsert_flags` runs its transaction again after losing a race to a concurrent writer (the
# same new flags inserted first, a deadlock), each time seeing the rows the winner committed.
UPSERT_ATTEMPTS = 5
# What a status change may carry, checked before the database sees it: flag ids are 32-bit integers
# (PostgreSQL's INTEGER), the actor fits flag_history.by (VARCHAR(200)), and a field note says what was
# found or done in a paragraph or two, not a document.
LARGEST_FLAG_ID = 2**31 - 1
ACTOR_MAX_LENGTH = 200
NOTE_MAX_LENGTH = 2_000
# Errors after which the upsert transaction can simply run again: PostgreSQL's unique violation,
# deadlock and serialization failure (SQLSTATE), SQLite's unique violation and busy database.
_RACE_SQLSTATES = frozenset({"23505", "40P01", "40001"})
_RACE_SQLITE_ERRORS = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_BUSY"})

# The monitoring procedure's statuses (monitoring/procedure.yaml names the steps between them and who may
# take each): identification (visit, village review, public notice, township review, county approval),
# monitoring with assistance, risk elimination (proposed, visited, reviewed, noticed, approved); a case
# found not at risk is rejected. Both closed statuses can be reopened with a reason: re-entry of a
# household missed, or falling back after its risk was eliminated.
ALLOWED_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "flagged": frozenset({"verified", "rejected"}),
    "verified": frozenset({"village_reviewed", "rejected"}),
    "village_reviewed": frozenset({"notice_running"}),
    "notice_running": frozenset({"township_reviewed", "rejected"}),
    "township_reviewed": frozenset({"monitored", "rejected"}),
    "monitored": frozenset({"assisted"}),
    "assisted": frozenset({"elimination_proposed"}),
    "elimination_proposed": frozenset({"elimination_verified", "assisted"}),
    "elimination_verified": frozenset({"elimination_reviewed"}),
    "elimination_reviewed": frozenset({"elimination_notice"}),
    "elimination_notice": frozenset({"risk_eliminated", "assisted"}),
    "risk_eliminated": frozenset({"flagged"}),
    "rejected": frozenset({"flagged"}),
}
STATUSES = tuple(ALLOWED_TRANSITIONS)
CLOSED_STATUSES = frozenset({"rejected", "risk_eliminated"})
"""A household has at most one case in any other status (an open case)."""
MODEL_CHANNEL = "model"
CHANNELS = (MODEL_CHANNEL, "declaration", "department")
"""How a case was discovered: the model's flags, the household's own declaration, a department's data."""

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
# Optional flag frame columns: stored when present, left as they are in the store when absent.
MAIN_CAUSE = "main_cause"
DATA_COMPLETENESS = "data_completeness"
OPTIONAL_FLAG_COLUMNS = (MAIN_CAUSE, DATA_COMPLETENESS)
# What re-scoring may change on a flag that is still "flagged" (plus the optional columns when given).
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


class FlagConflict(RuntimeError):
    """Someone else moved the flag on between reading it and writing this change; nothing was written."""

    def __init__(
        self, flag_id: int, read_version: int, read_status: str, current_version: int, current_status: str
    ) -> None:
        self.flag_id = flag_id
        self.read_version = read_version
        self.read_status = read_status
        self.current_version = current_version
        self.current_status = current_status
        super().__init__(
            f"flag {flag_id} changed while this change was being written: read at version {read_version} "
            f"({read_status!r}), now at version {current_version} ({current_status!r}); nothing was "
            "written; look at the flag again before deciding"
        )


class Flag(Base):
    """One household flagged in one round, with the scores that flagged it and its current status."""

    __tablename__ = "flags"
    __table_args__ = (
        UniqueConstraint("county_id", "household_id", "round", name="uq_flags_county_household_round"),
        # a worklist, an export, a village sheet: a county's cases of some villages (with the planner's
        # statistics, `store.database.refresh_statistics`)
        Index("ix_flags_county_village", "county_id", "village_id"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in STATUSES) + ")",
            name="ck_flags_status",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    household_id: Mapped[str] = mapped_column(String(64), index=True)
    village_id: Mapped[str] = mapped_column(String(64), index=True)
    round: Mapped[int] = mapped_column(Integer, index=True)
    county_id: Mapped[str] = mapped_column(String(64), default=NO_COUNTY, server_default="", index=True)
    category: Mapped[str] = mapped_column(String(32))
    category_rule: Mapped[str] = mapped_column(Text)
    poverty_risk: Mapped[float | None] = mapped_column(Float, nullable=True)
    relapse_risk: Mapped[float | None] = mapped_column(Float, nullable=True)
    risk_tier: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reasons: Mapped[str] = mapped_column(Text, default="[]")
    model_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    main_cause: Mapped[str | None] = mapped_column(String(32), nullable=True)
    data_completeness: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(32), default=INITIAL_STATUS, index=True)
    channel: Mapped[str] = mapped_column(String(16), default=MODEL_CHANNEL, server_default=MODEL_CHANNEL)
    notice_ends: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
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
    county_id: Mapped[str] = mapped_column(String(64), default=NO_COUNTY, server_default="")
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)


class ScoreAudit(Base):
    """One household scored by the service (monitoring.audit): who asked, when, with which models, and
    what they answered. Append-only; no names or ID numbers (the service never keeps them)."""

    __tablename__ = "score_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    key_id: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(32))
    household_id: Mapped[str] = mapped_column(String(64), index=True)
    village_id: Mapped[str] = mapped_column(String(64))
    round: Mapped[int] = mapped_column(Integer)
    poverty_risk: Mapped[float | None] = mapped_column(Float, nullable=True)
    relapse_risk: Mapped[float | None] = mapped_column(Float, nullable=True)
    risk_tier: Mapped[str | None] = mapped_column(String(16), nullable=True)
    category: Mapped[str | None] = mapped_column(String(32), nullable=True)
    main_cause: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reasons: Mapped[str] = mapped_column(Text)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    key_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    compacted_scores: Mapped[int | None] = mapped_column(Integer, nullable=True)
    county_id: Mapped[str] = mapped_column(String(64), default=NO_COUNTY, server_default="")


class ScoreAuditRejected(Base):
    """An audit record the database refused (monitoring.audit): kept as escaped JSON with the reason,
    so that it is neither lost nor able to block the records after it."""

    __tablename__ = "score_audit_rejected"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rejected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    error: Mapped[str] = mapped_column(Text)
    record: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True)
class UpsertResult:
    """Counts of one upsert. `unchanged` includes flags a person has moved on (never overwritten)."""

    inserted: int
    updated: int
    unchanged: int
    already_open: int = 0
    """Households left out because they have an open case of another round (one open case each)."""

    def __str__(self) -> str:
        text = f"{self.inserted:,} new, {self.updated:,} updated, {self.unchanged:,} unchanged"
        return text + (f", {self.already_open:,} with a case still open" if self.already_open else "")


@dataclass(frozen=True)
class StatusChange:
    """One status change as written to the store."""

    flag_id: int
    from_status: str
    to_status: str
    version: int


def upsert_flags(engine: Engine, flags: pd.DataFrame) -> UpsertResult:
    """Write a flag list, idempotent by (county_id, household_id, round); a frame without a
    `county_id` column holds flags of a survey folder that names no county (NO_COUNTY).

    New households are inserted as "flagged" with a history row. A flag still "flagged" gets the new
    scores, category and reasons when any of them changed; a flag a person has moved on is left alone.
    A `main_cause` or `data_completeness` column, when the frame has one, is stored and refreshed like
    the scores; without it the stored values stay as they are.

    Safe under concurrent writers: two runs inserting the same new flags race on the unique key
    (county_id, household_id, round); the loser's transaction is rolled back whole and run again, and
    then finds the winner's flags (and updates them or leaves them as they are). Rows are written in key
    order, so that two runs never wait on each other's rows crosswise (a deadlock).
    """
    rows = _flag_rows(flags)
    fields = _SCORED_FIELDS + tuple(column for column in OPTIONAL_FLAG_COLUMNS if column in flags.columns)
    for attempt in range(1, UPSERT_ATTEMPTS + 1):
        try:
            result = _upsert_once(engine, rows, fields)
        except DBAPIError as error:
            if attempt == UPSERT_ATTEMPTS or not _lost_a_race(error):
                raise
        else:
            if result.inserted:
                refresh_statistics(engine, ("flags",))
            return result
    raise AssertionError("unreachable: the last attempt returns or raises")


def _lost_a_race(error: DBAPIError) -> bool:
    """Whether a concurrent writer made the transaction fail (see _RACE_SQLSTATES), not the data."""
    cause = error.orig
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return sqlstate in _RACE_SQLSTATES or getattr(cause, "sqlite_errorname", None) in _RACE_SQLITE_ERRORS


def _upsert_once(engine: Engine, rows: list[dict[str, Any]], fields: tuple[str, ...]) -> UpsertResult:
    """One attempt of `upsert_flags`, in one transaction."""
    now = _now()
    with Session(engine) as session, session.begin():
        existing = _existing_flags(session, rows, fields)
        open_elsewhere = _open_in_other_rounds(session, rows)
        kept = [
            row
            for row in rows
            if (row["county_id"], row["household_id"]) not in open_elsewhere or _flag_key(row) in existing
        ]
        to_insert, to_update, unchanged = _plan_upsert(kept, existing, fields)
        to_insert.sort(key=_flag_key)
        to_update.sort(key=lambda row: row["flag_id"])
        inserted_ids = _insert_flags(session, to_insert, now)
        _append_history(
            session,
            [
                _created(flag_id, row["county_id"], "scored")
                for flag_id, row in zip(inserted_ids, to_insert, strict=True)
            ],
            by=SYSTEM_ACTOR,
            at=now,
        )
        updated = _update_open_flags(session, to_update, fields, now)
    return UpsertResult(
        inserted=len(inserted_ids),
        updated=updated,
        unchanged=unchanged + len(to_update) - updated,
        already_open=len(rows) - len(kept),
    )


def _flag_key(row: Mapping[str, Any]) -> tuple[str, str, int]:
    return row["county_id"], row["household_id"], row["round"]


def list_flags(
    engine: Engine,
    village: str | None = None,
    status: str | None = None,
    round: int | None = None,
    county: str | None = None,
    *,
    villages: Collection[str] | None = None,
    statuses: Collection[str] | None = None,
    household: str | None = None,
) -> pd.DataFrame:
    """Flags, optionally filtered (`villages`/`statuses`: any of several), ordered by village, round,
    then poverty risk (highest first)."""
    query = select(Flag.__table__)
    if county is not None:
        query = query.where(Flag.county_id == county)
    if village is not None:
        query = query.where(Flag.village_id == village)
    if villages is not None:
        query = query.where(Flag.village_id.in_(sorted(villages)))
    if household is not None:
        query = query.where(Flag.household_id == household)
    if status is not None:
        query = query.where(Flag.status == status)
    if statuses is not None:
        query = query.where(Flag.status.in_(sorted(statuses)))
    if round is not None:
        query = query.where(Flag.round == round)
    query = query.order_by(Flag.village_id, Flag.round, Flag.poverty_risk.desc(), Flag.id)
    with engine.connect() as connection:
        result = connection.execute(query)
        return frame_of(result)


CASE_OVERVIEW_COLUMNS = ("id", "village_id", "round", "status", "channel", "category", "created_at")


def case_overview(engine: Engine, county: str, villages: Collection[str] | None = None) -> pd.DataFrame:
    """Every case of a county (of `villages` only, when given) with what a dashboard counts: id,
    village, round, status, channel, category, created_at (no scores or reasons: a county holds tens of
    thousands), and `approved_at`, when the county approved it (the step to "monitored"), else NaT."""
    # times come back as the driver gives them and are parsed once, column-wise (SQLAlchemy's SQLite
    # DateTime type parses each of tens of thousands of values on its own)
    columns = [
        type_coerce(column, String).label(name) if name == "created_at" else column
        for name, column in ((name, getattr(Flag, name)) for name in CASE_OVERVIEW_COLUMNS)
    ]
    cases = select(*columns).where(Flag.county_id == county)
    approvals = (
        select(
            FlagHistory.flag_id.label("id"),
            type_coerce(func.min(FlagHistory.at), String).label("approved_at"),
        )
        .where(FlagHistory.county_id == county, FlagHistory.to_status == "monitored")
        .group_by(FlagHistory.flag_id)
    )
    if villages is not None:
        cases = cases.where(Flag.village_id.in_(sorted(villages)))
    with engine.connect() as connection:
        result = connection.execute(cases)
        frame = frame_of(result)
        approved = frame_of(connection.execute(approvals), ["id", "approved_at"])
    frame = frame.merge(approved, on="id", how="left")
    for name in ("created_at", "approved_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


def get_flag(engine: Engine, flag_id: int) -> dict[str, Any] | None:
    """One flag (case) as a plain mapping of its columns; None when there is none with that id."""
    if not 1 <= flag_id <= LARGEST_FLAG_ID:
        return None
    with engine.connect() as connection:
        row = connection.execute(select(Flag.__table__).where(Flag.id == flag_id)).mappings().one_or_none()
    return None if row is None else dict(row)


def flag_history(
    engine: Engine, flag_id: int | None = None, *, flag_ids: Collection[int] | None = None
) -> pd.DataFrame:
    """History rows (all, one flag's, or those of `flag_ids`), oldest first."""
    query = select(FlagHistory.__table__).order_by(FlagHistory.id)
    if flag_id is not None:
        query = query.where(FlagHistory.flag_id == flag_id)
    if flag_ids is not None:
        query = query.where(FlagHistory.flag_id.in_([int(one) for one in flag_ids]))
    with engine.connect() as connection:
        result = connection.execute(query)
        return frame_of(result)


# What a household visit can find (the step out of "flagged"): the household is at risk (verified) or not
# (rejected). A later review or approval does not change what the visit found.
FIELD_DECISIONS = ("verified", "rejected")
FIELD_DECISION_COLUMNS = (
    "flag_id",
    "household_id",
    "round",
    "category",
    "decision",
    "decided_by",
    "decided_at",
)


def field_decisions(engine: Engine, county_id: str | None = None) -> pd.DataFrame:
    """What household visits found: one row per flag whose household was visited (of one county's
    households with `county_id`: household numbers repeat across counties).

    Columns: flag_id, household_id, round, category (the monitoring category the flag was raised in),
    decision ("verified" or "rejected": the finding of the visit, the step out of "flagged"; the latest
    when a case was reopened and visited again) and who decided and when. Flags not visited carry no
    decision and are left out. An empty frame (with these columns) when the database has no flag store
    yet. Ordered by flag id.
    """
    if Flag.__tablename__ not in inspect(engine).get_table_names():
        return pd.DataFrame(columns=list(FIELD_DECISION_COLUMNS))
    query = (
        select(
            Flag.id.label("flag_id"),
            Flag.household_id,
            Flag.round,
            Flag.category,
            FlagHistory.to_status.label("decision"),
            FlagHistory.by.label("decided_by"),
            FlagHistory.at.label("decided_at"),
        )
        .join(FlagHistory, FlagHistory.flag_id == Flag.id)
        .where(FlagHistory.from_status == INITIAL_STATUS, FlagHistory.to_status.in_(FIELD_DECISIONS))
        .order_by(Flag.id, FlagHistory.id)
    )
    if county_id is not None:
        query = query.where(Flag.county_id == county_id)
    with engine.connect() as connection:
        result = connection.execute(query)
        rows = frame_of(result)
    latest = rows.drop_duplicates(subset="flag_id", keep="last").reset_index(drop=True)
    return latest.loc[:, list(FIELD_DECISION_COLUMNS)]


def set_status(
    engine: Engine,
    flag_id: int,
    status: str,
    by: str,
    note: str | None = None,
    *,
    role: str | None = None,
    details: Mapping[str, Any] | None = None,
    notice_ends: datetime | None = None,
    expected_version: int | None = None,
    expected_status: str | None = None,
    corrections: Corrections | None = None,
    receipt: Receipt | None = None,
) -> StatusChange:
    """Move a flag to `status` (see ALLOWED_TRANSITIONS) and append a history row; with `corrections`
    (a visit's findings), their register amendments and the case's new scores land in the same
    transaction, and so does the `receipt` of the submission that asked for it (`store.offline`:
    `DuplicateSubmission`, nothing written, when it was applied already).

    Raises `FlagNotFound` for an unknown id and `IllegalTransition` for a change the workflow forbids.
    The write only lands on the version of the flag that was read (optimistic locking). When another
    writer got in between: if the status is still the one read (only re-scoring changed the flag), the
    change is tried again on the new version; if the status moved on, `FlagConflict` is raised and
    nothing is written, since the decision was taken on a state that no longer holds.

    Raises ValueError, before the database is asked, for an id outside 1..LARGEST_FLAG_ID, a blank
    actor, an actor longer than ACTOR_MAX_LENGTH or a note longer than NOTE_MAX_LENGTH characters, and
    control characters (`survey.text`) in either.
    """
    _check_status_change(flag_id, by, note)
    step = _Step(role, details, notice_ends, expected_version, expected_status, corrections, receipt)
    for attempt in range(1, STATUS_CHANGE_ATTEMPTS + 1):
        try:
            return _change_status(engine, flag_id, status, by, note, step)
        except _StaleRead as stale:
            current_version, current_status = _version_and_status(engine, flag_id)
            if current_status != stale.status or attempt == STATUS_CHANGE_ATTEMPTS:
                raise FlagConflict(
                    flag_id, stale.version, stale.status, current_version, current_status
                ) from stale
    raise AssertionError("unreachable: the last attempt returns or raises")


def _check_status_change(flag_id: int, by: str, note: str | None) -> None:
    if not 1 <= flag_id <= LARGEST_FLAG_ID:
        raise ValueError(f"flag id {flag_id} is out of range: flag ids run from 1 to {LARGEST_FLAG_ID}")
    if not by.strip():
        raise ValueError("by (who made the decision) is empty; give the name of who made the decision")
    for name, text_, longest in (
        ("by (who made the decision)", by, ACTOR_MAX_LENGTH),
        ("the note", note, NOTE_MAX_LENGTH),
    ):
        if text_ is None:
            continue
        if len(text_) > longest:
            raise ValueError(f"{name} is {len(text_):,} characters long; at most {longest:,} are allowed")
        found = control_characters(text_)
        if found:
            raise ValueError(
                f"{name} holds control character(s) {', '.join(found)}; write it on one line of plain text"
            )


class _StaleRead(Exception):
    """The flag changed between reading it (at `version`, in `status`) and writing the change."""

    def __init__(self, version: int, status: str) -> None:
        super().__init__(f"flag changed after it was read at version {version} ({status!r})")
        self.version = version
        self.status = status


@dataclass(frozen=True)
class _Step:
    """What a person's step adds to a status change: their role, the step's details, the end of the
    public notice it starts, and the version of the case they saw (a later one is a conflict)."""

    role: str | None = None
    details: Mapping[str, Any] | None = None
    notice_ends: datetime | None = None
    expected_version: int | None = None
    expected_status: str | None = None
    corrections: Corrections | None = None
    receipt: Receipt | None = None


@dataclass(frozen=True)
class Corrections:
    """What a visit found in the register: the amendments of the case's round (in version `ingest_id`)
    and the case scored with them (`rescored`: one row of a flag frame)."""

    ingest_id: int
    changes: tuple[Amendment, ...]
    rescored: Mapping[str, Any]


def _change_status(
    engine: Engine, flag_id: int, status: str, by: str, note: str | None, step: _Step
) -> StatusChange:
    """One attempt: read the flag, check the transition, write it where the version is still the one read."""
    with Session(engine) as session, session.begin():
        flag = session.get(Flag, flag_id)
        if flag is None:
            raise FlagNotFound(f"no flag with id {flag_id}")
        from_status, read_version = flag.status, flag.version
        if step.expected_version is not None and step.expected_version != read_version:
            raise FlagConflict(
                flag_id, step.expected_version, step.expected_status or from_status, read_version, from_status
            )
        _check_transition(from_status, status)
        now = _now()
        flag.status = status
        flag.updated_at = now
        if step.notice_ends is not None:
            flag.notice_ends = step.notice_ends
        if step.corrections is not None:
            _rescore(flag, step.corrections.rescored)
        try:
            session.flush()  # UPDATE ... WHERE id = :id AND version = :read_version
        except StaleDataError as error:
            raise _StaleRead(read_version, from_status) from error
        _append_history(
            session,
            [
                {
                    "flag_id": flag_id,
                    "county_id": flag.county_id,
                    "from_status": from_status,
                    "to_status": status,
                    "note": note,
                    "role": step.role,
                    "details": None if step.details is None else json.dumps(step.details, ensure_ascii=False),
                }
            ],
            by=by,
            at=now,
        )
        if step.corrections is not None:
            write_amendments(
                session.connection(),
                step.corrections.ingest_id,
                (flag.county_id, flag.household_id, flag.round),
                step.corrections.changes,
                by=by,
                role=step.role,
                flag_id=flag_id,
                at=now,
            )
        if step.receipt is not None:
            add_receipt(session.connection(), step.receipt, flag_id, now)
        return StatusChange(flag_id=flag_id, from_status=from_status, to_status=status, version=flag.version)


def _rescore(flag: Flag, rescored: Mapping[str, Any]) -> None:
    """The case's scores from the household scored again (a visit corrected its facts)."""
    (row,) = _flag_rows(pd.DataFrame([dict(rescored)]), allow_unmonitored=True)
    for field in (*_SCORED_FIELDS, *OPTIONAL_FLAG_COLUMNS):
        if field in row:
            setattr(flag, field, row[field])


@dataclass(frozen=True)
class PlannedStep:
    """One case to move on in a batch: to which status, from the version the person saw."""

    flag_id: int
    to_status: str
    expected_version: int | None = None
    note: str | None = None
    details: Mapping[str, Any] | None = None
    notice_ends: datetime | None = None


def set_statuses(engine: Engine, steps: Sequence[PlannedStep], by: str, *, role: str | None = None) -> int:
    """Move several cases on in one transaction (a bulk step, an imported sheet of field decisions):
    every change is written, or none is (`FlagNotFound`, `IllegalTransition` or `FlagConflict` for the
    first that cannot be). Returns how many were moved."""
    for step in steps:
        _check_status_change(step.flag_id, by, step.note)
    now = _now()
    with Session(engine) as session, session.begin():
        for step in steps:
            flag = session.get(Flag, step.flag_id)
            if flag is None:
                raise FlagNotFound(f"no flag with id {step.flag_id}")
            if step.expected_version is not None and step.expected_version != flag.version:
                raise FlagConflict(
                    step.flag_id, step.expected_version, flag.status, flag.version, flag.status
                )
            from_status = flag.status
            _check_transition(from_status, step.to_status)
            flag.status, flag.updated_at = step.to_status, now
            if step.notice_ends is not None:
                flag.notice_ends = step.notice_ends
            session.flush()
            entry = _entry(flag, step.to_status, step.note, role, step.details or {}, from_status)
            _append_history(session, [entry], by=by, at=now)
    return len(steps)


def add_case_note(
    engine: Engine,
    flag_id: int,
    by: str,
    note: str,
    *,
    role: str | None = None,
    details: Mapping[str, Any] | None = None,
    receipt: Receipt | None = None,
) -> None:
    """Record something on a case without moving it on (an objection during the public notice, a
    household's declaration while its case is open, a visit recorded offline that the case had moved
    past): a history row whose status stays what it was, with the `receipt` of the submission."""
    _check_status_change(flag_id, by, note)
    with Session(engine) as session, session.begin():
        flag = session.get(Flag, flag_id)
        if flag is None:
            raise FlagNotFound(f"no flag with id {flag_id}")
        _append_history(
            session,
            [
                {
                    "flag_id": flag_id,
                    "county_id": flag.county_id,
                    "from_status": flag.status,
                    "to_status": flag.status,
                    "note": note,
                    "role": role,
                    "details": None if details is None else json.dumps(dict(details), ensure_ascii=False),
                }
            ],
            by=by,
            at=_now(),
        )
        if receipt is not None:
            add_receipt(session.connection(), receipt, flag_id, _now())


@dataclass(frozen=True)
class OpenedCase:
    """The case a discovery led to: a new one, or the household's case already open."""

    flag_id: int
    created: bool


def open_case(
    engine: Engine,
    flag: Mapping[str, Any],
    channel: str,
    by: str,
    *,
    role: str | None = None,
    note: str | None = None,
    details: Mapping[str, Any] | None = None,
    receipt: Receipt | None = None,
) -> OpenedCase:
    """Open a case found by a person's channel (a declaration, a department's data): `flag` is one row
    of a flag frame (the household scored with what was found). A household never has two open cases:
    when one is open, the discovery is recorded on it instead; a case of the same round closed as not
    at risk is reopened. The `receipt` of the submission that asked for it is kept in the same
    transaction (`DuplicateSubmission`, nothing written, when it was applied already)."""
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r}: one of {', '.join(CHANNELS)}")
    (row,) = _flag_rows(pd.DataFrame([dict(flag)]), allow_unmonitored=True)  # a person asked: visit it
    _check_status_change(1, by, note)
    recorded = {"channel": channel, **(details or {})}
    with Session(engine) as session, session.begin():
        current = (
            session.execute(
                select(Flag)
                .where(
                    Flag.county_id == row["county_id"],
                    Flag.household_id == row["household_id"],
                    (Flag.status.not_in(sorted(CLOSED_STATUSES))) | (Flag.round == row["round"]),
                )
                # an open case first (whatever its round), else the closed case of this round
                .order_by(case((Flag.status.in_(sorted(CLOSED_STATUSES)), 1), else_=0), Flag.round.desc())
            )
            .scalars()
            .first()
        )
        now = _now()
        if current is not None and current.status not in CLOSED_STATUSES:
            _append_history(session, [_entry(current, current.status, note, role, recorded)], by=by, at=now)
            opened = OpenedCase(current.id, created=False)
        elif current is not None:  # closed in this round: reopened by the discovery (re-entry)
            from_status = current.status
            for field in _SCORED_FIELDS:
                setattr(current, field, row[field])
            current.status, current.channel, current.updated_at = INITIAL_STATUS, channel, now
            session.flush()
            _append_history(
                session, [_entry(current, INITIAL_STATUS, note, role, recorded, from_status)], by=by, at=now
            )
            opened = OpenedCase(current.id, created=False)
        else:
            (flag_id,) = _insert_flags(session, [{**row, "channel": channel}], now)
            _append_history(
                session, [_created(flag_id, row["county_id"], note, role, recorded)], by=by, at=now
            )
            opened = OpenedCase(flag_id, created=True)
        if receipt is not None:
            add_receipt(session.connection(), receipt, opened.flag_id, now)
        return opened


def _created(
    flag_id: int,
    county_id: str,
    note: str | None,
    role: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The history row of a case's creation."""
    return {
        "flag_id": flag_id,
        "county_id": county_id,
        "from_status": None,
        "to_status": INITIAL_STATUS,
        "note": note,
        "role": role,
        "details": None if details is None else json.dumps(dict(details), ensure_ascii=False),
    }


def _entry(
    flag: Flag,
    to_status: str,
    note: str | None,
    role: str | None,
    details: Mapping[str, Any],
    from_status: str | None = None,
) -> dict[str, Any]:
    return {
        "flag_id": flag.id,
        "county_id": flag.county_id,
        "from_status": flag.status if from_status is None else from_status,
        "to_status": to_status,
        "note": note,
        "role": role,
        "details": json.dumps(dict(details), ensure_ascii=False),
    }


def _version_and_status(engine: Engine, flag_id: int) -> tuple[int, str]:
    with engine.connect() as connection:
        row = connection.execute(select(Flag.version, Flag.status).where(Flag.id == flag_id)).one_or_none()
    if row is None:
        raise FlagNotFound(f"no flag with id {flag_id}")
    return int(row.version), str(row.status)


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


def _flag_rows(flags: pd.DataFrame, allow_unmonitored: bool = False) -> list[dict[str, Any]]:
    """Plain-Python records of a flag frame, checked for columns and duplicate keys (and, unless a
    person opened the case, that no household in it is unmonitored)."""
    missing = [column for column in FLAG_FRAME_COLUMNS if column not in flags.columns]
    if missing:
        raise ValueError(f"flag frame lacks column(s): {', '.join(missing)}")
    optional = [column for column in OPTIONAL_FLAG_COLUMNS if column in flags.columns]
    columns = [*FLAG_FRAME_COLUMNS, *optional]
    frame = flags.loc[:, columns].rename(columns={"reasons_json": "reasons"})
    frame["county_id"] = flags["county_id"].astype(str) if "county_id" in flags.columns else NO_COUNTY
    unmonitored = frame["category"] == NOT_MONITORED
    if unmonitored.any() and not allow_unmonitored:
        raise ValueError(
            f"flag frame holds {int(unmonitored.sum())} household(s) in category {NOT_MONITORED!r}; "
            "only monitored households are flags (serving.batch.score_round leaves them out)"
        )
    key = ["county_id", "household_id", "round"]
    duplicated = frame.duplicated(subset=key)
    if duplicated.any():
        keys = frame.loc[duplicated, key].head(5).to_records(index=False).tolist()
        raise ValueError(f"flag frame has duplicate (county_id, household_id, round) keys, e.g. {keys}")
    return [
        {
            "county_id": str(row.county_id),
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
            **({MAIN_CAUSE: _optional_str(row.main_cause)} if MAIN_CAUSE in optional else {}),
            **(
                {DATA_COMPLETENESS: _optional_float(row.data_completeness)}
                if DATA_COMPLETENESS in optional
                else {}
            ),
        }
        for row in frame.itertuples(index=False)
    ]


def _existing_flags(
    session: Session, rows: list[dict[str, Any]], fields: tuple[str, ...]
) -> dict[tuple[str, str, int], dict[str, Any]]:
    rounds = sorted({row["round"] for row in rows})
    if not rounds:
        return {}
    counties = sorted({row["county_id"] for row in rows})
    columns = [
        Flag.id,
        Flag.county_id,
        Flag.household_id,
        Flag.round,
        Flag.status,
        *(getattr(Flag, field) for field in fields),
    ]
    result = session.execute(select(*columns).where(Flag.round.in_(rounds), Flag.county_id.in_(counties)))
    return {_flag_key(dict(record._mapping)): dict(record._mapping) for record in result}


def _open_in_other_rounds(session: Session, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(county, household) of the rows' households that have an open case in a round the rows are not of."""
    if not rows:
        return set()
    counties = sorted({row["county_id"] for row in rows})
    rounds = sorted({row["round"] for row in rows})
    result = session.execute(
        select(Flag.county_id, Flag.household_id).where(
            Flag.county_id.in_(counties),
            Flag.round.not_in(rounds),
            Flag.status.not_in(sorted(CLOSED_STATUSES)),
        )
    )
    wanted = {(row["county_id"], row["household_id"]) for row in rows}
    return {(str(county), str(household)) for county, household in result} & wanted


def _plan_upsert(
    rows: list[dict[str, Any]],
    existing: Mapping[tuple[str, str, int], Mapping[str, Any]],
    fields: tuple[str, ...],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Split rows into (inserts, updates of open flags whose scores changed, count left unchanged)."""
    to_insert: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    unchanged = 0
    for row in rows:
        stored = existing.get(_flag_key(row))
        if stored is None:
            to_insert.append(row)
        elif stored["status"] == INITIAL_STATUS and _scores_differ(row, stored, fields):
            to_update.append({**row, "flag_id": stored["id"]})
        else:
            unchanged += 1
    return to_insert, to_update, unchanged


def _scores_differ(row: Mapping[str, Any], stored: Mapping[str, Any], fields: tuple[str, ...]) -> bool:
    for field in fields:
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
    # render_nulls: the ORM would otherwise leave out a row's None values and split the rows into one
    # statement per run of equal None patterns (a flag without a tier among flags with one), which made
    # 52,000 flags take 39 s instead of 3 s
    statement = insert(Flag).execution_options(render_nulls=True)
    result = session.execute(statement.returning(Flag.id, sort_by_parameter_order=True), records)
    return [int(flag_id) for flag_id in result.scalars()]


def _update_open_flags(
    session: Session, rows: list[dict[str, Any]], fields: tuple[str, ...], now: datetime
) -> int:
    """Update flags still "flagged"; the status guard keeps a decision taken meanwhile untouched."""
    if not rows:
        return 0
    table = cast(Table, Flag.__table__)
    statement = (
        update(table)
        .where(table.c.id == bindparam("flag_id"), table.c.status == INITIAL_STATUS)
        .values(
            **{field: bindparam(f"new_{field}") for field in fields},
            updated_at=now,
            version=table.c.version + 1,
        )
    )
    parameters = [
        {"flag_id": row["flag_id"], **{f"new_{field}": row[field] for field in fields}} for row in rows
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


TRUSTED_ROLES = ("monitor", "analyst")
"""Key roles whose audit records say where a household lives: county-wide staff, who are not checked
against a village. A cadre's own request is never evidence of where a household lives (she could
otherwise claim a household for her village before its own cadre scores it)."""


def known_villages(engine: Engine, household_ids: Iterable[str]) -> dict[str, str]:
    """Where each household is known to live, for those povrisk has seen: the village of its flag in
    the latest round it was flagged (batch scoring of the survey), else the village of its latest audit
    record made by a county-wide key (`TRUSTED_ROLES`). Households seen nowhere are absent.

    The household register (one record of every round) will replace both sources."""
    wanted = sorted(set(household_ids))
    if not wanted:
        return {}
    flagged = (
        select(Flag.household_id, Flag.village_id)
        .where(Flag.household_id.in_(wanted))
        .order_by(Flag.household_id, Flag.round.desc(), Flag.id.desc())
    )
    audited = (
        select(ScoreAudit.household_id, ScoreAudit.village_id)
        .where(ScoreAudit.household_id.in_(wanted), ScoreAudit.key_role.in_(TRUSTED_ROLES))
        .order_by(ScoreAudit.household_id, ScoreAudit.id.desc())
    )
    villages: dict[str, str] = {}
    with engine.connect() as connection:
        for household_id, village_id in connection.execute(flagged):
            villages.setdefault(household_id, village_id)
        missing = [household_id for household_id in wanted if household_id not in villages]
        if missing:
            for household_id, village_id in connection.execute(
                audited.where(ScoreAudit.household_id.in_(missing))
            ):
                villages.setdefault(household_id, village_id)
    return villages
