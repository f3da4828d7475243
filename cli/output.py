"""Writing result files so that a failure never leaves a half-written one behind."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write` on a temporary file beside `path`, then move it into place in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as CSV or Parquet, chosen by the file's suffix."""
    if path.suffix == ".parquet":
        write_atomically(path, lambda target: frame.to_parquet(target, index=False))
    elif path.suffix == ".csv":
        write_atomically(path, lambda target: frame.to_csv(target, index=False))
    else:
        raise ValueError(f"{path}: unknown output type {path.suffix!r}; use .csv or .parquet")


def write_json(document: dict[str, Any], path: Path) -> None:
    write_atomically(path, lambda target: target.write_text(json.dumps(document, indent=2, sort_keys=True)))
