"""Several cases moved one step at once: selected on the worklist, or a sheet of field decisions
(household, step, note) typed up after a round of visits. Every request is checked first (the case, the
step, the role, the order, the note, the notice); only when all pass is anything written, in one
transaction (`store.cases.set_statuses`). Pure: the caller reads the cases and writes the plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from features.policy import ProcedureDeadlines
from monitoring.procedure import StepRefused, check_step, notice_end, procedure_steps
from store.cases import PlannedStep
from survey.catalogue import LANGUAGES, Language, label, message
from workbench.case_views import case_state, refusal_text
from workbench.pushes import with_column_names

SHEET_COLUMNS = {
    "household_id": ("household_id", "户编号"),
    "step": ("step", "步骤"),
    "note": ("note", "说明"),
}


@dataclass(frozen=True)
class StepRequest:
    """One case to move: by its id (a worklist selection) or its household (a sheet), and where."""

    step: str
    note: str = ""
    flag_id: int | None = None
    household_id: str | None = None
    line: int | None = None


def step_names() -> dict[str, str]:
    """Every way to name a step (its code, its label in either language; lower case) -> its code."""
    names = {}
    for code in procedure_steps():
        names[code] = code
        for lang in LANGUAGES:
            names[label("step", code, lang).lower()] = code
    return names


def plan_steps(
    requests: Sequence[StepRequest],
    cases: pd.DataFrame,
    role: str,
    now: datetime,
    deadlines: ProcedureDeadlines,
    lang: Language,
    via: str,
) -> tuple[list[PlannedStep], list[str]]:
    """The steps to write and, for each request that cannot be taken, why (then nothing is written).
    `cases`: the open cases of the reader's area (`store.cases.list_flags`)."""
    by_id = {int(case["id"]): case for case in cases.to_dict("records")}
    by_household = {str(case["household_id"]): case for case in cases.sort_values("round").to_dict("records")}
    names = step_names()
    planned: list[PlannedStep] = []
    problems: list[str] = []
    seen: set[int] = set()
    for request in requests:
        where = _where(request, lang)
        case = (
            by_id.get(request.flag_id)
            if request.flag_id is not None
            else by_household.get(request.household_id or "")
        )
        if case is None:
            problems.append(where + message("bulk.no_case", lang))
            continue
        code = names.get(request.step.strip().lower(), request.step.strip())
        try:
            step = check_step(code, role, case_state(case), request.note or None, now)
        except StepRefused as refused:
            problems.append(where + refusal_text(refused, code, str(case["status"]), role, lang, deadlines))
            continue
        if int(case["id"]) in seen:
            problems.append(where + message("bulk.twice", lang))
            continue
        seen.add(int(case["id"]))
        planned.append(
            PlannedStep(
                flag_id=int(case["id"]),
                to_status=step.to_status,
                expected_version=int(case["version"]),
                note=request.note or None,
                details={"step": step.name, "via": via},
                notice_ends=notice_end(now, deadlines) if step.starts_notice else None,
            )
        )
    return planned, problems


def sheet_requests(table: pd.DataFrame) -> list[StepRequest]:
    """The requests of a sheet of field decisions (columns named in Chinese or English)."""
    table = with_column_names(table, SHEET_COLUMNS)
    missing = [name for name in ("household_id", "step") if name not in table.columns]
    if missing:
        raise ValueError(", ".join(f"{SHEET_COLUMNS[name][1]}/{name}" for name in missing))
    return [
        StepRequest(
            step=str(row.get("step", "")),
            note=str(row.get("note", "") or "").strip(),
            household_id=str(row.get("household_id", "")).strip(),
            line=position + 2,
        )
        for position, row in enumerate(table.fillna("").to_dict("records"))
    ]


def _where(request: StepRequest, lang: Language) -> str:
    if request.line is not None:
        return message("push.line", lang, line=request.line, problems="")
    return f"{request.household_id or request.flag_id}{'：' if lang == 'zh' else ': '}"
