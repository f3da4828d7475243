"""Lists as files a county office opens: XLSX (`survey.xlsx`), and CSV with a byte-order mark (so
that Excel on Chinese Windows reads it as UTF-8), column names in the reader's language from the message
catalogue, every code turned into words. Pure apart from the bytes they return."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import datetime

import pandas as pd

from features.policy import ProcedureDeadlines
from monitoring.causes import CauseSettings
from monitoring.procedure import identification_deadlines
from survey.catalogue import Language, label, message
from survey.xlsx import xlsx_workbook

CASE_COLUMNS = (
    "household",
    "village",
    "township",
    "round",
    "category",
    "tier",
    "status",
    "channel",
    "main_cause",
    "poverty_risk",
    "relapse_risk",
    "discovered",
    "identification_due",
    "days_overdue",
)
CSV_ENCODING = "utf-8-sig"
"""UTF-8 with a byte-order mark: Excel on Chinese Windows otherwise reads the file as GBK."""


def cases_table(
    flags: pd.DataFrame,
    places: Mapping[str, str | None],
    causes: CauseSettings,
    now: datetime,
    deadlines: ProcedureDeadlines,
    lang: Language,
) -> pd.DataFrame:
    """The cases of `flags` (`store.cases.list_flags`) as a person reads them, one row each, columns
    named in `lang` (messages `export.<column>`); overdue days counted as the worklist counts them."""
    created = pd.to_datetime(flags["created_at"], utc=True)
    deadline = identification_deadlines(flags["created_at"], flags["status"], now, deadlines)
    villages = flags["village_id"].astype(str)
    table = pd.DataFrame(
        {
            "household": flags["household_id"].astype(str),
            "village": villages,
            "township": villages.map(lambda village: places.get(village) or ""),
            "round": flags["round"].astype(int),
            "category": _labels(flags["category"], "category", lang),
            "tier": flags["risk_tier"].map(
                lambda tier: label("tier", tier if isinstance(tier, str) else "none", lang)
            ),
            "status": _labels(flags["status"], "status", lang),
            "channel": _labels(flags["channel"].fillna("model"), "channel", lang),
            "main_cause": flags["main_cause"].map(
                lambda code: (
                    causes.labels[code][lang] if isinstance(code, str) and code in causes.labels else ""
                )
            ),
            "poverty_risk": flags["poverty_risk"].astype(float).round(4),
            "relapse_risk": flags["relapse_risk"].astype(float).round(4),
            "discovered": created.dt.tz_convert(deadlines.timezone).dt.strftime("%Y-%m-%d"),
            "identification_due": deadline["due"].dt.strftime("%Y-%m-%d").fillna(""),
            "days_overdue": deadline["days_over"].where(deadline["days_over"] > 0),
        }
    )
    return table.rename(columns={column: message(f"export.{column}", lang) for column in CASE_COLUMNS})


def _labels(codes: pd.Series, section: str, lang: Language) -> pd.Series:
    words = {code: label(section, str(code), lang) for code in codes.dropna().unique()}
    return codes.map(words).fillna("")


def xlsx_bytes(table: pd.DataFrame, sheet: str) -> bytes:
    """The table as an XLSX workbook of one sheet (`survey.xlsx`); missing values as empty cells."""
    return xlsx_workbook([(sheet, table)])


def csv_bytes(table: pd.DataFrame) -> bytes:
    """The table as CSV in UTF-8 with a byte-order mark."""
    text = io.StringIO()
    table.to_csv(text, index=False, quoting=csv.QUOTE_MINIMAL)
    return text.getvalue().encode(CSV_ENCODING)
