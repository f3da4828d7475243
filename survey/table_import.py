"""Import any survey table through a mapping file: CSV, XLSX, Stata .dta or SPSS .sav -> a canonical survey.

One file (one row per household, or one row per member with the household's answers repeated), or a
household file and a member file (or, in one XLSX workbook, a household sheet and a member sheet, as
the mapping names them). The mapping (`survey.table_mapping`) says which source column is which
canonical column, how categories, units and periods convert, where the round comes from, which extra
columns are kept as slices or features, and where a survey's own label is.

Every problem is collected before anything is decided: a missing column, a value the value map does not
know (with the column and example rows), a number that is not one, a missing key, and every failure of
the canonical schema (`survey.validate`: values out of range, duplicate keys, members without a
household), each named by its source header and its row in the file (the header is row 1 of a CSV or
XLSX file). `TableImportError` carries them all; the caller writes nothing then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from survey.adapters import ImportResult
from survey.derivations import DERIVATIONS, DerivationInput
from survey.io import Survey, not_utf8_message
from survey.schema import Households, Members
from survey.table_mapping import LABEL_COLUMNS, ColumnSpec, TableMapping, value_key
from survey.text import printable
from survey.validate import FAILURE_COLUMNS, ValidationReport, validate_survey

SUFFIXES = (".csv", ".xlsx", ".xlsm", ".dta", ".sav")
EXAMPLE_ROWS = 5
"""How many rows a problem names (then how many more there are)."""
KEY_COLUMNS = {"household_id", "member_id", "village_id"}
_SEPARATOR = "\x1f"  # joins a household id and a round into one group key


class TableImportError(ValueError):
    """The tables cannot be imported with the mapping; `.problems` lists every problem, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SourceTable:
    """Rows as read from a file (or one sheet of it); `first_row` is the file row of the first data row
    (2 below a header row; 1 in a .dta or .sav file, which has no header row)."""

    rows: pd.DataFrame
    name: str
    first_row: int

    def file_rows(self, positions: Iterable[int]) -> list[int]:
        return [self.first_row + int(position) for position in positions]


# ------------------------------------------------------------------------------------------------ reading


def read_source(path: Path, sheet: str | None = None, text_headers: Iterable[str] = ()) -> SourceTable:
    """One table of `path`: a CSV file (UTF-8, a byte-order mark allowed), a sheet of an XLSX workbook
    (`sheet`, else the first), a Stata or SPSS file (value labels as their text). `text_headers` are read
    as text from a CSV file (identifiers: "0012" stays "0012"). Raises `TableImportError`."""
    source = Path(path)
    suffix = source.suffix.lower()
    if not source.is_file():
        raise TableImportError([f"{source}: no such file"])
    if suffix not in SUFFIXES:
        raise TableImportError(
            [f"{source}: cannot read {suffix or 'a file without suffix'}; give {', '.join(SUFFIXES)}"]
        )
    try:
        if suffix == ".csv":
            rows = pd.read_csv(
                source,
                dtype={header: "str" for header in text_headers},
                encoding="utf-8-sig",
                low_memory=False,
            )
            return SourceTable(_clean_headers(rows), str(source), 2)
        if suffix in (".xlsx", ".xlsm"):
            return _read_sheet(source, sheet)
        if suffix == ".dta":
            return SourceTable(
                _clean_headers(pd.read_stata(source, convert_categoricals=True)), str(source), 1
            )
        return SourceTable(_clean_headers(pd.read_spss(source, convert_categoricals=True)), str(source), 1)
    except UnicodeDecodeError as error:
        raise TableImportError([not_utf8_message(source)]) from error
    except TableImportError:
        raise
    except Exception as error:  # each reader raises its own kinds; the message says what is wrong
        raise TableImportError([f"cannot read {source}: {' '.join(str(error).split())}"]) from error


def _read_sheet(path: Path, sheet: str | None) -> SourceTable:
    """A sheet read with calamine (a Rust reader: ~0.4 s for a 5,000-household card where openpyxl's
    read-only mode took ~5 s); numbers come as floats, empty cells as empty text."""
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(str(path))
    if sheet is not None and sheet not in workbook.sheet_names:
        raise TableImportError([f"{path}: no sheet {sheet!r} (it has {', '.join(workbook.sheet_names)})"])
    title = sheet if sheet is not None else workbook.sheet_names[0]
    values = workbook.get_sheet_by_name(title).to_python()
    name = f"{path} [{title}]"
    if not values:
        return SourceTable(pd.DataFrame(), name, 2)
    headers = [str(header) for header in values[0]]
    width = len(headers)
    body = [tuple(row[:width]) + ("",) * (width - len(row)) for row in values[1:]]
    while body and all(cell == "" or cell is None for cell in body[-1]):  # formatted but empty rows below
        body.pop()
    rows = pd.DataFrame(body, columns=headers, dtype=object).replace("", None)
    return SourceTable(_clean_headers(rows), name, 2)


def _clean_headers(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.set_axis([str(header).strip() for header in rows.columns], axis=1)


# ------------------------------------------------------------------------------------------------ mapping


@dataclass(frozen=True)
class Imported:
    """The canonical survey, the import log, and the source headers no part of the mapping read."""

    result: ImportResult
    left_out: tuple[str, ...]


SurveyCheck = Callable[[Survey], ValidationReport]
"""A further check of the converted survey whose failures join the problems, e.g. the policy's money
bounds (`features.policy_checks.check_against_policy`: the survey room cannot import the policy)."""


def import_tables(
    path: Path, mapping: TableMapping, member_path: Path | None = None, checks: Sequence[SurveyCheck] = ()
) -> Imported:
    """Read `path` (and `member_path`) and convert them with `mapping`; raise `TableImportError` with
    every problem found (`checks`' failures too, named by source header and file row)."""
    if mapping.rows == "member" and member_path is not None:
        raise TableImportError(
            [f"mapping {mapping.name} reads one row per member from one file; give one file"]
        )
    text = _text_headers(mapping)
    households_source = read_source(path, mapping.households.sheet, text)
    members_source = None
    if mapping.rows == "household" and mapping.members is not None:
        if member_path is not None:
            members_source = read_source(member_path, mapping.members.sheet, text)
        elif mapping.members.sheet is not None and Path(path).suffix.lower() in (".xlsx", ".xlsm"):
            members_source = read_source(path, mapping.members.sheet, text)
    elif member_path is not None:
        raise TableImportError(
            [f"mapping {mapping.name} has no members table for the second file {member_path}"]
        )
    return convert(households_source, mapping, members_source, checks)


def _text_headers(mapping: TableMapping) -> list[str]:
    keys = [
        spec.column
        for name, spec in mapping.all_specs().items()
        if name.split(".")[-1] in KEY_COLUMNS | {"township_id"} and spec.column is not None
    ]
    return keys + list(mapping.text_columns)


def convert(
    source: SourceTable,
    mapping: TableMapping,
    members_source: SourceTable | None = None,
    checks: Sequence[SurveyCheck] = (),
) -> Imported:
    """The canonical survey from source tables already read (see `import_tables`)."""
    converter = _Converter(mapping)
    if mapping.rows == "member":
        survey, log = converter.member_rows(source)
    else:
        survey, log = converter.household_rows(source, members_source)
    converter.check_schema(survey, checks)
    if converter.problems:
        raise TableImportError(converter.problems)
    left_out = tuple(
        header
        for table in (source, members_source)
        if table is not None
        for header in table.rows.columns
        if header not in converter.read and header not in mapping.ignore
    )
    households, members = survey.households.reset_index(drop=True), survey.members
    members = None if members is None else members.reset_index(drop=True)
    final = Survey(households=households, members=members, villages=survey.villages)
    log |= converter.derivation_log | {"columns_read": len(converter.read), "columns_left_out": len(left_out)}
    return Imported(ImportResult(final, log), left_out)


class _Converter:
    """Applies a mapping, collecting problems instead of stopping at the first."""

    def __init__(self, mapping: TableMapping) -> None:
        self.mapping = mapping
        self.problems: list[str] = []
        self.read: set[str] = set()
        self._origins: dict[str, tuple[SourceTable, np.ndarray]] = {}
        self._headers: dict[tuple[str, str], str] = {}
        self.derivation_log: dict[str, int] = {}

    # -- the two row layouts

    def household_rows(
        self, source: SourceTable, members_source: SourceTable | None
    ) -> tuple[Survey, dict[str, int]]:
        positions = np.arange(len(source.rows))
        households = self._households(source, positions)
        members = None
        if self.mapping.members is not None:
            if members_source is None:
                self.problems.append(
                    f"mapping {self.mapping.name} has a members table: give the member file "
                    "(or name its sheet)"
                )
            else:
                members = self._table(
                    "members",
                    self.mapping.members.columns,
                    members_source,
                    np.arange(len(members_source.rows)),
                )
                members.insert(
                    2, "round", self._round(members_source, np.arange(len(members_source.rows)), "members")
                )
                self._origins["members"] = (members_source, np.arange(len(members_source.rows)))
        households = self._derive(
            source.rows, households, source.rows, np.zeros(len(source.rows), dtype=bool)
        )
        survey = Survey(households=households, members=members, villages=self._villages(source, households))
        log = {"rows_read": len(source.rows), "households": len(households)}
        if members is not None:
            log |= {"member_rows_read": len(members), "members": len(members)}
        return survey, log

    def member_rows(self, source: SourceTable) -> tuple[Survey, dict[str, int]]:
        assert self.mapping.members is not None
        everyone = np.arange(len(source.rows))
        members = self._table("members", self.mapping.members.columns, source, everyone)
        rounds = self._round(source, everyone, "members")
        members.insert(2, "round", rounds)
        self._origins["members"] = (source, everyone)
        is_head = self._is_head(source)
        chosen = _household_row_positions(members["household_id"], rounds, is_head)
        households = self._households(source, chosen)
        households = self._derive(
            source.rows,
            households,
            source.rows.iloc[chosen].set_axis(households.index),
            is_head[chosen],
            household_of_row=members["household_id"],
            row_is_head=is_head,
        )
        survey = Survey(
            households=households, members=members, villages=self._villages(source, households, chosen)
        )
        log = {"rows_read": len(source.rows), "households": len(households), "members": len(members)}
        return survey, log

    # -- tables

    def _households(self, source: SourceTable, positions: np.ndarray) -> pd.DataFrame:
        mapping = self.mapping
        households = self._table("households", mapping.households.columns, source, positions)
        households.insert(2, "round", self._round(source, positions, "households"))
        for part, names in (("slices", mapping.slices), ("features", mapping.features)):
            extra = self._table(part, names, source, positions, keys=False)
            households = pd.concat([households, extra], axis=1)
        label = self._table("label", mapping.label, source, positions, keys=False)
        households = pd.concat([households, label.rename(columns=LABEL_COLUMNS)], axis=1)
        self._origins["households"] = (source, positions)
        for part in ("slices", "features", "label"):
            for name, spec in getattr(mapping, part).items():
                canonical = LABEL_COLUMNS.get(name, name) if part == "label" else name
                self._headers[("households", canonical)] = ", ".join(spec.headers) or f"{part}.{name}"
        return households

    def _table(
        self,
        table: str,
        specs: dict[str, ColumnSpec],
        source: SourceTable,
        positions: np.ndarray,
        keys: bool = True,
    ) -> pd.DataFrame:
        rows = source.rows.iloc[positions]
        columns: dict[str, pd.Series] = {}
        for name, spec in specs.items():
            values = self._column(
                f"{table}.{name}", spec, source, rows, _kind(table, name, spec, self.mapping)
            )
            self._headers[(table, name)] = ", ".join(spec.headers) or f"{table}.{name}"
            if values is not None:
                columns[name] = values
                if keys and name in KEY_COLUMNS:
                    self._missing_keys(name, spec, values, source, positions)
        return pd.DataFrame(columns, index=pd.RangeIndex(len(rows)))

    def _round(self, source: SourceTable, positions: np.ndarray, table: str) -> pd.Series:
        values = self._column("round", self.mapping.round, source, source.rows.iloc[positions], "number")
        self._headers[(table, "round")] = ", ".join(self.mapping.round.headers) or "round"
        if values is None:
            return pd.Series(0, index=pd.RangeIndex(len(positions)), dtype=np.int64)
        whole = values.notna() & (values == values.round())
        if not whole.all():
            rows = source.file_rows(positions[~whole.to_numpy()][:EXAMPLE_ROWS])
            self.problems.append(
                f"{source.name}: column {', '.join(self.mapping.round.headers)} (round): no whole round "
                f"number in row(s) {', '.join(map(str, rows))}"
            )
            return pd.Series(values.fillna(-1).round().to_numpy(dtype=np.int64))
        return values.astype(np.int64)

    def _column(
        self, where: str, spec: ColumnSpec, source: SourceTable, rows: pd.DataFrame, kind: str
    ) -> pd.Series | None:
        index = pd.RangeIndex(len(rows))
        if spec.value is not None:
            constant = pd.Series([spec.value] * len(rows), index=index, dtype=object)
            return _typed(constant, kind)
        present = [header for header in spec.headers if header in rows.columns]
        self.read.update(present)
        if spec.one_hot is not None:
            if not present:
                if not spec.optional:
                    self.problems.append(f"{source.name}: no column of {where}'s group {list(spec.one_hot)}")
                return None
            levels = _one_hot(rows, spec.one_hot, present)
            return _typed(levels if spec.fill is None else levels.fillna(spec.fill), kind)
        assert spec.column is not None
        if spec.column not in rows.columns:
            if not spec.optional:
                self.problems.append(f"{source.name}: missing column {spec.column!r} ({where})")
            return None
        raw = rows[spec.column].reset_index(drop=True)
        value_map = self.mapping.value_map(spec)
        if value_map:
            values = self._mapped(where, spec, raw, value_map, source, rows)
        elif kind == "number":
            values = self._numbers(where, spec, raw, source, rows)
        elif kind == "auto":
            numbers = pd.to_numeric(raw, errors="coerce")
            values = numbers * spec.factor if (numbers.notna() | _blank(raw)).all() else _texts(raw)
        else:
            values = _texts(raw)
        if spec.fill is not None:
            values = values.fillna(spec.fill)
        return _typed(values, kind)

    def _mapped(
        self,
        where: str,
        spec: ColumnSpec,
        raw: pd.Series,
        value_map: dict,
        source: SourceTable,
        rows: pd.DataFrame,
    ) -> pd.Series:
        keys = raw.map(value_key)
        unknown = keys.notna() & ~keys.isin(list(value_map))
        if unknown.any():
            examples = []
            for key, group in keys[unknown].groupby(keys[unknown], sort=False):
                more = f" and {len(group) - EXAMPLE_ROWS} more" if len(group) > EXAMPLE_ROWS else ""
                shown = _positions_to_rows(source, rows, group.index[:EXAMPLE_ROWS])
                examples.append(f"{printable(str(key))!r} (row {', '.join(map(str, shown))}{more})")
            self.problems.append(
                f"{source.name}: column {spec.column!r} ({where}): value(s) not in the mapping's value map: "
                + "; ".join(examples[:EXAMPLE_ROWS])
                + (
                    f"; and {len(examples) - EXAMPLE_ROWS} more value(s)"
                    if len(examples) > EXAMPLE_ROWS
                    else ""
                )
            )
        return keys.map(lambda key: value_map.get(key) if key is not None else None).astype(object)

    def _numbers(
        self, where: str, spec: ColumnSpec, raw: pd.Series, source: SourceTable, rows: pd.DataFrame
    ) -> pd.Series:
        numbers = (
            pd.to_numeric(raw, errors="coerce")
            if raw.dtype == object or str(raw.dtype) in ("str", "string", "category")
            else raw
        )
        if isinstance(numbers.dtype, pd.CategoricalDtype):
            numbers = pd.to_numeric(numbers.astype(object), errors="coerce")
        numbers = numbers.astype(np.float64)
        bad = numbers.isna() & ~_blank(raw)
        if bad.any():
            shown = ", ".join(
                f"{printable(str(value))!r} (row {row})"
                for value, row in zip(
                    raw[bad].head(EXAMPLE_ROWS),
                    _positions_to_rows(source, rows, raw.index[bad][:EXAMPLE_ROWS]),
                    strict=True,
                )
            )
            more = f" and {int(bad.sum()) - EXAMPLE_ROWS} more" if bad.sum() > EXAMPLE_ROWS else ""
            self.problems.append(
                f"{source.name}: column {spec.column!r} ({where}): not a number: {shown}{more}"
            )
        return numbers * spec.factor

    def _missing_keys(
        self, name: str, spec: ColumnSpec, values: pd.Series, source: SourceTable, positions: np.ndarray
    ) -> None:
        missing = values.isna()
        if missing.any():
            rows = source.file_rows(positions[missing.to_numpy()][:EXAMPLE_ROWS])
            more = f" and {int(missing.sum()) - EXAMPLE_ROWS} more" if missing.sum() > EXAMPLE_ROWS else ""
            self.problems.append(
                f"{source.name}: missing key {', '.join(spec.headers) or name} ({name}) "
                f"in row(s) {', '.join(map(str, rows))}{more}"
            )

    def _is_head(self, source: SourceTable) -> np.ndarray:
        head = self.mapping.head
        if head is None:
            return np.zeros(len(source.rows), dtype=bool)
        if head.column not in source.rows.columns:
            self.problems.append(f"{source.name}: missing column {head.column!r} (head)")
            return np.zeros(len(source.rows), dtype=bool)
        self.read.add(head.column)
        return (source.rows[head.column].map(value_key) == value_key(head.value)).to_numpy(dtype=bool)

    def _villages(
        self, source: SourceTable, households: pd.DataFrame, positions: np.ndarray | None = None
    ) -> pd.DataFrame | None:
        if "village_id" not in households.columns:
            return None
        spec = self.mapping.villages.get("township_id")
        villages = pd.DataFrame({"village_id": households["village_id"]})
        if spec is not None:
            rows = source.rows if positions is None else source.rows.iloc[positions]
            township = self._column("villages.township_id", spec, source, rows, "text")
            self._headers[("villages", "township_id")] = ", ".join(spec.headers)
            if township is not None:
                villages["township_id"] = township.to_numpy()
                several = villages.dropna().drop_duplicates().groupby("village_id")["township_id"].nunique()
                if (several > 1).any():
                    self.problems.append(
                        f"{source.name}: village(s) in more than one township: "
                        + ", ".join(map(str, several.index[several > 1][:EXAMPLE_ROWS]))
                    )
        unique = villages.dropna(subset=["village_id"]).drop_duplicates("village_id")
        return unique.sort_values("village_id", kind="stable", ignore_index=True)

    def _derive(
        self,
        rows: pd.DataFrame,
        households: pd.DataFrame,
        household_rows: pd.DataFrame,
        household_row_is_head: np.ndarray,
        household_of_row: pd.Series | None = None,
        row_is_head: np.ndarray | None = None,
    ) -> pd.DataFrame:
        if not self.mapping.derivations or self.problems:
            return households
        given = DerivationInput(
            rows=rows.reset_index(drop=True),
            household_of_row=(
                households["household_id"] if household_of_row is None else household_of_row
            ).reset_index(drop=True),
            row_is_head=pd.Series(household_row_is_head if row_is_head is None else row_is_head),
            household_rows=household_rows.set_axis(households.index),
            household_row_is_head=household_row_is_head,
            households=households,
        )
        for name in self.mapping.derivations:
            if name not in DERIVATIONS:
                self.problems.append(
                    f"mapping {self.mapping.name}: unknown derivation {name!r} "
                    f"(known: {', '.join(DERIVATIONS)})"
                )
                continue
            derived = DERIVATIONS[name](given)
            self.read.update(derived.reads)
            added = pd.DataFrame(
                {column: values.to_numpy() for column, values in derived.households.items()},
                index=households.index,
            )
            households = pd.concat(
                [households.drop(columns=list(added.columns), errors="ignore"), added], axis=1
            )
            self.derivation_log |= derived.log
        return households

    # -- the schema, its failures named by source header and file row

    def check_schema(self, survey: Survey, checks: Sequence[SurveyCheck] = ()) -> None:
        """Add every failure of the canonical schema, named by source header and file row (a missing key
        already reported is not reported again as a schema failure)."""
        report = ValidationReport.combined(validate_survey(survey), *(check(survey) for check in checks))
        if report.ok:
            return
        failures = report.failures
        if any("missing key" in problem for problem in self.problems):
            echoes = failures["column"].isin(list(KEY_COLUMNS)) & failures["check"].astype(str).str.contains(
                "nullable|str_length"
            )
            failures = failures[~echoes]
        rows = [
            self._file_row(table, row) for table, row in zip(failures["table"], failures["row"], strict=True)
        ]
        tidy = failures.assign(
            column=[
                self._header(table, column)
                for table, column in zip(failures["table"], failures["column"], strict=True)
            ],
            row=pd.Series(rows, index=failures.index, dtype=object),
        )
        summary = ValidationReport(failures=tidy.loc[:, list(FAILURE_COLUMNS)]).summary(examples=EXAMPLE_ROWS)
        self.problems.extend(line.strip() for line in summary.splitlines()[1:])

    def _header(self, table: str, column: object) -> str:
        header = self._headers.get((table, str(column)))
        return str(column) if header is None else f"{column} ({header})"

    def _file_row(self, table: str, row: object) -> object:
        if row is None or table not in self._origins or not isinstance(row, int | np.integer):
            return row
        source, positions = self._origins[table]
        return source.first_row + int(positions[int(row)])


def _positions_to_rows(source: SourceTable, rows: pd.DataFrame, positions: Iterable[int]) -> list[int]:
    """File rows of positions within `rows` (a selection of the source's rows)."""
    chosen = rows.index.to_numpy()
    return [source.first_row + int(chosen[int(position)]) for position in positions]


def _household_row_positions(household_id: pd.Series, rounds: pd.Series, is_head: np.ndarray) -> np.ndarray:
    """The source row of each (household, round): its head's row, else its first row; in the order the
    households first appear."""
    key = household_id.fillna("").astype("str") + _SEPARATOR + rounds.astype("str")
    codes, _ = pd.factorize(key)
    order = np.lexsort((~is_head, codes))
    _, first = np.unique(codes[order], return_index=True)
    return order[first]


def _kind(table: str, name: str, spec: ColumnSpec, mapping: TableMapping) -> str:
    """ "text", "number" or "auto" (features: numbers when every answer is one)."""
    if table == "label":
        return "number"
    if table in ("slices", "villages"):
        return "text"
    if table == "features":
        values = [value for value in mapping.value_map(spec).values() if value is not None]
        if values:
            return "text" if any(isinstance(value, str) for value in values) else "number"
        return "auto"
    schema = (Households if table == "households" else Members).to_schema().columns
    if name in schema:
        return "number" if str(schema[name].dtype).startswith(("int", "float")) else "text"
    return "number" if name == "member_target" else "text"


def _one_hot(rows: pd.DataFrame, levels: dict, present: list[str]) -> pd.Series:
    """The level of the first column set to 1 (the mapping's order); NaN when none is."""
    flags = np.column_stack(
        [pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=np.float64) == 1.0 for column in present]
    )
    choices = np.array([levels[column] for column in present], dtype=object)
    chosen = np.where(flags.any(axis=1), choices[flags.argmax(axis=1)], None)
    return pd.Series(chosen, index=pd.RangeIndex(len(rows)), dtype=object)


def _blank(raw: pd.Series) -> pd.Series:
    return raw.map(value_key).isna()


def _texts(raw: pd.Series) -> pd.Series:
    return raw.map(value_key)


def _typed(values: pd.Series, kind: str) -> pd.Series:
    values = values.reset_index(drop=True)
    if kind == "number" or (kind == "auto" and pd.api.types.is_numeric_dtype(values.dtype)):
        return pd.to_numeric(values, errors="coerce").astype(np.float64)
    return values.astype(object).where(values.notna()).astype("str").where(values.notna())
