"""The monitoring procedure: which step a person may take on a case, and when.

Discovery (the model's flags, a household's own declaration, a department's data) -> household visit and
asset check -> village democratic review -> public notice in the village (objections recorded) ->
township review -> county approval -> monitored, with assistance recorded -> risk elimination (proposed,
visited, reviewed, noticed, approved), or closed as not at risk (rejected, which a township or the county
may reopen with a reason). The steps and who may take them are data (`monitoring/procedure.yaml`); the
statuses and transitions are the store's (`store.cases.ALLOWED_TRANSITIONS`), so that no path around this
module can write a transition the procedure does not have. Pure: the caller reads the case and the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import yaml

from features.policy import ProcedureDeadlines
from store.accounts import ROLES
from store.cases import ALLOWED_TRANSITIONS, CLOSED_STATUSES

PROCEDURE_FILE = Path(__file__).with_name("procedure.yaml")
IDENTIFICATION_STATUSES = frozenset(
    {"flagged", "verified", "village_reviewed", "notice_running", "township_reviewed"}
)
"""From discovery to county approval: the identification deadline runs while a case is in one of these."""
NOTICE_STATUSES = frozenset({"notice_running", "elimination_notice"})
FINAL_STATUSES = CLOSED_STATUSES
"""Cases in these need nothing more (either can still be reopened, with a reason)."""


class StepRefused(ValueError):
    """A step that may not be taken now; the message says why, for the person who tried."""

    def __init__(self, reason: str, **values: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


@dataclass(frozen=True)
class Step:
    name: str
    from_status: str
    to_status: str
    roles: frozenset[str]
    after_notice: bool = False
    starts_notice: bool = False
    note_required: bool = False


@cache
def procedure_steps() -> Mapping[str, Step]:
    """The steps of `monitoring/procedure.yaml`, checked against the store's transitions and roles."""
    with PROCEDURE_FILE.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)["steps"]
    steps = {}
    for name, entry in raw.items():
        step = Step(
            name=name,
            from_status=entry["from"],
            to_status=entry["to"],
            roles=frozenset(entry["roles"]),
            after_notice=bool(entry.get("after_notice", False)),
            starts_notice=bool(entry.get("starts_notice", False)),
            note_required=bool(entry.get("note_required", False)),
        )
        if step.to_status not in ALLOWED_TRANSITIONS.get(step.from_status, frozenset()):
            raise ValueError(
                f"{PROCEDURE_FILE}: step {name} moves {step.from_status} -> {step.to_status}, "
                "which the store does not allow"
            )
        unknown = step.roles - set(ROLES)
        if unknown:
            raise ValueError(f"{PROCEDURE_FILE}: step {name} names unknown role(s) {sorted(unknown)}")
        steps[name] = step
    return steps


@dataclass(frozen=True)
class CaseState:
    """What the procedure needs to know of a case."""

    status: str
    discovered_at: datetime
    notice_ends: datetime | None


def steps_open_to(role: str, case: CaseState) -> list[Step]:
    """The steps `role` may take on the case in its status (timing not checked: see `check_step`)."""
    return [
        step for step in procedure_steps().values() if step.from_status == case.status and role in step.roles
    ]


def check_step(step_name: str, role: str, case: CaseState, note: str | None, now: datetime) -> Step:
    """The step, when `role` may take it on the case now; otherwise `StepRefused` with the reason
    (a message name of the catalogue, `procedure.refused_*`, and its values)."""
    step = procedure_steps().get(step_name)
    if step is None:
        raise StepRefused("procedure.refused_unknown_step", step=step_name)
    if step.from_status != case.status:
        raise StepRefused("procedure.refused_out_of_order", step=step.name, status=case.status)
    if role not in step.roles:
        raise StepRefused("procedure.refused_role", step=step.name, role=role)
    if step.note_required and not (note or "").strip():
        raise StepRefused("procedure.refused_no_note", step=step.name)
    if step.after_notice and (case.notice_ends is None or _aware(now) < _aware(case.notice_ends)):
        raise StepRefused("procedure.refused_notice_running", step=step.name, ends=case.notice_ends)
    return step


def notice_end(started: datetime, deadlines: ProcedureDeadlines) -> datetime:
    """When a notice started at `started` has run its days: the end of its last day, in the policy's zone
    (a 5-day notice started on the 1st runs to the end of the 5th)."""
    zone = ZoneInfo(deadlines.timezone)
    first_day = _aware(started).astimezone(zone).date()
    last_day = first_day + timedelta(days=deadlines.public_notice_days - 1)
    return datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(UTC)


def identification_due(case: CaseState, deadlines: ProcedureDeadlines) -> datetime | None:
    """When identification is due (discovery + identification_days), while the case is being identified."""
    if case.status not in IDENTIFICATION_STATUSES:
        return None
    return _aware(case.discovered_at) + timedelta(days=deadlines.identification_days)


def days_over(due: datetime | None, now: datetime, deadlines: ProcedureDeadlines) -> int | None:
    """Whole days past `due`, counted in the policy's zone (negative: days left; None: no deadline)."""
    if due is None:
        return None
    zone = ZoneInfo(deadlines.timezone)
    return (_aware(now).astimezone(zone).date() - _aware(due).astimezone(zone).date()).days


def identification_deadlines(
    discovered_at: pd.Series, status: pd.Series, now: datetime, deadlines: ProcedureDeadlines
) -> pd.DataFrame:
    """`identification_due` and `days_over` for many cases at once (a county's tens of thousands):
    columns `due` (the due day in the policy's zone, NaT where identification is over) and `days_over`
    (whole days past it, negative: days left; missing where there is no deadline)."""
    created = pd.to_datetime(discovered_at, utc=True)
    identifying = status.isin(list(IDENTIFICATION_STATUSES)).to_numpy()
    due = (created + pd.Timedelta(days=deadlines.identification_days)).dt.tz_convert(deadlines.timezone)
    today = pd.Timestamp(_aware(now)).tz_convert(deadlines.timezone).normalize()
    over = (today - due.dt.normalize()).dt.days
    return pd.DataFrame(
        {"due": due.where(identifying), "days_over": over.where(identifying).astype("Int64")},
        index=discovered_at.index,
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DeclaredEvent:
    """What a declared event changes in the household's latest row: a shock, and an expense the
    declared amount adds to."""

    name: str
    shock: str
    expense: str | None = None


@cache
def declared_events() -> Mapping[str, DeclaredEvent]:
    with PROCEDURE_FILE.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)["declared_events"]
    return {
        name: DeclaredEvent(name=name, shock=entry["shock"], expense=entry.get("expense"))
        for name, entry in raw.items()
    }


def declared_changes(event: str, amount: float | None, latest: Mapping[str, Any]) -> dict[str, Any]:
    """The household fields a declaration changes: its shock set, and the declared amount added to the
    expense the event names (to what the latest row holds; an unknown expense counts as 0)."""
    declared = declared_events()[event]
    changes: dict[str, Any] = {declared.shock: True}
    if declared.expense is not None and amount:
        before = latest.get(declared.expense)
        known = 0.0 if before is None or (isinstance(before, float) and before != before) else float(before)
        changes[declared.expense] = known + float(amount)
    return changes


@dataclass(frozen=True)
class VisitCorrections:
    """Which steps are visits, and which fields of the household's and its members' rows a visit may
    correct in the register."""

    steps: frozenset[str]
    household: tuple[str, ...]
    member: tuple[str, ...]


@cache
def visit_corrections() -> VisitCorrections:
    with PROCEDURE_FILE.open(encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)["visit_corrections"]
    unknown = set(raw["steps"]) - set(procedure_steps())
    if unknown:
        raise ValueError(f"{PROCEDURE_FILE}: visit_corrections names unknown step(s) {sorted(unknown)}")
    return VisitCorrections(
        steps=frozenset(raw["steps"]), household=tuple(raw["household"]), member=tuple(raw["member"])
    )
