"""A canonical survey as archive-card workbooks (建档立卡): the layout of survey/mappings/archive-card.yaml.

One workbook per round, ``round-<r>.xlsx``, with the sheets 户表 (one row per household) and 成员表 (one
row per member), headers and answers in the card's Chinese words. The layout is the mapping read
backwards: each canonical column the survey has goes to the mapping's header, its value through the
mapping's value map in reverse (1.0 -> 是) and divided by the mapping's scale, so that
``povrisk import table round-<r>.xlsx --mapping archive-card`` gives the round back. Beside the mapped
columns the card carries 所在乡镇 (from the village register), 家庭人口数 (the household's member rows,
imported as ``household_size``) and 人均纯收入（元） (the five incomes over the household size, for people;
left out on import).

One workbook per round because Excel holds at most 1,048,576 rows a sheet: the members of a 155,000-
household county over five rounds would not fit in one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from survey.io import Survey
from survey.schema import INCOME_COLUMNS
from survey.table_mapping import ColumnSpec, TableMapping, load_mapping, value_key
from survey.xlsx import xlsx_workbook

MAPPING_NAME = "archive-card"
HOUSEHOLD_SIZE_HEADER = "家庭人口数"
PER_CAPITA_INCOME_HEADER = "人均纯收入（元）"


def workbook_name(round_: int) -> str:
    return f"round-{int(round_)}.xlsx"


def write_archive_cards(survey: Survey, folder: Path, mapping: TableMapping | None = None) -> list[Path]:
    """Write one archive-card workbook per round of `survey` into `folder`; return the files written."""
    mapping = mapping or load_mapping(MAPPING_NAME)
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for round_ in sorted(pd.unique(survey.households["round"])):
        path = target / workbook_name(int(round_))
        path.write_bytes(archive_card_workbook(survey, int(round_), mapping))
        written.append(path)
    return written


def archive_card_workbook(survey: Survey, round_: int, mapping: TableMapping) -> bytes:
    """One round of `survey` as an archive-card workbook (the module docstring)."""
    households = survey.households[survey.households["round"] == round_].reset_index(drop=True)
    members = None if survey.members is None else survey.members[survey.members["round"] == round_]
    sheets = [
        (mapping.households.sheet or "户表", household_sheet(households, members, survey.villages, mapping))
    ]
    if members is not None and mapping.members is not None:
        sheets.append(
            (mapping.members.sheet or "成员表", member_sheet(members.reset_index(drop=True), mapping))
        )
    return xlsx_workbook(sheets)


def household_sheet(
    households: pd.DataFrame,
    members: pd.DataFrame | None,
    villages: pd.DataFrame | None,
    mapping: TableMapping,
) -> pd.DataFrame:
    """The 户表 of one round: the mapped columns, the township, the household size and income per head."""
    sheet = _sheet(households, mapping.households.columns, mapping)
    township = mapping.villages.get("township_id")
    if (
        township is not None
        and township.column
        and villages is not None
        and "township_id" in villages.columns
    ):
        by_village = villages.drop_duplicates("village_id").set_index("village_id")["township_id"]
        sheet.insert(2, township.column, households["village_id"].map(by_village).to_numpy())
    round_header = mapping.round.column
    if round_header is not None:
        sheet.insert(1, round_header, households["round"].to_numpy(dtype=np.int64))
    if members is not None:
        size = (
            members.groupby("household_id")
            .size()
            .reindex(households["household_id"])
            .to_numpy(dtype=np.float64)
        )
        size_spec = mapping.households.columns.get("household_size")
        header = size_spec.column if size_spec is not None and size_spec.column else HOUSEHOLD_SIZE_HEADER
        if header not in sheet.columns:
            sheet[header] = size
        incomes = [column for column in INCOME_COLUMNS if column in households.columns]
        if incomes:
            total = households[incomes].sum(axis=1, min_count=len(incomes)).to_numpy(dtype=np.float64)
            sheet[PER_CAPITA_INCOME_HEADER] = np.round(total / size, 2)
    return sheet


def member_sheet(members: pd.DataFrame, mapping: TableMapping) -> pd.DataFrame:
    """The 成员表 of one round."""
    assert mapping.members is not None
    sheet = _sheet(members, mapping.members.columns, mapping)
    if mapping.round.column is not None:
        sheet.insert(2, mapping.round.column, members["round"].to_numpy(dtype=np.int64))
    return sheet


def _sheet(table: pd.DataFrame, specs: dict[str, ColumnSpec], mapping: TableMapping) -> pd.DataFrame:
    columns = {
        spec.column: _source_values(table[name], spec, mapping)
        for name, spec in specs.items()
        if spec.column is not None and name in table.columns
    }
    return pd.DataFrame(columns, index=table.index)


def _source_values(values: pd.Series, spec: ColumnSpec, mapping: TableMapping) -> pd.Series:
    """A canonical column in the card's words: the value map in reverse (its first word for a value), or
    numbers divided by the spec's scale and period."""
    value_map = mapping.value_map(spec)
    if value_map:
        words: dict[str, str] = {}
        for word, canonical in value_map.items():
            key = value_key(canonical)
            if key is not None:
                words.setdefault(key, word)
        return values.map(lambda value: words.get(value_key(value) or "")).astype(object)
    if pd.api.types.is_numeric_dtype(values.dtype) and spec.factor != 1.0:
        return values / spec.factor
    return values


ARCHIVE_FOLDER = "archive-card"
"""Where `povrisk simulate --export xlsx` puts the workbooks, inside the survey folder."""


def archive_card_folders(survey: Survey) -> dict[str, Callable[[Path], object]]:
    """`survey.io.write_survey`'s `extra_folders` for the archive-card workbooks of every round, written in
    the same atomic swap as the survey's tables."""
    return {ARCHIVE_FOLDER: lambda folder: write_archive_cards(survey, folder)}
