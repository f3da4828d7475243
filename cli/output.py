"""Writing result files so that a failure never leaves a half-written one behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

FRAME_SUFFIXES = (".csv", ".parquet")


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write` on a temporary file beside `path`, then move it into place in one step."""
    temporary = _temporary_beside(path)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as CSV or Parquet, chosen by the file's suffix."""
    write_atomically(path, _frame_writer(frame, path))


def check_frame_path(path: Path) -> None:
    """Raise ValueError, before any work is done, when a frame cannot be written at `path`: a suffix
    other than .csv / .parquet, a folder in its place, or no writable folder (existing or to be made)
    to hold it."""
    if path.suffix not in FRAME_SUFFIXES:
        raise ValueError(f"{path}: unknown output type {path.suffix!r}; use .csv or .parquet")
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder")
    nearest = next(folder for folder in (path.parent, *path.parent.parents) if folder.exists())
    if not nearest.is_dir():
        raise ValueError(f"cannot write {path}: {nearest} is not a folder")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {path}: folder {nearest} is not writable")


@contextmanager
def staged_frame(frame: pd.DataFrame, paths: Sequence[Path]) -> Iterator[None]:
    """Write `frame` to a temporary file beside each of `paths` (CSV or Parquet by suffix), run the
    block, and only then move every file into place. When a write or the block fails, every temporary
    file is removed and `paths` are left as they were: all the files or none."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path in paths:
            writer = _frame_writer(frame, path)
            staged.append((_temporary_beside(path), path))
            writer(staged[-1][0])
        yield
        for temporary, path in staged:
            os.replace(temporary, path)
    finally:  # what was not moved into place
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)


def write_json(document: dict[str, Any], path: Path) -> None:
    write_atomically(path, lambda target: target.write_text(json.dumps(document, indent=2, sort_keys=True)))


def _frame_writer(frame: pd.DataFrame, path: Path) -> Callable[[Path], None]:
    if path.suffix == ".parquet":
        return lambda target: frame.to_parquet(target, index=False)
    if path.suffix == ".csv":
        return lambda target: frame.to_csv(target, index=False)
    raise ValueError(f"{path}: unknown output type {path.suffix!r}; use .csv or .parquet")


def _temporary_beside(path: Path) -> Path:
    """A new empty file in `path`'s folder (made when absent), hidden and named after `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    return Path(temporary)
