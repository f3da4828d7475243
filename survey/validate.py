"""Checking a survey against the canonical schema, reporting every failure at once.

Two kinds of check: the pandera models of `survey.schema` (types, ranges, categories, duplicate keys,
required columns), run lazily so that all failures are collected, and the checks that span rows or tables
(no household row at all, a round missing between two present ones, a text value holding a control
character (`survey.text`), a household's village missing from the village register, a member or a
verification finding without a household row, a household with implausibly many members).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from survey.io import Survey
from survey.schema import MAX_MEMBERS_PER_HOUSEHOLD, Households, Members, Verification, Villages
from survey.text import CONTROL_CHARACTERS, printable

FAILURE_COLUMNS = ("table", "column", "check", "row", "value")
SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "households": Households,
    "members": Members,
    "villages": Villages,
    "verification": Verification,
}
HOUSEHOLD_KEY = ["household_id", "round"]


@dataclass(frozen=True)
class ValidationReport:
    """Every failure found in a survey: one row per (table, column, check, row, value)."""

    failures: pd.DataFrame

    @property
    def ok(self) -> bool:
        return self.failures.empty

    @classmethod
    def combined(cls, *reports: ValidationReport) -> ValidationReport:
        """One report holding every failure of `reports`, in order."""
        return cls(failures=pd.concat([no_failures(), *(r.failures for r in reports)], ignore_index=True))

    def summary(self, examples: int = 3) -> str:
        """Readable text: the number of failures per table/column/check and the first few examples."""
        if self.ok:
            return "survey is valid: no failures"
        lines = [f"survey is invalid: {len(self.failures)} failure(s)"]
        for (table, column, check), group in self.failures.groupby(
            ["table", "column", "check"], sort=False, dropna=False
        ):
            first = group.head(examples)
            examples_shown = (
                _example(row, value) for row, value in zip(first["row"], first["value"], strict=True)
            )
            shown = ", ".join(example for example in examples_shown if example)
            details = f" - {shown}{', ...' if len(group) > examples else ''}" if shown else ""
            lines.append(f"  {table}.{printable(str(column))} [{check}]: {len(group)} failure(s){details}")
        return "\n".join(lines)


def _example(row: object, value: object) -> str:
    """One failing value as the summary shows it: text escaped (`survey.text.printable`), so that a
    control character in a file can neither hide in nor forge a line of the report."""
    shown = f"'{printable(value)}'" if isinstance(value, str) else repr(value)
    if row is None:  # a failure of a table or a column (a missing column, a missing round), not of a row
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else shown
    return f"row {printable(str(row))}: {shown}"


class SurveyInvalid(ValueError):
    """A survey that failed validation; `.report` holds every failure."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report


def validate_survey(survey: Survey) -> ValidationReport:
    """Run the schema checks on every table present and the cross-table checks; never stops early."""
    tables = _present_tables(survey)
    parts = [_schema_failures(name, frame) for name, frame in tables.items()]
    with_truth = tables if survey.truth is None else {**tables, "truth": survey.truth.reset_index(drop=True)}
    parts += [_control_characters(name, frame) for name, frame in with_truth.items()]
    parts += [
        _no_households(tables["households"]),
        _missing_rounds(tables["households"]),
        _unknown_villages(tables["households"], tables.get("villages")),
        _without_household("members", tables.get("members"), tables["households"]),
        _without_household("verification", tables.get("verification"), tables["households"]),
        _oversized_households(tables.get("members")),
    ]
    failures = pd.concat([no_failures(), *parts], ignore_index=True)
    return ValidationReport(failures=failures)


def conform(survey: Survey) -> Survey:
    """A validated copy of `survey` with every table coerced to the schema's types.

    Raises `SurveyInvalid` (carrying the full report) when any check fails.
    """
    report = validate_survey(survey)
    if not report.ok:
        raise SurveyInvalid(report)
    coerced = {name: SCHEMAS[name].validate(frame.copy()) for name, frame in _present_tables(survey).items()}
    truth = None if survey.truth is None else survey.truth.copy()
    return Survey(truth=truth, **coerced)


def _present_tables(survey: Survey) -> dict[str, pd.DataFrame]:
    """The tables present, indexed by row position so that `row` in a report is the row of the file
    (and a frame with a duplicated index, e.g. a careless concat, is still checked)."""
    tables = {name: getattr(survey, name) for name in SCHEMAS}
    return {name: frame.reset_index(drop=True) for name, frame in tables.items() if frame is not None}


def no_failures() -> pd.DataFrame:
    """An empty failure table (columns FAILURE_COLUMNS)."""
    return pd.DataFrame({column: pd.Series(dtype=object) for column in FAILURE_COLUMNS})


def failure_rows(
    table: str, column: str, check: str, rows: Iterable[object], values: Iterable[object]
) -> pd.DataFrame:
    """One failure table row per (row, value) of one table, column and check."""
    return pd.DataFrame(
        {
            "table": table,
            "column": column,
            "check": check,
            "row": pd.Series(list(rows), dtype=object),
            "value": pd.Series(list(values), dtype=object),
        },
        columns=list(FAILURE_COLUMNS),
    )


def _schema_failures(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    try:
        SCHEMAS[table].validate(frame.copy(), lazy=True)
    except pa.errors.SchemaErrors as errors:
        return _tidy_pandera_cases(table, errors.failure_cases)
    return no_failures()


def _tidy_pandera_cases(table: str, cases: pd.DataFrame) -> pd.DataFrame:
    """Map pandera's failure cases onto the report's columns, dropping the echoes of a failed coercion.

    When a value cannot be coerced pandera also reports the column's dtype check and every range check
    failing with a TypeError; the coercion failure alone says what is wrong.
    """
    check = cases["check"].astype(str)
    missing_column = check == "column_in_dataframe"
    column = cases["column"].astype(str).where(~missing_column, cases["failure_case"].astype(str))
    coerce_failed = set(column[check.str.startswith("coerce_dtype")])
    echo = column.isin(coerce_failed) & (
        check.str.startswith("dtype(") | cases["failure_case"].astype(str).str.startswith("TypeError(")
    )
    kept = ~echo
    row = cases["index"].where(~missing_column, None)
    value = cases["failure_case"].where(~missing_column, None)
    tidy = pd.DataFrame(
        {
            "table": table,
            "column": column[kept].to_numpy(),
            "check": check[kept].to_numpy(),
            "row": row[kept].astype(object).to_numpy(),
            "value": value[kept].astype(object).to_numpy(),
        },
        columns=list(FAILURE_COLUMNS),
    )
    return tidy.sort_values(["column", "check"], kind="stable", ignore_index=True)


def _no_households(households: pd.DataFrame) -> pd.DataFrame:
    """A households table without a single row: nothing to train on, score or monitor."""
    if len(households):
        return no_failures()
    return failure_rows("households", "household_id", "at_least_one_row", pd.Index([None]), pd.Series([None]))


def _missing_rounds(households: pd.DataFrame) -> pd.DataFrame:
    """Rounds absent between the first and the last round present (rounds 0, 1, 3 lack round 2): the
    relapse labels and the earlier-round features pair each round with the one before it."""
    if "round" not in households.columns:
        return no_failures()
    rounds = pd.to_numeric(households["round"], errors="coerce").dropna().unique()
    present = {int(value) for value in rounds if float(value).is_integer()}
    if not present:
        return no_failures()
    missing = sorted(set(range(min(present), max(present) + 1)) - present)
    return failure_rows(
        "households",
        "round",
        "no_round_missing_between_present_rounds",
        pd.Index([None] * len(missing)),
        pd.Series(missing, dtype=object),
    )


def _control_characters(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Text values (ids, categories, any extra text column) holding a control character
    (`survey.text`): PostgreSQL refuses a NUL, and a newline forges lines in a report or a log."""
    parts = [no_failures()]
    for column in frame.columns:
        values = frame[column]
        bad = _holding_control_characters(values)
        if bad.any():
            parts.append(
                failure_rows(table, str(column), "no_control_characters", frame.index[bad], values[bad])
            )
    return pd.concat(parts, ignore_index=True)


def _holding_control_characters(values: pd.Series) -> np.ndarray:
    """Which values are text with a control character; non-text values (numbers, missing) are not."""
    texts = values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values
    if not (pd.api.types.is_object_dtype(texts) or pd.api.types.is_string_dtype(texts)):
        return np.zeros(len(values), dtype=bool)
    try:
        found = texts.str.contains(CONTROL_CHARACTERS, na=False)
    except AttributeError:  # an object column holding no text at all
        return np.zeros(len(values), dtype=bool)
    return found.to_numpy(dtype=bool, na_value=False)


def _as_key(frame: pd.DataFrame, columns: list[str]) -> pd.MultiIndex | None:
    """(id as string, round as number) pairs, or None when a key column is absent."""
    if not set(columns) <= set(frame.columns):
        return None
    parts = [
        pd.to_numeric(frame[column], errors="coerce") if column == "round" else frame[column].astype(str)
        for column in columns
    ]
    return pd.MultiIndex.from_arrays(parts, names=columns)


def _unknown_villages(households: pd.DataFrame, villages: pd.DataFrame | None) -> pd.DataFrame:
    if villages is None or "village_id" not in villages.columns or "village_id" not in households.columns:
        return no_failures()
    village_id = households["village_id"]
    unknown = village_id.notna() & ~village_id.astype(str).isin(set(villages["village_id"].astype(str)))
    return failure_rows(
        "households",
        "village_id",
        "village_in_villages_table",
        households.index[unknown],
        village_id[unknown],
    )


def _without_household(table: str, rows: pd.DataFrame | None, households: pd.DataFrame) -> pd.DataFrame:
    """Rows of `table` (members, verification findings) whose (household_id, round) has no household
    row in the survey."""
    if rows is None:
        return no_failures()
    row_key, household_key = _as_key(rows, HOUSEHOLD_KEY), _as_key(households, HOUSEHOLD_KEY)
    if row_key is None or household_key is None:
        return no_failures()
    orphan = ~row_key.isin(household_key)
    return failure_rows(
        table, "household_id", "household_row_exists", rows.index[orphan], rows["household_id"][orphan]
    )


def _oversized_households(members: pd.DataFrame | None) -> pd.DataFrame:
    if members is None:
        return no_failures()
    member_key = _as_key(members, HOUSEHOLD_KEY)
    if member_key is None:
        return no_failures()
    sizes = pd.Series(1, index=member_key).groupby(level=[0, 1], dropna=False).size()
    oversized = sizes[sizes > MAX_MEMBERS_PER_HOUSEHOLD]
    return failure_rows(
        "members",
        "household_id",
        f"at_most_{MAX_MEMBERS_PER_HOUSEHOLD}_members",
        pd.Index([f"{household_id} round {round_}" for household_id, round_ in oversized.index]),
        oversized,
    )
