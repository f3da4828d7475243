"""A department's data pushed to the county (medical insurance bills over a threshold, newly registered
disability, disaster-hit households): a CSV or XLSX file read, each row checked and matched to the
register's households, and what to open listed. Pure: the caller reads the upload and acts on the plan.

Columns are found by name in Chinese or English (`COLUMN_NAMES`); the event is one of the declared events
(`monitoring/procedure.yaml`), written as its code or its name in either language.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from monitoring.procedure import declared_events
from survey.catalogue import LANGUAGES, Language, label, message

COLUMN_NAMES: Mapping[str, tuple[str, ...]] = {
    "household_id": ("household_id", "户编号", "household"),
    "event": ("event", "事项", "情况"),
    "amount": ("amount", "金额", "金额（元）"),
    "note": ("note", "说明", "备注"),
}
REQUIRED = ("household_id", "event")
MAX_ROWS = 20_000


class PushUnreadable(ValueError):
    """The file cannot be read as a department push (its message says why, in the reader's language)."""


@dataclass(frozen=True)
class PushRow:
    line: int
    """The row's line in the file (the header is line 1)."""
    household_id: str
    event: str
    amount: float | None
    note: str


@dataclass(frozen=True)
class PushPlan:
    matched: list[PushRow]
    problems: list[str]
    """One sentence per row that cannot be used (unmatched household, unknown event, bad amount)."""


def read_table(content: bytes, filename: str, lang: Language) -> pd.DataFrame:
    """An uploaded CSV (UTF-8, with or without a byte-order mark) or XLSX, every cell as text."""
    try:
        if filename.lower().endswith(".xlsx"):
            table = pd.read_excel(io.BytesIO(content), dtype=str, engine="openpyxl")
        elif filename.lower().endswith(".csv"):
            table = pd.read_csv(io.BytesIO(content), dtype=str, encoding="utf-8-sig", keep_default_na=False)
        else:
            raise PushUnreadable(message("push.bad_type", lang, file=filename))
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as error:  # an XLSX is a zip
        if isinstance(error, PushUnreadable):
            raise
        raise PushUnreadable(message("push.unreadable", lang, file=filename)) from error
    if len(table) > MAX_ROWS:
        raise PushUnreadable(message("push.too_many", lang, rows=len(table), most=MAX_ROWS))
    return table.fillna("")


def with_column_names(table: pd.DataFrame, names: Mapping[str, tuple[str, ...]]) -> pd.DataFrame:
    """The table with each column found under one of its names (any case, spaces trimmed) renamed to
    its key in `names`."""
    wanted = {alias.lower(): name for name, aliases in names.items() for alias in aliases}
    return table.rename(columns=lambda column: wanted.get(str(column).strip().lower(), column))


def read_push(content: bytes, filename: str, lang: Language) -> pd.DataFrame:
    """The uploaded table with its columns named as `COLUMN_NAMES`' keys; every cell as text."""
    table = with_column_names(read_table(content, filename, lang), COLUMN_NAMES)
    missing = [name for name in REQUIRED if name not in table.columns]
    if missing:
        names = "、".join(COLUMN_NAMES[name][1] + "/" + COLUMN_NAMES[name][0] for name in missing)
        raise PushUnreadable(message("push.missing_columns", lang, columns=names))
    return table


def plan_push(table: pd.DataFrame, known: Mapping[str, str], most_money: float, lang: Language) -> PushPlan:
    """Check every row: a household the register holds (`known`: household -> village, already limited
    to the reader's area), a known event, an amount from 0 to `most_money` when given."""
    events = _event_names()
    matched, problems = [], []
    for position, row in enumerate(table.to_dict("records")):
        line = position + 2
        household = str(row.get("household_id", "")).strip()
        event = events.get(str(row.get("event", "")).strip().lower())
        amount_text = str(row.get("amount", "")).strip().replace(",", "")
        row_problems = []
        if household not in known:
            row_problems.append(message("push.unknown_household", lang, household=household or "-"))
        if event is None:
            row_problems.append(message("push.unknown_event", lang, event=str(row.get("event", "")) or "-"))
        amount: float | None = None
        if amount_text:
            try:
                amount = float(amount_text)
            except ValueError:
                amount = -1.0
            if not 0 <= amount <= most_money:
                row_problems.append(
                    message("push.bad_amount", lang, amount=amount_text, most=f"{most_money:,.0f}")
                )
        if row_problems:
            problems.append(
                message(
                    "push.line",
                    lang,
                    line=line,
                    problems="；".join(row_problems) if lang == "zh" else "; ".join(row_problems),
                )
            )
            continue
        assert event is not None
        matched.append(
            PushRow(
                line=line,
                household_id=household,
                event=event,
                amount=amount,
                note=str(row.get("note", "")).strip(),
            )
        )
    return PushPlan(matched=matched, problems=problems)


def _event_names() -> dict[str, str]:
    """Every way a file may name an event (code, Chinese, English; lower case) -> its code."""
    names = {}
    for code in declared_events():
        names[code] = code
        for lang in LANGUAGES:
            names[label("event", code, lang).lower()] = code
    return names
