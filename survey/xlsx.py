"""Tables as an XLSX workbook, written directly as SpreadsheetML (ECMA-376): one sheet per table, a bold
header row, numbers as numbers, text as inline strings. Used by the workbench's exports and by the
archive-card export of a simulated county (survey/archive_card.py).

Why not openpyxl or xlsxwriter: both spend ~10-15 µs of Python per cell, so a county's 52,000 cases x 14
columns took 10.6 s (openpyxl, write-only) and 6.7 s (xlsxwriter, constant memory) on this machine; the
sheet's XML built column by column here takes well under a second for the same table. The workbook is
read back by openpyxl in the tests (values, types, sheet names, escaping).
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Sequence
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

SHEET_NAME_LENGTH = 31
_FORBIDDEN_IN_SHEET_NAMES = re.compile(r"[\[\]:*?/\\]")
# characters XML 1.0 cannot carry (a sheet with one is refused by Excel): dropped from text cells
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "{sheets}</Types>"
)
_SHEET_TYPE = (
    '<Override PartName="/xl/worksheets/sheet{number}.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    "<sheets>{sheets}</sheets></workbook>"
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    "{sheets}"
    '<Relationship Id="rIdStyles" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>'
)
_SHEET_RELATION = (
    '<Relationship Id="rId{number}" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet{number}.xml"/>'
)
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<dimension ref="{dimension}"/><sheetViews><sheetView workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
    'state="frozen"/></sheetView></sheetViews><sheetData>'
)
_SHEET_TAIL = "</sheetData></worksheet>"


def xlsx_workbook(sheets: Sequence[tuple[str, pd.DataFrame]]) -> bytes:
    """The tables as the sheets of one workbook, in order (names cut to Excel's 31 characters, without
    the characters Excel refuses in a sheet name, made unique); missing values as empty cells."""
    names = _sheet_names([name for name, _ in sheets])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        numbers = range(1, len(sheets) + 1)
        archive.writestr(
            "[Content_Types].xml",
            _CONTENT_TYPES.format(sheets="".join(_SHEET_TYPE.format(number=n) for n in numbers)),
        )
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr(
            "xl/workbook.xml",
            _WORKBOOK.format(
                sheets="".join(
                    f'<sheet name="{escape(name, {chr(34): "&quot;"})}" sheetId="{n}" r:id="rId{n}"/>'
                    for n, name in zip(numbers, names, strict=True)
                )
            ),
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            _WORKBOOK_RELS.format(sheets="".join(_SHEET_RELATION.format(number=n) for n in numbers)),
        )
        archive.writestr("xl/styles.xml", _STYLES)
        for number, (_, table) in zip(numbers, sheets, strict=True):
            archive.writestr(f"xl/worksheets/sheet{number}.xml", sheet_xml(table))
    return buffer.getvalue()


def sheet_xml(table: pd.DataFrame) -> str:
    """One worksheet: the header row (bold), then one row per table row, built column by column; every
    cell carries its reference (A1), an empty cell is left out."""
    letters = [column_letter(position) for position in range(table.shape[1])]
    header = "".join(
        f'<c r="{letter}1" t="inlineStr" s="1"><is><t>{_text(str(name))}</t></is></c>'
        for letter, name in zip(letters, table.columns, strict=True)
    )
    columns = [_cells(table.iloc[:, position], letters[position]) for position in range(table.shape[1])]
    rows = [
        f'<row r="{number}">' + "".join(cells) + "</row>"
        for number, cells in enumerate(zip(*columns, strict=True), start=2)
    ]
    dimension = f"A1:{letters[-1]}{len(table) + 1}" if letters else "A1"
    return (
        _SHEET_HEAD.format(dimension=dimension) + f'<row r="1">{header}</row>' + "".join(rows) + _SHEET_TAIL
    )


def column_letter(position: int) -> str:
    """The letters of a column (0 -> A, 25 -> Z, 26 -> AA)."""
    letters = ""
    position += 1
    while position:
        position, remainder = divmod(position - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _cells(column: pd.Series, letter: str) -> list[str]:
    values = column.to_numpy(dtype=object)
    rows = range(2, len(values) + 2)
    if pd.api.types.is_bool_dtype(column.dtype):
        return [
            "" if _missing(v) else f'<c r="{letter}{row}" t="b"><v>{int(bool(v))}</v></c>'
            for row, v in zip(rows, values, strict=True)
        ]
    if pd.api.types.is_numeric_dtype(column.dtype):
        return [
            ""
            if _missing(v) or not math.isfinite(float(v))
            else f'<c r="{letter}{row}"><v>{_number(v)}</v></c>'
            for row, v in zip(rows, values, strict=True)
        ]
    return [_cell(value, f"{letter}{row}") for row, value in zip(rows, values, strict=True)]


def _cell(value: object, reference: str) -> str:
    """A cell of a column of mixed or text values ("" for an empty one)."""
    if _missing(value) or value == "":
        return ""
    if isinstance(value, bool | np.bool_):
        return f'<c r="{reference}" t="b"><v>{int(bool(value))}</v></c>'
    if isinstance(value, int | float | np.integer | np.floating):
        return f'<c r="{reference}"><v>{_number(value)}</v></c>' if math.isfinite(float(value)) else ""
    return f'<c r="{reference}" t="inlineStr"><is><t xml:space="preserve">{_text(str(value))}</t></is></c>'


def _number(value: object) -> str:
    if isinstance(value, int | np.integer):
        return str(int(value))
    number = float(value)  # type: ignore[arg-type]
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def _text(text: str) -> str:
    return escape(_NOT_XML.sub("", text))


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _sheet_names(names: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    for name in names:
        base = _FORBIDDEN_IN_SHEET_NAMES.sub(" ", name).strip(" '")[:SHEET_NAME_LENGTH] or "Sheet"
        candidate, suffix = base, 2
        while candidate.lower() in {existing.lower() for existing in chosen}:
            tail = f" ({suffix})"
            candidate, suffix = base[: SHEET_NAME_LENGTH - len(tail)] + tail, suffix + 1
        chosen.append(candidate)
    return chosen
