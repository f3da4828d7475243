"""The XLSX writer (survey.xlsx), read back by openpyxl: sheets in order with names Excel accepts,
numbers as numbers, text as text (escaped, Chinese kept, control characters dropped), gaps as empty cells."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
from openpyxl import load_workbook

from survey.xlsx import xlsx_workbook


def _read(content: bytes) -> dict[str, list[tuple[object, ...]]]:
    workbook = load_workbook(io.BytesIO(content))
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in workbook.worksheets}


def test_values_come_back_with_their_types() -> None:
    table = pd.DataFrame(
        {
            "户编号": ["H1", "H2", "H3"],
            "轮次": np.array([1, 2, 3], dtype="int64"),
            "风险": [0.8123456789, float("nan"), 1e-7],
            "逾期天数": pd.array([3, None, 0], dtype="Int64"),
            "备注": ["a < b & c > d \"q\" 'a'", None, "  两个空格  \x07铃"],
            "在办": [True, False, True],
        }
    )
    (rows,) = _read(xlsx_workbook([("案件", table)])).values()
    assert rows[0] == ("户编号", "轮次", "风险", "逾期天数", "备注", "在办")
    assert rows[1] == ("H1", 1, 0.8123456789, 3, "a < b & c > d \"q\" 'a'", True)
    assert rows[2] == ("H2", 2, None, None, None, False)
    assert rows[3] == ("H3", 3, 1e-7, 0, "  两个空格  铃", True)


def test_sheets_keep_their_order_and_get_names_excel_accepts() -> None:
    one = pd.DataFrame({"a": [1]})
    long_name = "各村在办案件：发现渠道与监测类别（第一季度的全部数据）"
    content = xlsx_workbook([("村/乡镇[1]", one), (long_name, one), (long_name, one), ("空", one.iloc[:0])])
    sheets = _read(content)
    names = list(sheets)
    assert names[0] == "村 乡镇 1" and all(len(name) <= 31 for name in names)
    assert names[1] != names[2] and names[2].endswith("(2)")
    assert sheets[names[3]] == [("a",)]  # a table without rows: its header
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        assert "xl/styles.xml" in archive.namelist()


def test_a_wide_table_of_mixed_object_values() -> None:
    table = pd.DataFrame({"mixed": pd.Series([1, "二", 3.5, None, np.int64(7)], dtype=object)})
    (rows,) = _read(xlsx_workbook([("s", table)])).values()
    assert [row[0] for row in rows[1:]] == [1, "二", 3.5, None, 7]


def test_column_letters_run_past_z() -> None:
    from survey.xlsx import column_letter

    assert [column_letter(position) for position in (0, 25, 26, 51, 52, 701, 702)] == [
        "A",
        "Z",
        "AA",
        "AZ",
        "BA",
        "ZZ",
        "AAA",
    ]
