"""Household ids in what povrisk logs to MLflow: keyed hashes (HMAC-SHA256), never the ids themselves.

Everyone who can read the MLflow store sees the runs' tags, including the survey's data hash, so a hash
keyed by anything MLflow holds could be recomputed for every plausible id (H000001, H000002, ...). The
key is a secret kept outside MLflow: `POVRISK_ID_SALT` when set (give it the same value on every machine
that trains into one store), else a random key in `.povrisk/id-key` beside the SQLite MLflow store (in
the working folder for a remote store), created on first use, readable by its owner only. Rows of two
runs hashed with the same key can be matched (promotion does); each run records the key's fingerprint
(`key_fingerprint`), from which the key cannot be recovered.

The key is not the service's log salt (`POVRISK_LOG_SALT`): a log line and a training artifact should
not be joinable by whoever reads both.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

ID_KEY_VARIABLE = "POVRISK_ID_SALT"
KEY_FILE = Path(".povrisk") / "id-key"
HOUSEHOLD_ID = "household_id"
HOUSEHOLD_REF = "household_ref"
REF_PREFIX = "hr-"
REF_HEX_DIGITS = 32  # 128 bits: no collision among any county's households
FINGERPRINT_MESSAGE = b"povrisk household key fingerprint"
# A token of an HTML or CSV text that may be a whole household id (ids hold no space, quote, tag or comma).
TEXT_TOKEN = re.compile(r"[^\s<>\"',;]+")


def household_key(folder: Path) -> bytes:
    """The key: `POVRISK_ID_SALT` when set, else the contents of `folder/.povrisk/id-key`, created
    (random, mode 0600) when absent."""
    configured = os.environ.get(ID_KEY_VARIABLE)
    if configured:
        return configured.encode("utf-8")
    path = folder / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ValueError(f"the household id key file {path} is empty; delete it to make a new key")
    return key.encode("utf-8")


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(secrets.token_hex(32) + "\n")


def key_fingerprint(key: bytes) -> str:
    """A short public name of the key: equal for equal keys, and the key cannot be recovered from it."""
    return hmac.new(key, FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:16]


def household_ref(household_id: str, key: bytes) -> str:
    """`hr-` and the first 32 hex digits of HMAC-SHA256(key, household id)."""
    digest = hmac.new(key, str(household_id).encode("utf-8"), hashlib.sha256).hexdigest()
    return REF_PREFIX + digest[:REF_HEX_DIGITS]


def household_refs(household_ids: pd.Series | pd.Index, key: bytes) -> dict[str, str]:
    """Each distinct id and its reference."""
    return {str(value): household_ref(str(value), key) for value in pd.unique(household_ids)}


def pseudonymised(frame: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """A copy of `frame` whose `household_id` column or index level is replaced by `household_ref`."""
    names = list(frame.index.names)
    if HOUSEHOLD_ID in names:
        flat = _replace_column(frame.reset_index(), key)
        return flat.set_index([HOUSEHOLD_REF if name == HOUSEHOLD_ID else name for name in names])
    if HOUSEHOLD_ID in frame.columns:
        return _replace_column(frame, key)
    return frame.copy()


def _replace_column(frame: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """A new frame: `household_ref` where the `household_id` column was."""
    refs = household_refs(frame[HOUSEHOLD_ID].astype(str), key)
    position = frame.columns.get_loc(HOUSEHOLD_ID)
    column = frame[HOUSEHOLD_ID].astype(str).map(refs)
    frame = frame.drop(columns=HOUSEHOLD_ID)
    frame.insert(int(position), HOUSEHOLD_REF, column)  # type: ignore[arg-type]
    return frame


def pseudonymised_text(text: str, refs: Mapping[str, str]) -> str:
    """`text` with every token that is a whole household id of `refs` replaced by its reference."""
    return TEXT_TOKEN.sub(lambda match: refs.get(match.group(), match.group()), text)


TEXT_SUFFIXES = frozenset({".html", ".htm", ".json", ".md", ".txt", ".csv"})


def pseudonymised_folder(source: Path, target: Path, key: bytes) -> None:
    """Copy the files of `source` into `target` without household ids: a table (CSV, Parquet) with a
    `household_id` column gets `household_ref` instead, and in every text file (HTML, JSON, CSV, ...)
    each whole household id those tables hold is replaced by its reference. Other files are copied."""
    files = sorted(path for path in source.rglob("*") if path.is_file())
    refs: dict[str, str] = {}
    tables: dict[Path, pd.DataFrame] = {}
    for path in files:
        table = _read_table(path)
        if table is not None and HOUSEHOLD_ID in table.columns:
            refs |= household_refs(table[HOUSEHOLD_ID].astype(str), key)
            tables[path] = pseudonymised(table, key)
    for path in files:
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if path in tables:
            _write_table(tables[path], destination)
        elif path.suffix.lower() in TEXT_SUFFIXES:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            destination.write_text(pseudonymised_text(text, refs), encoding="utf-8", errors="surrogateescape")
        else:
            destination.write_bytes(path.read_bytes())


def _read_table(path: Path) -> pd.DataFrame | None:
    """A CSV (every cell as text, kept as written) or Parquet file; None for other files."""
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    return None


def _write_table(table: pd.DataFrame, path: Path) -> None:
    if path.suffix.lower() == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
