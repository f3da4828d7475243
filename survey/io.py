"""Reading and writing a survey: one folder holding up to five tables.

A survey folder holds `households`, and optionally `members`, `villages`, `verification` (field
verification findings of a random sample of households) and `truth` (the simulator's ground truth),
each as `<name>.parquet` or `<name>.csv`. Identifiers are always read as strings, so "0012" stays "0012"
even from a CSV file. Writing is atomic: a folder is either the complete old survey
or the complete new one, never a mixture.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

TABLE_NAMES = ("households", "members", "villages", "verification", "truth")
REQUIRED_TABLES = ("households",)
ID_COLUMNS = ("household_id", "member_id", "village_id", "township_id")
HASH_LENGTH = 16


class SurveyReadError(Exception):
    """A survey folder or one of its files is missing or cannot be read."""


@dataclass(frozen=True)
class Survey:
    """One survey: households (one row per household and round) and the optional tables beside them."""

    households: pd.DataFrame
    members: pd.DataFrame | None = None
    villages: pd.DataFrame | None = None
    truth: pd.DataFrame | None = None
    verification: pd.DataFrame | None = None


def read_survey(path: Path) -> Survey:
    """Read the survey stored in folder `path`; raise `SurveyReadError` naming what is missing or bad."""
    folder = Path(path)
    if not folder.is_dir():
        raise SurveyReadError(f"survey folder not found: {folder}")
    tables = {name: _read_table(folder, name) for name in TABLE_NAMES}
    for name in REQUIRED_TABLES:
        if tables[name] is None:
            raise SurveyReadError(f"{folder}: no {name}.parquet or {name}.csv")
    households = tables.pop("households")
    assert households is not None
    return Survey(households=households, **tables)


def _read_table(folder: Path, name: str) -> pd.DataFrame | None:
    parquet_file, csv_file = folder / f"{name}.parquet", folder / f"{name}.csv"
    try:
        if parquet_file.exists():
            return _ids_as_strings(pd.read_parquet(parquet_file))
        if csv_file.exists():
            return _ids_as_strings(pd.read_csv(csv_file, dtype={column: str for column in ID_COLUMNS}))
    except Exception as error:
        bad_file = parquet_file if parquet_file.exists() else csv_file
        raise SurveyReadError(f"cannot read {bad_file}: {error}") from error
    return None


def _ids_as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    id_columns = [column for column in ID_COLUMNS if column in frame.columns]
    if not id_columns:
        return frame
    as_strings = {column: frame[column].astype("str").where(frame[column].notna()) for column in id_columns}
    return frame.assign(**as_strings)


def write_survey(survey: Survey, path: Path) -> None:
    """Write `survey` as parquet files into folder `path`, atomically.

    The tables are written into a temporary folder beside `path`, which is then renamed into place. An
    existing folder at `path` is replaced only once the new one is complete; on any error nothing new is
    left behind and the old folder is untouched.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"not a folder: {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.writing-", dir=target.parent))
    try:
        for name in TABLE_NAMES:
            table = getattr(survey, name)
            if table is not None:
                table.to_parquet(staging / f"{name}.parquet", index=False)
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        staging.rename(target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    retired.rmdir()
    target.rename(retired)
    try:
        staging.rename(target)
    except BaseException:
        retired.rename(target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def survey_hash(survey: Survey) -> str:
    """First 16 hex digits of a sha256 over the households and members content (names, types, values),
    and the verification findings when the survey has them (they change the labels)."""
    digest = hashlib.sha256()
    hashed = ("households", "members") + (("verification",) if survey.verification is not None else ())
    for name in hashed:
        table = getattr(survey, name)
        digest.update(name.encode())
        if table is None:
            digest.update(b"<absent>")
            continue
        digest.update(repr([(str(column), str(dtype)) for column, dtype in table.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:HASH_LENGTH]
