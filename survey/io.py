"""Reading and writing a survey: one folder holding up to five tables.

A survey folder holds `households`, and optionally `members`, `villages`, `verification` (field
verification findings of a random sample of households) and `truth` (the simulator's ground truth),
each as `<name>.parquet` or `<name>.csv`. Identifiers are always read as strings, so "0012" stays "0012"
even from a CSV file. A CSV file must be UTF-8: one that is not is refused with a line saying so, and
what it looks like instead (GBK/GB18030, UTF-16) with the command that converts it; it is never decoded
on a guess. Writing is atomic: a folder is either the complete old survey
or the complete new one, never a mixture.
"""

from __future__ import annotations

import codecs
import hashlib
import shlex
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

TABLE_NAMES = ("households", "members", "villages", "verification", "truth")
REQUIRED_TABLES = ("households",)
ID_COLUMNS = ("household_id", "member_id", "village_id", "township_id")
HASH_LENGTH = 16
# How much of a file that is not UTF-8 is looked at, from the line of its first bad byte, to tell what
# encoding it looks like; and the share of its non-ASCII characters that must be common Chinese (GB2312)
# for it to look like GBK/GB18030 (text in Latin-1 often decodes as GB18030 too, as rare characters).
ENCODING_SAMPLE_BYTES = 1 << 20
GBK_COMMON_SHARE = 0.9
UTF16_BYTE_ORDER_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


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
    except UnicodeDecodeError as error:
        raise SurveyReadError(not_utf8_message(csv_file)) from error
    except Exception as error:
        bad_file = parquet_file if parquet_file.exists() else csv_file
        raise SurveyReadError(f"cannot read {bad_file}: {error}") from error
    return None


def not_utf8_message(path: Path) -> str:
    """One line on a text file that is not UTF-8: where its first bad byte is and, when it looks like
    GBK/GB18030 (a CSV saved by a spreadsheet on Chinese Windows) or UTF-16, the command converting it."""
    source = Path(path)
    with source.open("rb") as file:
        start = file.read(2)
    bad = _first_non_utf8_byte(source)
    where = "" if bad is None else f" (its first bad byte, 0x{bad[0]:02X}, is on line {bad[1]})"
    message = f"{source} is not UTF-8{where}"
    converted = shlex.quote(str(source.with_name(f"{source.stem}.utf8{source.suffix}")))
    if start in UTF16_BYTE_ORDER_MARKS:
        encoding, looks_like = "UTF-16", "it starts with a UTF-16 byte-order mark"
    elif bad is not None and _looks_like_gbk(source, bad[2]):
        encoding, looks_like = "GB18030", "its bytes decode as GB18030, so it looks like GBK/GB18030 text"
    else:
        return f"{message}; save it as UTF-8 (e.g. iconv -f <its encoding> -t UTF-8)"
    return (
        f"{message}; {looks_like}: convert it with iconv -f {encoding} -t UTF-8 {shlex.quote(str(source))} "
        f"> {converted} and use the converted file in its place"
    )


def _first_non_utf8_byte(path: Path) -> tuple[int, int, int] | None:
    """(the byte, its line, the offset where that line starts) of the first byte that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line, line_start = 0, 1, 0
    with path.open("rb") as file:
        while True:
            chunk = file.read(ENCODING_SAMPLE_BYTES)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                held_back = len(error.object) - len(chunk)  # a sequence begun in the previous chunk
                position = error.start - held_back
                before = chunk[: max(position, 0)]
                if b"\n" in before:
                    line_start = offset + before.rindex(b"\n") + 1
                return error.object[error.start], line + before.count(b"\n"), line_start
            if not chunk:
                return None
            if b"\n" in chunk:
                line_start = offset + chunk.rindex(b"\n") + 1
            line += chunk.count(b"\n")
            offset += len(chunk)


def _looks_like_gbk(path: Path, line_start: int) -> bool:
    """Whether the text from `line_start` on decodes as GB18030 into mostly common Chinese characters."""
    with path.open("rb") as file:
        file.seek(line_start)
        sample = file.read(ENCODING_SAMPLE_BYTES)
    try:
        text = codecs.getincrementaldecoder("gb18030")().decode(sample)  # a cut last character is kept back
    except UnicodeDecodeError:
        return False
    non_ascii = [character for character in text if ord(character) > 0x7F]
    return bool(non_ascii) and sum(map(_is_common_chinese, non_ascii)) >= GBK_COMMON_SHARE * len(non_ascii)


def _is_common_chinese(character: str) -> bool:
    try:
        character.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _ids_as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    id_columns = [column for column in ID_COLUMNS if column in frame.columns]
    if not id_columns:
        return frame
    as_strings = {column: frame[column].astype("str").where(frame[column].notna()) for column in id_columns}
    return frame.assign(**as_strings)


def write_survey(
    survey: Survey,
    path: Path,
    extra_files: Mapping[str, str] | None = None,
    extra_folders: Mapping[str, Callable[[Path], object]] | None = None,
) -> None:
    """Write `survey` as parquet files into folder `path`, atomically.

    The tables are written into a temporary folder beside `path`, which is then renamed into place. An
    existing folder at `path` is replaced only once the new one is complete; on any error nothing new is
    left behind and the old folder is untouched. `extra_files` (file name to UTF-8 text, e.g. a
    simulated county's manifest) are written beside the tables, in the same swap; so are `extra_folders`
    (folder name to a function writing into that folder, e.g. the archive-card workbooks).
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
        for file_name, text in (extra_files or {}).items():
            (staging / file_name).write_text(text, encoding="utf-8")
        for folder_name, write in (extra_folders or {}).items():
            (staging / folder_name).mkdir()
            write(staging / folder_name)
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
