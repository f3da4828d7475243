"""What the pages show of cases: each case's steps so far (who, in which role, when, what), its dates
(identification deadline, public notice), and the steps the reader's role may take on it now."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from features.policy import ProcedureDeadlines
from monitoring.procedure import (
    FINAL_STATUSES,
    NOTICE_STATUSES,
    CaseState,
    StepRefused,
    days_over,
    identification_due,
    procedure_steps,
    steps_open_to,
)
from store.cases import SYSTEM_ACTOR
from survey.catalogue import Language, label, message
from workbench.corrections import correction_sentences

OBJECTION = "objection"
SUPERSEDED = "offline_superseded"
"""A step recorded offline that the case had moved past, kept on the case as a note (the person chose)."""
STEP_LABELLED = frozenset(procedure_steps()) | {OBJECTION, "declaration"}
"""Step names the catalogue has a label for (`step.<name>`)."""
"""The kind of note recorded on a case during its public notice."""


@dataclass(frozen=True)
class StepAction:
    """A step the reader may take: its name (the form's value), label, whether it needs a note, and why
    it must wait (empty when it can be taken now)."""

    name: str
    label: str
    note_required: bool
    waits: str


@dataclass(frozen=True)
class CaseView:
    flag_id: int
    version: int
    status: str
    heading: str
    channel: str
    dates: list[str]
    overdue: bool
    steps: list[str]
    actions: list[StepAction]
    waiting: str
    takes_objections: bool


def case_state(case: Mapping[Any, Any]) -> CaseState:
    return CaseState(
        status=str(case["status"]),
        discovered_at=aware(case["created_at"]),
        notice_ends=None if _missing(case.get("notice_ends")) else aware(case["notice_ends"]),
    )


def case_views(
    cases: pd.DataFrame,
    history: pd.DataFrame,
    role: str,
    now: datetime,
    deadlines: ProcedureDeadlines,
    lang: Language,
) -> list[CaseView]:
    """Every case of a household, latest round first."""
    zone = ZoneInfo(deadlines.timezone)
    views = []
    for case in cases.sort_values("round", ascending=False).to_dict("records"):
        steps = history[history["flag_id"] == case["id"]] if len(history) else history
        views.append(_case_view(case, steps, role, now, deadlines, lang, zone))
    return views


def _case_view(
    case: Mapping[Any, Any],
    steps: pd.DataFrame,
    role: str,
    now: datetime,
    deadlines: ProcedureDeadlines,
    lang: Language,
    zone: ZoneInfo,
) -> CaseView:
    state = case_state(case)
    over = days_over(identification_due(state, deadlines), now, deadlines)
    return CaseView(
        flag_id=int(case["id"]),
        version=int(case["version"]),
        status=state.status,
        heading=message(
            "page.case_round",
            lang,
            round=case["round"],
            category=label("category", str(case["category"]), lang),
            status=label("status", state.status, lang),
        ),
        channel=message(
            "procedure.channel_line",
            lang,
            channel=label("channel", str(case.get("channel") or "model"), lang),
        ),
        dates=_dates(state, deadlines, lang, zone, over),
        overdue=over is not None and over > 0,
        steps=[step_text(step, lang, zone) for step in steps.to_dict("records")],
        actions=[
            StepAction(
                name=step.name,
                label=label("step", step.name, lang),
                note_required=step.note_required,
                waits=_waits(step.after_notice, state, now, lang, zone),
            )
            for step in steps_open_to(role, state)
        ],
        waiting=_waiting_for(state, role, lang),
        takes_objections=state.status in NOTICE_STATUSES,
    )


def next_step_text(case: Mapping[Any, Any], role: str, now: datetime, lang: Language) -> tuple[str, bool]:
    """For a worklist line: where the case stands (and who it waits for, when not the reader), and
    whether the reader's role can move it on now."""
    state = case_state(case)
    ready = [
        step for step in steps_open_to(role, state) if not (step.after_notice and _notice_running(state, now))
    ]
    where = label("status", state.status, lang)
    waiting = "" if ready else _waiting_for(state, role, lang)
    return (f"{where} · {waiting}" if waiting else where), bool(ready)


def _dates(
    state: CaseState, deadlines: ProcedureDeadlines, lang: Language, zone: ZoneInfo, over: int | None
) -> list[str]:
    dates = []
    due = identification_due(state, deadlines)
    if due is not None and over is not None:
        text = message("procedure.identification_due", lang, due=_day(due, zone))
        if over > 0:
            text += " · " + message("page.overdue_days", lang, days=over)
        dates.append(text)
    if state.status in NOTICE_STATUSES and state.notice_ends is not None:
        start = state.notice_ends - timedelta(days=deadlines.public_notice_days)
        last = state.notice_ends - timedelta(seconds=1)
        dates.append(message("procedure.notice_period", lang, start=_day(start, zone), end=_day(last, zone)))
    return dates


def _waits(after_notice: bool, state: CaseState, now: datetime, lang: Language, zone: ZoneInfo) -> str:
    if after_notice and _notice_running(state, now):
        ends = "" if state.notice_ends is None else when(state.notice_ends, zone)
        return message("procedure.waits_for_notice", lang, ends=ends)
    return ""


def _notice_running(state: CaseState, now: datetime) -> bool:
    return state.notice_ends is None or aware(now) < state.notice_ends


def _waiting_for(state: CaseState, role: str, lang: Language) -> str:
    """Who the case waits for, when the reader's role has no step on it."""
    if state.status in FINAL_STATUSES and state.status != "rejected":
        return ""
    roles = sorted(
        {r for step in procedure_steps().values() if step.from_status == state.status for r in step.roles}
    )
    if not roles or role in roles:
        return ""
    names = ("、" if lang == "zh" else " or ").join(label("role", r, lang) for r in roles)
    return message("procedure.waiting_for", lang, role=names)


def step_text(step: Mapping[Any, Any], lang: Language, zone: ZoneInfo) -> str:
    """One history row in words: when, who (in which role), the step taken, and the person's note."""
    details = _details(step.get("details"))
    system = step["by"] == SYSTEM_ACTOR
    if _missing(step["from_status"]):
        channel = details.get("channel")
        what = (
            message("page.history_created", lang)
            if channel in (None, "model")
            else label("channel", channel, lang)
        )
    elif step["from_status"] == step["to_status"] and details.get("kind") == SUPERSEDED:
        what = message("offline.history_superseded", lang, step=label("step", str(details.get("step")), lang))
    elif step["from_status"] == step["to_status"]:
        kind = OBJECTION if details.get("kind") == OBJECTION else None
        what = (
            label("step", kind, lang)
            if kind
            else label("channel", str(details.get("channel", "declaration")), lang)
        )
    elif details.get("step") in procedure_steps():
        what = label("step", str(details["step"]), lang)
    else:
        what = label("status", str(step["to_status"]), lang)
    note = step.get("note")
    if not system and not _missing(note) and str(note).strip():
        what = f"{what}（{note}）" if lang == "zh" else f"{what} ({note})"
    what += _visit_findings(details, lang)
    recorded_offline = details.get("recorded_offline")
    if isinstance(recorded_offline, str):
        with suppress(ValueError):
            what += message(
                "offline.history_offline", lang, at=when(datetime.fromisoformat(recorded_offline), zone)
            )
    by = message("page.actor_batch_scoring", lang) if system else str(step["by"])
    role = step.get("role")
    if not _missing(role) and role:
        role_text = label("role", str(role), lang)
        by = f"{by}（{role_text}）" if lang == "zh" else f"{by} ({role_text})"
    return message("page.history_by", lang, at=when(step["at"], zone), by=by, step=what)


def _visit_findings(details: Mapping[str, Any], lang: Language) -> str:
    """What a visit corrected in the register and the scores it gave, as sentences after the step."""
    corrected = details.get("corrected")
    if not isinstance(corrected, list) or not corrected:
        return ""
    separator = "；" if lang == "zh" else "; "
    text = message("visit.corrected", lang, changes=separator.join(correction_sentences(corrected, lang)))
    rescored = details.get("rescored")
    if isinstance(rescored, dict):
        risks = {
            f"{name}_{when_}": "—" if value is None else f"{float(value):.2f}"
            for name in ("poverty", "relapse")
            for when_, value in zip(
                ("before", "after"), rescored.get(f"{name}_risk", (None, None)), strict=True
            )
        }
        text += separator + message("visit.rescored", lang, **risks)
    return ("。" if lang == "zh" else ". ") + text


def _details(value: Any) -> dict[str, Any]:
    if _missing(value):
        return {}
    try:
        parsed = json.loads(str(value))
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def _day(value: datetime, zone: ZoneInfo) -> str:
    return aware(value).astimezone(zone).strftime("%Y-%m-%d")


def when(value: object, zone: ZoneInfo) -> str:
    """A stored time as a person reads it, in the policy's zone."""
    if isinstance(value, datetime):
        return aware(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return str(value)


def aware(value: Any) -> datetime:
    """A stored time as an aware datetime (SQLite gives naive ones back; they were written in UTC)."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def refusal_text(
    refused: StepRefused,
    step_name: str,
    status: str,
    role: str,
    lang: Language,
    deadlines: ProcedureDeadlines,
) -> str:
    """Why a step was refused, in the reader's words (no code of a step, status or role)."""
    ends = refused.values.get("ends")
    return message(
        refused.reason,
        lang,
        step=label("step", step_name, lang) if step_name in STEP_LABELLED else step_name,
        status=label("status", status, lang),
        role=label("role", role, lang),
        ends="" if ends is None else _local_time(ends, deadlines),
    )


def _local_time(value: datetime, deadlines: ProcedureDeadlines) -> str:
    return aware(value).astimezone(ZoneInfo(deadlines.timezone)).strftime("%Y-%m-%d %H:%M")
