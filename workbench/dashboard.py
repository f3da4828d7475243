"""The county's (or a township's) dashboard as plain data: open cases by step, channel and category,
overdue cases, per township and village; median days from discovery to county approval per township;
how the register's poverty status moved between the last two rounds; and the trend over all rounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from features.policy import ProcedureDeadlines
from monitoring.categories import CATEGORIES
from monitoring.procedure import FINAL_STATUSES, IDENTIFICATION_STATUSES, identification_deadlines
from store.cases import CHANNELS, MODEL_CHANNEL, STATUSES
from survey.catalogue import Language, label, message
from workbench.chart import POVERTY_COLOUR, RELAPSE_COLOUR, bar_chart

MONITORED_STATUSES = frozenset(STATUSES[STATUSES.index("monitored") : STATUSES.index("risk_eliminated")])
"""Identified and under monitoring: monitored, assisted, and the steps of risk elimination."""
MOVES = (("never_poor", "poor"), ("poor", "exited"), ("exited", "poor"))
"""Moves of the registered poverty status the dashboard names: entering, exiting, relapse after exit."""


@dataclass(frozen=True)
class AreaRow:
    name: str
    open_cases: int
    overdue: int
    awaiting_visit: int
    in_review: int
    monitored: int
    median_days_to_approval: str


@dataclass(frozen=True)
class DashboardView:
    open_cases: int
    overdue: int
    monitored: int
    eliminated: int
    by_step: list[tuple[str, int]]
    by_step_svg: str
    by_channel: list[tuple[str, int]]
    by_category: list[tuple[str, int]]
    townships: list[AreaRow]
    villages: list[AreaRow]
    moves_title: str
    moves: list[tuple[str, int]]
    moves_svg: str
    mix_columns: list[str]
    township_mix: list[tuple[str, list[int]]]
    village_mix: list[tuple[str, list[int]]]
    trend: list[tuple[str, float]]
    trend_svg: str


def dashboard_view(
    cases: pd.DataFrame,
    places: Mapping[str, str | None],
    registration: pd.DataFrame,
    changes: tuple[tuple[int, int] | None, pd.DataFrame],
    now: datetime,
    deadlines: ProcedureDeadlines,
    lang: Language,
) -> DashboardView:
    """`cases`: `store.cases.case_overview`; `places`: village -> township; `registration` and `changes`:
    `store.register.registration_counts` and `registration_changes`."""
    frame = _with_facts(cases, places, now, deadlines)
    open_cases = frame[~frame["status"].isin(FINAL_STATUSES)]
    by_step = [
        (label("status", status, lang), int((open_cases["status"] == status).sum())) for status in STATUSES
    ]
    by_step = [(name, count) for name, count in by_step if count]
    rounds, moves = changes
    move_counts = [
        (
            message(f"dashboard.move_{before}_{after}", lang),
            int(moves.loc[(moves["before"] == before) & (moves["now"] == after), "households"].sum()),
        )
        for before, after in MOVES
    ] + [(message("dashboard.move_eliminated", lang), int((frame["status"] == "risk_eliminated").sum()))]
    mix_codes = _mix_codes(open_cases)
    return DashboardView(
        open_cases=len(open_cases),
        overdue=int(open_cases["overdue"].sum()),
        monitored=int(frame["status"].isin(MONITORED_STATUSES).sum()),
        eliminated=int((frame["status"] == "risk_eliminated").sum()),
        by_step=by_step,
        by_step_svg=bar_chart(by_step, message("dashboard.by_step", lang)),
        by_channel=_counts(open_cases["channel"], "channel", lang),
        by_category=_counts(open_cases["category"], "category", lang),
        townships=_area_rows(frame, "township", lang),
        villages=_area_rows(frame, "village_id", lang),
        moves_title=""
        if rounds is None
        else message("dashboard.moves_title", lang, previous=rounds[0], current=rounds[1]),
        moves=move_counts,
        moves_svg=bar_chart(move_counts, message("dashboard.moves", lang), RELAPSE_COLOUR)
        if rounds is not None
        else "",
        mix_columns=[label(section, code, lang) for section, code in mix_codes],
        township_mix=_mix_rows(open_cases, "township", mix_codes),
        village_mix=_mix_rows(open_cases, "village_id", mix_codes),
        trend=(trend := _trend(registration, frame, lang)),
        trend_svg=bar_chart(trend, message("dashboard.trend", lang), POVERTY_COLOUR) if trend else "",
    )


def _with_facts(
    cases: pd.DataFrame, places: Mapping[str, str | None], now: datetime, deadlines: ProcedureDeadlines
) -> pd.DataFrame:
    """The cases with their township, whether identification is overdue (counted in the policy's days,
    as `monitoring.procedure.days_over`), and the days from discovery to county approval. Vectorised:
    a county holds tens of thousands of cases."""
    frame = cases.copy()
    frame["township"] = frame["village_id"].astype(str).map(lambda village: places.get(village) or "-")
    created = pd.to_datetime(frame["created_at"], utc=True)
    over = identification_deadlines(frame["created_at"], frame["status"], now, deadlines)["days_over"]
    frame["overdue"] = (over > 0).fillna(False).to_numpy(dtype=bool)
    approved = pd.to_datetime(frame["approved_at"], utc=True)
    frame["days_to_approval"] = (approved - created).dt.total_seconds() / 86_400
    return frame


def _area_rows(frame: pd.DataFrame, column: str, lang: Language) -> list[AreaRow]:
    """Per township or village (one groupby: a county has hundreds of villages)."""
    status = frame["status"]
    is_open = ~status.isin(list(FINAL_STATUSES))
    facts = pd.DataFrame(
        {
            "area": frame[column].astype(str),
            "open": is_open,
            "overdue": is_open & frame["overdue"].astype(bool),
            "awaiting": is_open & (status == "flagged"),
            "review": is_open & status.isin(list(IDENTIFICATION_STATUSES - {"flagged"})),
            "monitored": status.isin(list(MONITORED_STATUSES)),
            "days": frame["days_to_approval"],
        }
    )
    grouped = facts.groupby("area", sort=True).agg(
        open=("open", "sum"),
        overdue=("overdue", "sum"),
        awaiting=("awaiting", "sum"),
        review=("review", "sum"),
        monitored=("monitored", "sum"),
        days=("days", "median"),
    )
    counts = grouped[["open", "overdue", "awaiting", "review", "monitored"]].to_numpy(dtype="int64")
    days = grouped["days"].to_numpy(dtype="float64")
    return [
        AreaRow(
            name=str(name),
            open_cases=int(row[0]),
            overdue=int(row[1]),
            awaiting_visit=int(row[2]),
            in_review=int(row[3]),
            monitored=int(row[4]),
            median_days_to_approval="-" if np.isnan(median) else f"{median:.1f}",
        )
        for name, row, median in zip(grouped.index, counts, days, strict=True)
    ]


def _mix_codes(open_cases: pd.DataFrame) -> list[tuple[str, str]]:
    """The channels and categories the open cases have, in the store's order: the columns of the
    per-area mix."""
    channels = set(open_cases["channel"].fillna(MODEL_CHANNEL).astype(str).unique())
    categories = set(open_cases["category"].astype(str).unique())
    return [("channel", code) for code in CHANNELS if code in channels] + [
        ("category", code) for code in CATEGORIES if code in categories
    ]


def _mix_rows(
    open_cases: pd.DataFrame, column: str, codes: list[tuple[str, str]]
) -> list[tuple[str, list[int]]]:
    """Open cases per township or village by channel and by category (one grouped count each)."""
    if open_cases.empty:
        return []
    area = open_cases[column].astype(str).to_numpy(dtype=object)
    values = {
        "channel": open_cases["channel"].fillna(MODEL_CHANNEL).astype(str).to_numpy(dtype=object),
        "category": open_cases["category"].astype(str).to_numpy(dtype=object),
    }
    counted = [
        pd.Series(1, index=pd.MultiIndex.from_arrays([area, codes_of]))
        .groupby(level=[0, 1])
        .size()
        .unstack(fill_value=0)
        for codes_of in values.values()
    ]
    together = pd.concat(counted, axis=1, keys=list(values)).sort_index()
    together = (
        together.reindex(columns=pd.MultiIndex.from_tuples(codes), fill_value=0).fillna(0).astype("int64")
    )
    return [
        (str(name), [int(count) for count in row])
        for name, row in zip(together.index, together.to_numpy(), strict=True)
    ]


def _counts(values: pd.Series, section: str, lang: Language) -> list[tuple[str, int]]:
    counts = values.astype(str).value_counts()
    return [(label(section, str(code), lang), int(count)) for code, count in counts.items()]


def _trend(registration: pd.DataFrame, frame: pd.DataFrame, lang: Language) -> list[tuple[str, float]]:
    """Per round: registered poor households (the register) and cases under monitoring (the store)."""
    bars: list[tuple[str, float]] = []
    for round_, part in registration.groupby("round", sort=True):
        poor = float(part.loc[part["poverty_status"] == "poor", "households"].sum())
        monitored = float(
            frame[(frame["round"] == round_) & frame["status"].isin(MONITORED_STATUSES)].shape[0]
        )
        bars.append((message("dashboard.trend_poor", lang, round=round_), poor))
        if monitored:
            bars.append((message("dashboard.trend_monitored", lang, round=round_), monitored))
    return bars


DASHBOARD_TABLES = (
    "villages",
    "townships",
    "village_mix",
    "township_mix",
    "by_step",
    "by_channel",
    "by_category",
    "moves",
    "trend",
)
"""The dashboard's tables, in the order of the export's sheets (`dashboard_tables`)."""


def dashboard_tables(view: DashboardView, lang: Language) -> dict[str, tuple[str, pd.DataFrame]]:
    """Every table of the dashboard as (sheet name, frame), column names in `lang`: what the page shows,
    as an office opens it in a spreadsheet."""
    count = message("dashboard.count", lang)

    def counted(rows: list[tuple[str, int]] | list[tuple[str, float]], name: str) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=[name, count])

    def areas(rows: list[AreaRow]) -> pd.DataFrame:
        return pd.DataFrame(
            [
                (
                    row.name,
                    row.open_cases,
                    row.overdue,
                    row.awaiting_visit,
                    row.in_review,
                    row.monitored,
                    row.median_days_to_approval,
                )
                for row in rows
            ],
            columns=[
                message(f"dashboard.{name}", lang)
                for name in (
                    "area",
                    "open_cases",
                    "overdue",
                    "awaiting_visit",
                    "in_review",
                    "monitored",
                    "median_days",
                )
            ],
        )

    def mix(rows: list[tuple[str, list[int]]]) -> pd.DataFrame:
        return pd.DataFrame(
            [(name, *counts) for name, counts in rows],
            columns=[message("dashboard.area", lang), *view.mix_columns],
        )

    tables = {
        "villages": (message("dashboard.villages", lang), areas(view.villages)),
        "village_mix": (message("dashboard.village_mix", lang), mix(view.village_mix)),
        "township_mix": (message("dashboard.township_mix", lang), mix(view.township_mix)),
        "townships": (message("dashboard.townships", lang), areas(view.townships)),
        "by_step": (
            message("dashboard.by_step", lang),
            counted(view.by_step, message("export.status", lang)),
        ),
        "by_channel": (
            message("dashboard.by_channel", lang),
            counted(view.by_channel, message("export.channel", lang)),
        ),
        "by_category": (
            message("dashboard.by_category", lang),
            counted(view.by_category, message("export.category", lang)),
        ),
        "moves": (message("dashboard.moves", lang), counted(view.moves, view.moves_title or count)),
        "trend": (message("dashboard.trend", lang), counted(view.trend, message("export.round", lang))),
    }
    return {name: tables[name] for name in DASHBOARD_TABLES}
