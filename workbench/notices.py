"""The village's printed sheets: the material for the democratic review (the households visited and
proposed, with the rule and reasons that put them there) and the public notice (the households on notice,
their notice period, where to object). The notice's columns are the allow-list of
`monitoring.notice.public_notice`: no names, ID numbers, scores, reasons or notes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from features.policy import ProcedureDeadlines
from monitoring.causes import CauseSettings
from monitoring.notice import public_notice
from serving.schemas import ScoreResponse
from survey.catalogue import Language, label, message
from workbench.case_views import aware

NOTICE_KINDS = {"notice_running": "inclusion", "elimination_notice": "elimination"}
REVIEW_KINDS = {"verified": "inclusions", "elimination_verified": "eliminations"}


@dataclass(frozen=True)
class NoticeRow:
    household: str
    category: str
    main_cause: str


@dataclass(frozen=True)
class NoticePart:
    lead: str
    rows: list[NoticeRow]


def notice_parts(
    cases: pd.DataFrame, causes: CauseSettings, deadlines: ProcedureDeadlines, lang: Language
) -> list[NoticePart]:
    """One part per kind of notice (inclusion, elimination) and notice period, earliest first."""
    zone = ZoneInfo(deadlines.timezone)
    parts = []
    for status, kind in NOTICE_KINDS.items():
        on_notice = cases[cases["status"] == status]
        if on_notice.empty:
            continue
        ends = on_notice["notice_ends"].map(lambda value: aware(value).astimezone(zone).date())
        for end_day in sorted(set(ends)):
            part = public_notice(on_notice[ends == end_day])
            start_day = end_day - timedelta(days=deadlines.public_notice_days)
            lead = message(
                "notice.lead",
                lang,
                what=message(f"notice.what_{kind}", lang),
                start=start_day.isoformat(),
                end=(end_day - timedelta(days=1)).isoformat(),
            )
            rows = [
                NoticeRow(
                    household=str(row["household"]),
                    category=label("category", str(row["category"]), lang),
                    main_cause=_cause(row["main_cause"], causes, lang),
                )
                for row in part.to_dict("records")
            ]
            parts.append(NoticePart(lead=lead, rows=rows))
    return parts


@dataclass(frozen=True)
class ReviewRow:
    household: str
    category: str
    rule: str
    main_cause: str
    reasons: str


def review_rows(
    cases: pd.DataFrame, answers: Mapping[str, ScoreResponse], lang: Language
) -> dict[str, list[ReviewRow]]:
    """The visited cases awaiting the village review, by kind ("inclusions", "eliminations"), each with
    the household's answer now (`answers` by household id: category, rule, main cause, reasons)."""
    separator = "；" if lang == "zh" else "; "
    rows: dict[str, list[ReviewRow]] = {kind: [] for kind in REVIEW_KINDS.values()}
    for case in cases.sort_values("household_id").to_dict("records"):
        kind = REVIEW_KINDS.get(str(case["status"]))
        answer = answers.get(str(case["household_id"]))
        if kind is None or answer is None:
            continue
        rows[kind].append(
            ReviewRow(
                household=answer.household_id,
                category=label("category", answer.category, lang),
                rule=answer.category_rule,
                main_cause=answer.main_cause.label,
                reasons=separator.join(reason.sentence for reason in answer.reasons),
            )
        )
    return rows


def _cause(code: object, causes: CauseSettings, lang: Language) -> str:
    if not isinstance(code, str) or code not in causes.labels:
        return ""
    return causes.labels[code][lang]


def households_to_review(cases: pd.DataFrame) -> Sequence[str]:
    return sorted(cases.loc[cases["status"].isin(list(REVIEW_KINDS)), "household_id"].astype(str))
