"""The monitoring report: one self-contained HTML file (figures embedded as PNG data URIs), in the
reader's language (Chinese first, English by `lang`), every heading and label from the message catalogue.

Sections: county summary; transitions by village with the county total; movements between monitoring
categories (table and bar plot); risk distribution by village (top villages by flagged households);
main causes by village; the flag store's cases by village and status (where the procedure stands);
drift between the two rounds; the flagged households of the current round with their reasons.
Everything is escaped; nothing is fetched from the network when the file is opened.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from functools import cache
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.figure import Figure

from models.explain import load_phrases
from monitoring.causes import load_cause_settings
from monitoring.transitions import COUNTY
from store.cases import STATUSES
from survey.catalogue import Language, has_message, label, message

TOP_VILLAGES = 20
FLAGGED_COLUMNS = (
    "village_id",
    "household_id",
    "category",
    "main_cause",
    "secondary_causes",
    "poverty_risk",
    "relapse_risk",
    "reasons",
)
STYLE = """
body { font-family: system-ui, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; margin: 2em;
  color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f2f2f2; } td:last-child { text-align: left; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
"""
CJK_FAMILIES = ("WenQuanYi Zen Hei", "Noto Sans CJK SC", "Source Han Sans SC", "SimHei", "Microsoft YaHei")
CJK_FILES = ("wqy-zenhei", "notosanscjk", "sourcehansans", "simhei", "msyh")


@cache
def cjk_font() -> str | None:
    """A font family with Chinese glyphs that matplotlib can draw with (fonts installed after
    matplotlib built its font cache are added), or None when the machine has none."""
    known = {font.name for font in font_manager.fontManager.ttflist}
    found = next((family for family in CJK_FAMILIES if family in known), None)
    if found is not None:
        return found
    for path in font_manager.findSystemFonts():
        if any(part in path.lower().replace("_", "") for part in CJK_FILES):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    known = {font.name for font in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FAMILIES if family in known), None)


def figure_language(lang: Language) -> Language:
    """The figures' language: the reader's, unless Chinese glyphs cannot be drawn here (then English,
    never boxes)."""
    return "zh" if lang == "zh" and cjk_font() is not None else "en"


def _font_settings(lang: Language) -> Any:  # matplotlib types rc_context by its keys
    return {"font.family": [cjk_font(), "DejaVu Sans"]} if lang == "zh" else {}


def figure_png(figure: Figure, lang: Language = "en", dpi: int = 100) -> bytes:
    """The figure as PNG bytes (drawn with a Chinese font for `lang` zh); in a notebook,
    `IPython.display.Image(figure_png(figure))` keeps it as a PNG output."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(_font_settings(lang)):
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def figure_data_uri(figure: Figure, lang: Language = "en") -> str:
    """The figure as a PNG data URI (drawn with a Chinese font for `lang` zh)."""
    return "data:image/png;base64," + base64.b64encode(figure_png(figure, lang)).decode("ascii")


def movements_figure(movements: pd.DataFrame, lang: Language = "en") -> Figure:
    """Stacked bars: for each previous category, where its households are now."""
    with matplotlib.rc_context(_font_settings(lang)):
        figure = Figure(figsize=(8, 4))
        axes = figure.add_subplot()
        bottom = np.zeros(len(movements))
        previous = [label("category", str(code), lang) for code in movements.index]
        for current in movements.columns:
            counts = movements[current].to_numpy(dtype=float)
            now = message("report.now_in", lang, category=label("category", str(current), lang))
            axes.bar(previous, counts, bottom=bottom, label=now)
            bottom += counts
        axes.set_ylabel(message("report.households", lang))
        axes.set_xlabel(message("report.previous_category", lang))
        axes.tick_params(axis="x", labelrotation=20)
        axes.legend(fontsize=7)
        figure.tight_layout()
    return figure


def top_villages(flags: pd.DataFrame, count: int = TOP_VILLAGES) -> list[str]:
    """The villages with the most flagged households (ties by village id)."""
    sizes = flags.groupby("village_id").size().reset_index(name="n")
    ordered = sizes.sort_values(["n", "village_id"], ascending=[False, True])
    return [str(village) for village in ordered["village_id"].head(count)]


def risk_by_village_figure(flags: pd.DataFrame, villages: list[str], lang: Language = "en") -> Figure:
    """Box plots of each flagged household's larger risk, for the given villages."""
    with matplotlib.rc_context(_font_settings(lang)):
        figure = Figure(figsize=(9, 4))
        axes = figure.add_subplot()
        larger = np.fmax(
            flags["poverty_risk"].to_numpy(dtype=float), flags["relapse_risk"].to_numpy(dtype=float)
        )
        values = [
            np.nan_to_num(larger[(flags["village_id"] == village).to_numpy()], nan=0.0)
            for village in villages
        ]
        if villages:
            axes.boxplot(values, tick_labels=villages)
        axes.set_ylabel(message("report.larger_risk", lang))
        axes.tick_params(axis="x", labelrotation=60, labelsize=7)
        figure.tight_layout()
    return figure


def causes_by_village(flags: pd.DataFrame, villages: list[str]) -> pd.DataFrame:
    """Flagged households by village (rows, the given villages) and main cause (columns)."""
    table = pd.crosstab(flags["village_id"], flags["main_cause"])
    return table.reindex(villages, fill_value=0)


def cases_by_village(cases: pd.DataFrame) -> pd.DataFrame:
    """The flag store's cases by village (rows, with the county total last) and status (columns, in the
    procedure's order; statuses no case is in left out)."""
    table = pd.crosstab(cases["village_id"].astype(str), cases["status"].astype(str))
    table = table.reindex(columns=[status for status in STATUSES if status in table.columns])
    table.loc[COUNTY] = table.sum()
    return table.astype(np.int64)


# ------------------------------------------------------------------------------------ words for codes


def column_words(name: str, lang: Language, first: str | None = None) -> str:
    """A table's column or summary key as a person reads it (a transition, a category, a cause, a
    status, a report column; the `first` section before the others), never the code."""
    for section in (*((first,) if first else ()), "report.column", "transition", "category", "status"):
        if has_message(f"{section}.{name}"):
            return message(f"{section}.{name}", lang)
    causes = load_cause_settings().labels
    return causes[name][lang] if name in causes else name


def indicator_words(name: str, lang: Language) -> str:
    entry = load_phrases()["indicators"].get(name, {})
    return str(entry.get("label", {}).get(lang, name))


def _worded(frame: pd.DataFrame, lang: Language, first: str | None = None) -> pd.DataFrame:
    """The frame with its column names, index name and category/cause/status codes in words."""
    worded = frame.rename(columns=lambda name: column_words(str(name), lang, first))
    worded.index = [
        message("report.county_total", lang) if value == COUNTY else _cell_words(value, lang)
        for value in frame.index
    ]
    worded.index.name = column_words(str(frame.index.name), lang) if frame.index.name else None
    worded.columns.name = column_words(str(frame.columns.name), lang) if frame.columns.name else None
    for column, original in zip(worded.columns, frame.columns, strict=True):
        if original in ("category", "main_cause", "previous_category", "current_category"):
            worded[column] = [_cell_words(value, lang) for value in frame[original]]
        elif original == "secondary_causes":
            worded[column] = [_causes_words(value, lang) for value in frame[original]]
        elif original == "feature":
            worded[column] = [indicator_words(str(value), lang) for value in frame[original]]
        elif original == "drifted":
            worded[column] = [
                message("visit.yes" if bool(value) else "visit.no", lang) for value in frame[original]
            ]
    return worded


def _cell_words(value: Any, lang: Language) -> str:
    if not isinstance(value, str):
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    if has_message(f"category.{value}"):
        return label("category", value, lang)
    causes = load_cause_settings().labels
    return causes[value][lang] if value in causes else value


def _causes_words(value: Any, lang: Language) -> str:
    if not isinstance(value, str) or not value:
        return ""
    separator = "、" if lang == "zh" else ", "
    return separator.join(_cell_words(code, lang) for code in value.split(";") if code)


def _table(frame: pd.DataFrame, lang: Language, index: bool = True, first: str | None = None) -> str:
    return _worded(frame, lang, first).to_html(
        index=index, escape=True, border=0, na_rep="", float_format=lambda value: f"{value:.3f}"
    )


def _summary_list(summary: Mapping[str, Any], lang: Language) -> str:
    items = "".join(
        f"<li>{html.escape(column_words(str(name), lang))}: <b>{html.escape(_summary_value(value))}</b></li>"
        for name, value in summary.items()
    )
    return f"<ul>{items}</ul>"


def _summary_value(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def monitoring_report_html(
    *,
    summary: Mapping[str, Any],
    counts: pd.DataFrame,
    movements: pd.DataFrame,
    flags: pd.DataFrame,
    drift: pd.DataFrame | None = None,
    score_drift: Mapping[str, Any] | None = None,
    cases: pd.DataFrame | None = None,
    lang: Language = "zh",
) -> str:
    """The report as one HTML document (see the module docstring); `cases`: the flag store's cases of
    the county (`store.cases.case_overview`), None when the store was not read."""
    villages = top_villages(flags)
    flagged = flags.loc[:, [column for column in FLAGGED_COLUMNS if column in flags.columns]]
    drawn = figure_language(lang)
    title = message(
        "report.title", lang, previous=summary["previous_round"], current=summary["current_round"]
    )
    movements_uri = figure_data_uri(movements_figure(movements, drawn), drawn)
    risk_uri = figure_data_uri(risk_by_village_figure(flags, villages, drawn), drawn)
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<h2>{message('report.summary', lang)}</h2>",
        _summary_list(summary, lang),
        f"<h2>{message('report.transitions', lang)}</h2>",
        _table(counts, lang),
        f"<h2>{message('report.movements', lang)}</h2>",
        f"<p>{message('report.movements_lead', lang)}</p>",
        _table(movements, lang),
        f'<img alt="{message("report.movements", lang)}" src="{movements_uri}">',
        f"<h2>{html.escape(message('report.risk_by_village', lang, count=len(villages)))}</h2>",
        f'<img alt="{message("report.larger_risk", lang)}" src="{risk_uri}">',
        f"<h2>{message('report.causes', lang)}</h2>",
        _table(causes_by_village(flags, villages), lang),
        f"<h2>{message('report.cases', lang)}</h2>",
    ]
    if cases is None or cases.empty:
        parts.append(f"<p>{message('report.no_cases', lang)}</p>")
    else:
        parts.append(_table(cases_by_village(cases), lang, first="status"))
    parts.append(f"<h2>{message('report.drift', lang)}</h2>")
    if drift is None:
        parts.append(f"<p>{message('report.no_drift', lang)}</p>")
    else:
        drifted = drift.loc[drift["drifted"].astype(bool)] if "drifted" in drift.columns else drift.iloc[:0]
        separator = "、" if lang == "zh" else ", "
        names = separator.join(
            html.escape(indicator_words(str(name), lang)) for name in drifted.get("feature", drifted.index)
        )
        parts.append(f"<p>{message('report.drifted', lang, names=names or message('report.none', lang))}</p>")
        if score_drift:
            parts.append(f"<p>{html.escape(_score_drift_words(score_drift, lang))}</p>")
        parts.append(_table(drift, lang, index=False))
    parts += [
        f"<h2>{message('report.flagged', lang, count=f'{len(flagged):,}')}</h2>",
        _table(flagged, lang, index=False),
        "</body></html>",
    ]
    return "\n".join(parts)


def _score_drift_words(score_drift: Mapping[str, Any], lang: Language) -> str:
    shown = ", ".join(
        f"{column_words(str(name), lang)} {value:.3f}"
        if isinstance(value, float)
        else f"{column_words(str(name), lang)} {value}"
        for name, value in score_drift.items()
    )
    return message("report.score_drift", lang, values=shown)
