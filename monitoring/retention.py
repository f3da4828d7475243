"""Retention of the audit trail as policy data (`monitoring/retention.yaml`), and applying it.

Under load the service writes a row per household scored (a probe measured ~146 MB a minute on
PostgreSQL). The policy keeps every score for `keep_every_score_days`; older scores are compacted to one
row per household and day (UTC): the day's last score, with `compacted_scores` counting the scores it
stands for; compacted rows older than `delete_after_days` (when set) are deleted. `apply_retention` does
it in one transaction (a run interrupted half-way leaves the trail as it was), and a second run changes
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Engine, Integer, bindparam, delete, func, select, update
from sqlalchemy.sql.elements import ColumnElement

from store.cases import ScoreAudit

RETENTION_FILE = Path(__file__).with_name("retention.yaml")


class RetentionError(ValueError):
    """The retention file is missing, unreadable or malformed (the message says what)."""


class AuditRetention(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_every_score_days: int = Field(ge=1, le=36_500)
    delete_after_days: int | None = Field(default=None, ge=1, le=36_500)

    @model_validator(mode="after")
    def _delete_after_keeping(self) -> AuditRetention:
        if self.delete_after_days is not None and self.delete_after_days <= self.keep_every_score_days:
            raise ValueError("delete_after_days must be longer than keep_every_score_days")
        return self


class RetentionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    audit: AuditRetention


def load_retention(path: Path | None = None) -> RetentionPolicy:
    path = path or RETENTION_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise RetentionError(f"{path}: cannot read the retention policy ({error})") from error
    try:
        return RetentionPolicy.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors(include_input=False)
        )
        raise RetentionError(f"{path}: {problems}") from error


@dataclass(frozen=True)
class RetentionResult:
    """What applying the policy did (or, in a dry run, would do)."""

    days_compacted: int
    rows_compacted: int
    """Rows removed by compaction (folded into their day's last row)."""
    rows_deleted: int
    """Compacted rows removed for being older than delete_after_days."""
    rows_left: int
    compact_before: str
    delete_before: str | None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def apply_retention(
    engine: Engine, policy: AuditRetention, now: datetime | None = None, dry_run: bool = False
) -> RetentionResult:
    """Compact and delete what the policy says is due, in one transaction (module docstring)."""
    now = now or datetime.now(UTC)
    compact_before = _day_start(now.date() - timedelta(days=policy.keep_every_score_days))
    delete_before = (
        None
        if policy.delete_after_days is None
        else _day_start(now.date() - timedelta(days=policy.delete_after_days))
    )
    day = _day_of(engine)
    compacted = deleted = days = 0
    with engine.begin() as connection:
        if delete_before is not None:
            deleted = _count(connection, ScoreAudit.scored_at < delete_before)
            if not dry_run:
                connection.execute(delete(ScoreAudit).where(ScoreAudit.scored_at < delete_before))
        due = ScoreAudit.scored_at < compact_before
        if delete_before is not None:  # what is deleted is not also compacted (a dry run counts alike)
            due = due & (ScoreAudit.scored_at >= delete_before)
        groups = (
            select(
                func.max(ScoreAudit.id).label("keep"),
                func.count().label("rows"),
                func.sum(func.coalesce(ScoreAudit.compacted_scores, 1)).label("scores"),
                day.label("day"),
            )
            .where(due)
            .group_by(ScoreAudit.household_id, day)
            .having(func.count() > 1)
        )
        folded = connection.execute(groups).fetchall()
        compacted = sum(int(group.rows) - 1 for group in folded)
        days = len({str(group.day) for group in folded})
        if folded and not dry_run:
            connection.execute(
                update(ScoreAudit)
                .where(ScoreAudit.id == bindparam("keep"))
                .values(compacted_scores=bindparam("scores", type_=Integer)),
                [{"keep": int(group.keep), "scores": int(group.scores)} for group in folded],
            )
            last_of_day = select(func.max(ScoreAudit.id)).where(due).group_by(ScoreAudit.household_id, day)
            connection.execute(
                delete(ScoreAudit).where(due, ScoreAudit.id.not_in(last_of_day.scalar_subquery()))
            )
        left = _count(connection, None) - (compacted + deleted if dry_run else 0)
    return RetentionResult(
        days_compacted=days,
        rows_compacted=compacted,
        rows_deleted=deleted,
        rows_left=left,
        compact_before=compact_before.isoformat(),
        delete_before=delete_before.isoformat() if delete_before else None,
    )


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _day_of(engine: Engine) -> ColumnElement[Any]:
    """The UTC calendar day of a score, in the database's own SQL."""
    if engine.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", ScoreAudit.scored_at))
    return func.date(ScoreAudit.scored_at)  # SQLite: text with its offset; date() reads it in UTC


def _count(connection: Any, condition: ColumnElement[bool] | None) -> int:
    query = select(func.count()).select_from(ScoreAudit)
    if condition is not None:
        query = query.where(condition)
    return int(connection.execute(query).scalar_one())
