"""What each page shows, as plain data: built from the store's frames and the scores, no I/O here.

Every text a person reads comes from the message catalogue (`survey.catalogue`) in the reader's
language; codes (categories, statuses, tiers) never reach a page as they are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from features.policy import ProcedureDeadlines
from serving.schemas import ScoreResponse
from store.cases import SYSTEM_ACTOR
from survey.catalogue import Language, label, message
from workbench.chart import ChartText, risk_chart

OPEN_STATUSES = ("flagged", "verified", "assisted")
"""Cases that still need someone: awaiting a visit, assistance to decide, being assisted."""
AWAITING_IDENTIFICATION = "flagged"
"""The status whose deadline is the identification deadline (discovery + identification_days)."""


@dataclass(frozen=True)
class WorkItem:
    county_id: str
    household_id: str
    village_id: str
    round: int
    category: str
    tier: str
    status: str
    poverty_risk: float | None
    relapse_risk: float | None
    deadline: str
    days_over: int | None
    """Days past the deadline (None: no deadline, or not past it)."""

    @property
    def overdue(self) -> bool:
        return self.days_over is not None


WORKLIST_PAGE = 100
"""Households listed per page (a county's worklist holds tens of thousands; search finds any one)."""


@dataclass(frozen=True)
class Worklist:
    items: list[WorkItem]
    open_count: int
    overdue_count: int
    by_status: list[tuple[str, int]]
    page: int
    pages: int


def worklist(
    flags: pd.DataFrame, now: datetime, deadlines: ProcedureDeadlines, lang: Language, page: int = 1
) -> Worklist:
    """Open cases, overdue first (most days over first), then by risk (the higher of the two risks),
    highest first; the items of one page (`WORKLIST_PAGE` a page, pages from 1)."""
    items = [_work_item(row, now, deadlines, lang) for row in flags.to_dict("records")]
    items.sort(key=lambda item: (-(item.days_over or -1), -_highest_risk(item), item.household_id))
    counts = flags["status"].value_counts() if len(flags) else pd.Series(dtype=int)
    pages = max(1, -(-len(items) // WORKLIST_PAGE))
    page = min(max(page, 1), pages)
    return Worklist(
        items=items[(page - 1) * WORKLIST_PAGE : page * WORKLIST_PAGE],
        open_count=len(items),
        overdue_count=sum(item.overdue for item in items),
        by_status=[(label("status", status, lang), int(counts.get(status, 0))) for status in OPEN_STATUSES],
        page=page,
        pages=pages,
    )


def _work_item(
    row: Mapping[Any, Any], now: datetime, deadlines: ProcedureDeadlines, lang: Language
) -> WorkItem:
    status = str(row["status"])
    deadline_text, days_over = "", None
    if status == AWAITING_IDENTIFICATION:
        zone = ZoneInfo(deadlines.timezone)
        due = _aware(row["created_at"]) + timedelta(days=deadlines.identification_days)
        left = (due.astimezone(zone).date() - now.astimezone(zone).date()).days
        if left < 0:
            days_over = -left
            deadline_text = message("page.overdue_days", lang, days=-left)
        else:
            deadline_text = message("page.days_left", lang, days=left)
    return WorkItem(
        county_id=str(row["county_id"]),
        household_id=str(row["household_id"]),
        village_id=str(row["village_id"]),
        round=int(row["round"]),  # type: ignore[call-overload]
        category=label("category", str(row["category"]), lang),
        tier=tier_text(_text_or_none(row["risk_tier"]), lang),
        status=label("status", status, lang),
        poverty_risk=_number(row["poverty_risk"]),
        relapse_risk=_number(row["relapse_risk"]),
        deadline=deadline_text,
        days_over=days_over,
    )


def _highest_risk(item: WorkItem) -> float:
    return max(item.poverty_risk or 0.0, item.relapse_risk or 0.0)


def tier_text(tier: str | None, lang: Language) -> str:
    return label("tier", tier or "none", lang)


@dataclass(frozen=True)
class RiskView:
    title: str
    value: str
    words: str


@dataclass(frozen=True)
class CaseView:
    heading: str
    steps: list[str]


@dataclass(frozen=True)
class HouseholdView:
    county_id: str
    household_id: str
    village_id: str
    round: int
    heading: str
    risks: list[RiskView]
    tier: str
    category: str
    rule: str
    completeness: str
    missing: str
    reasons: list[str]
    main_cause: str
    secondary_causes: str
    measures: list[tuple[str, str]]
    chart_svg: str
    rounds_table: list[tuple[str, str, str, str]]
    cases: list[CaseView]
    viewers: list[str]


def household_view(
    scores: Sequence[ScoreResponse],
    cases: pd.DataFrame,
    history: pd.DataFrame,
    viewers: pd.DataFrame,
    village_id: str,
    lang: Language,
    zone: ZoneInfo,
) -> HouseholdView:
    """The household page: `scores` are its rounds scored from the register (earliest first; the last
    is now), `cases` its flags, `history` their steps, `viewers` the access log of the page; times
    are shown in `zone`."""
    now = scores[-1]
    county = now.county_id or ""
    return HouseholdView(
        county_id=county,
        household_id=now.household_id,
        village_id=village_id,
        round=int(now.round or 0),
        heading=message("page.households_of", lang, county=county, village=village_id, round=now.round),
        risks=[
            _risk_view(message("page.poverty_risk", lang), now.poverty_risk, lang),
            _risk_view(message("page.relapse_risk", lang), now.relapse_risk, lang),
        ],
        tier=tier_text(now.risk_tier, lang),
        category=label("category", now.category, lang),
        rule=now.category_rule,
        completeness=""
        if now.data_completeness is None
        else message("page.data_completeness", lang, share=now.data_completeness),
        missing=""
        if not now.missing_blocks
        else message("page.missing_data", lang, blocks="、".join(b.label for b in now.missing_blocks)),
        reasons=[reason.sentence for reason in now.reasons],
        main_cause=now.main_cause.label,
        secondary_causes="、".join(cause.label for cause in now.secondary_causes)
        if lang == "zh"
        else ", ".join(cause.label for cause in now.secondary_causes),
        measures=[(measure.name, measure.why) for measure in now.measures],
        chart_svg=_chart(scores, lang),
        rounds_table=[
            (
                message("page.round_n", lang, round=score.round),
                _percent(score.poverty_risk, lang),
                _percent(score.relapse_risk, lang),
                _ratio(score.income_to_line_ratio, lang),
            )
            for score in scores
        ],
        cases=_cases(cases, history, lang, zone),
        viewers=[
            message("page.audit_entry", lang, at=_when(row["at"], zone), user=row["user_id"])
            for row in viewers.to_dict("records")
        ],
    )


def _risk_view(title: str, risk: float | None, lang: Language) -> RiskView:
    if risk is None:
        return RiskView(title, message("page.unknown", lang), "")
    per_hundred = max(0, min(100, round(risk * 100)))
    return RiskView(title, f"{risk:.2f}", message("page.risk_words", lang, per_hundred=per_hundred))


def _chart(scores: Sequence[ScoreResponse], lang: Language) -> str:
    rounds = [int(score.round or 0) for score in scores]
    text = ChartText(
        title=message("page.chart_alt", lang, first=rounds[0], last=rounds[-1]),
        poverty=message("page.chart_poverty", lang),
        relapse=message("page.chart_relapse", lang),
        ratio=message("page.chart_ratio", lang),
        round_label=message("page.round_n", lang, round="{round}"),
    )
    return risk_chart(
        rounds,
        [score.poverty_risk for score in scores],
        [score.relapse_risk for score in scores],
        [score.income_to_line_ratio for score in scores],
        text,
    )


def _cases(cases: pd.DataFrame, history: pd.DataFrame, lang: Language, zone: ZoneInfo) -> list[CaseView]:
    """Every case of the household, latest round first, each with its steps (who, when, what)."""
    views = []
    for case in cases.sort_values("round", ascending=False).to_dict("records"):
        steps = history[history["flag_id"] == case["id"]] if len(history) else history
        heading = message(
            "page.case_round",
            lang,
            round=case["round"],
            category=label("category", str(case["category"]), lang),
            status=label("status", str(case["status"]), lang),
        )
        views.append(CaseView(heading, [_step(step, lang, zone) for step in steps.to_dict("records")]))
    return views


def _step(step: Mapping[Any, Any], lang: Language, zone: ZoneInfo) -> str:
    what = (
        message("page.history_created", lang)
        if step["from_status"] is None
        else label("status", str(step["to_status"]), lang)
    )
    note = step.get("note")
    if step["from_status"] is not None and note:
        what = f"{what}（{note}）" if lang == "zh" else f"{what} ({note})"
    by = message("page.actor_batch_scoring", lang) if step["by"] == SYSTEM_ACTOR else step["by"]
    return message("page.history_by", lang, at=_when(step["at"], zone), by=by, step=what)


def reasons_of(flag_reasons: str) -> list[str]:
    """The sentences of a flag's stored reasons (JSON), for lists built from the flag store."""
    try:
        return [str(reason["sentence"]) for reason in json.loads(flag_reasons)]
    except (ValueError, TypeError, KeyError):
        return []


def _percent(value: float | None, lang: Language) -> str:
    return message("page.unknown", lang) if value is None else f"{value:.2f}"


def _ratio(value: float | None, lang: Language) -> str:
    return message("page.unknown", lang) if value is None or not math.isfinite(value) else f"{value:.2f}"


def _when(value: object, zone: ZoneInfo) -> str:
    if isinstance(value, datetime):
        return _aware(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return str(value)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def _text_or_none(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)
