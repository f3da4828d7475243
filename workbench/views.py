"""What each page shows, as plain data: built from the store's frames and the scores, no I/O here.

Every text a person reads comes from the message catalogue (`survey.catalogue`) in the reader's
language; codes (categories, statuses, tiers) never reach a page as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from features.policy import ProcedureDeadlines
from monitoring.procedure import days_over, identification_due
from serving.schemas import ReasonOut, ScoreResponse, WhatIfResponse
from store.cases import CLOSED_STATUSES, STATUSES
from survey.catalogue import Language, label, message
from workbench.case_views import CaseView, case_state, next_step_text, when
from workbench.chart import ChartText, risk_chart
from workbench.corrections import member_name

OPEN_STATUSES = tuple(status for status in STATUSES if status not in CLOSED_STATUSES)
"""Cases that still need someone (every status but rejected and risk eliminated)."""


@dataclass(frozen=True)
class WorkItem:
    flag_id: int
    county_id: str
    household_id: str
    village_id: str
    round: int
    category: str
    tier: str
    status: str
    next_step: str
    actionable: bool
    """Whether the reader's role can take the next step now."""
    poverty_risk: float | None
    relapse_risk: float | None
    deadline: str
    days_over: int | None
    """Days past the deadline (None: no deadline, or not past it)."""

    @property
    def overdue(self) -> bool:
        return self.days_over is not None


WORKLIST_PAGE = 100
OFFLINE_COPY = "offline_copy"
"""The access log's action for a household page saved on a cadre's phone for offline use."""
"""Households listed per page (a county's worklist holds tens of thousands; search finds any one)."""


@dataclass(frozen=True)
class Worklist:
    items: list[WorkItem]
    open_count: int
    overdue_count: int
    actionable_count: int
    page: int
    pages: int


def worklist(
    flags: pd.DataFrame,
    role: str,
    now: datetime,
    deadlines: ProcedureDeadlines,
    lang: Language,
    page: int = 1,
) -> Worklist:
    """Open cases, overdue first (most days over first), then those the reader's role can move on now,
    then by risk (the higher of the two risks), highest first; the items of one page (`WORKLIST_PAGE` a
    page, pages from 1)."""
    items = [_work_item(row, role, now, deadlines, lang) for row in flags.to_dict("records")]
    items.sort(
        key=lambda item: (
            -(item.days_over or -1),
            not item.actionable,
            -_highest_risk(item),
            item.household_id,
        )
    )
    pages = max(1, -(-len(items) // WORKLIST_PAGE))
    page = min(max(page, 1), pages)
    return Worklist(
        items=items[(page - 1) * WORKLIST_PAGE : page * WORKLIST_PAGE],
        open_count=len(items),
        overdue_count=sum(item.overdue for item in items),
        actionable_count=sum(item.actionable for item in items),
        page=page,
        pages=pages,
    )


def _work_item(
    row: Mapping[Any, Any], role: str, now: datetime, deadlines: ProcedureDeadlines, lang: Language
) -> WorkItem:
    state = case_state(row)
    over = days_over(identification_due(state, deadlines), now, deadlines)
    deadline_text = ""
    if over is not None:
        deadline_text = (
            message("page.overdue_days", lang, days=over)
            if over > 0
            else message("page.days_left", lang, days=-over)
        )
    next_step, actionable = next_step_text(row, role, now, lang)
    return WorkItem(
        flag_id=int(row["id"]),
        county_id=str(row["county_id"]),
        household_id=str(row["household_id"]),
        village_id=str(row["village_id"]),
        round=int(row["round"]),
        category=label("category", str(row["category"]), lang),
        tier=tier_text(_text_or_none(row["risk_tier"]), lang),
        status=label("status", state.status, lang),
        next_step=next_step,
        actionable=actionable,
        poverty_risk=_number(row["poverty_risk"]),
        relapse_risk=_number(row["relapse_risk"]),
        deadline=deadline_text,
        days_over=over if over is not None and over > 0 else None,
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
class ReasonView:
    """A reason as the page shows it: the sentence, and what it adds to the risk in percentage points
    ("风险+12.3个百分点"; empty for an answer stored before effects were recorded)."""

    sentence: str
    effect: str


def reason_views(reasons: Sequence[ReasonOut], lang: Language) -> list[ReasonView]:
    return [
        ReasonView(
            reason.sentence,
            "" if reason.effect_pp is None else message("reason.effect", lang, effect=reason.effect_pp),
        )
        for reason in reasons
    ]


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
    reasons: list[ReasonView]
    main_cause: str
    secondary_causes: str
    measures: list[tuple[str, str]]
    chart_svg: str
    rounds_table: list[tuple[str, str, str, str]]
    cases: list[CaseView]
    viewers: list[str]


def household_view(
    scores: Sequence[ScoreResponse],
    cases: list[CaseView],
    viewers: pd.DataFrame,
    village_id: str,
    lang: Language,
    zone: ZoneInfo,
) -> HouseholdView:
    """The household page: `scores` are its rounds scored from the register (earliest first; the last
    is now), `cases` its cases as the reader sees them, `viewers` the access log of the page; times
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
        reasons=reason_views(now.reasons, lang),
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
        cases=cases,
        viewers=[
            message(
                "page.audit_offline_copy" if row.get("action") == OFFLINE_COPY else "page.audit_entry",
                lang,
                at=when(row["at"], zone),
                user=row["user_id"],
            )
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


def _percent(value: float | None, lang: Language) -> str:
    return message("page.unknown", lang) if value is None else f"{value:.2f}"


def _ratio(value: float | None, lang: Language) -> str:
    return message("page.unknown", lang) if value is None or not math.isfinite(value) else f"{value:.2f}"


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def _text_or_none(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


@dataclass(frozen=True)
class WhatIfView:
    rows: list[tuple[str, str, str, str]]
    """(what, now, with the change, change) for both risks, the tier and the category."""
    reasons: list[ReasonView]
    measures: list[tuple[str, str]]


def what_if_view(answer: WhatIfResponse, lang: Language) -> WhatIfView:
    before, after = answer.before, answer.after
    return WhatIfView(
        rows=[
            (
                message("page.poverty_risk", lang),
                _percent(before.poverty_risk, lang),
                _percent(after.poverty_risk, lang),
                _signed(answer.poverty_risk_change),
            ),
            (
                message("page.relapse_risk", lang),
                _percent(before.relapse_risk, lang),
                _percent(after.relapse_risk, lang),
                _signed(answer.relapse_risk_change),
            ),
            (
                message("page.tier", lang),
                tier_text(before.risk_tier, lang),
                tier_text(after.risk_tier, lang),
                "",
            ),
            (
                message("page.category", lang),
                label("category", before.category, lang),
                label("category", after.category, lang),
                "",
            ),
        ],
        reasons=reason_views(after.reasons, lang),
        measures=[(measure.name, measure.why) for measure in after.measures],
    )


def member_choices(members: pd.DataFrame | None, lang: Language) -> list[tuple[str, str]]:
    """The members of the household's latest round, as a person names them (relation, age)."""
    if members is None or members.empty:
        return []
    latest = members[members["round"] == members["round"].max()]
    return [(str(member["member_id"]), member_name(member, lang)) for member in latest.to_dict("records")]


def _signed(change: float | None) -> str:
    return "" if change is None else f"{change:+.2f}"
