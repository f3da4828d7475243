"""Continuing a simulated county by more rounds: the manifest beside its tables, and the check that the
folder's rounds are the ones the simulator makes.

`povrisk simulate --out DIR` writes `simulation.json` beside the survey tables: the county's settings,
the simulator version and the sha256 of the world file it was made with. `povrisk simulate --continue DIR
--rounds K` reads it, simulates the county again with K more rounds, checks that the folder's tables
equal the first rounds of that simulation and writes the longer county with an updated manifest.

The simulator keeps no state between runs, so continuing replays every round: it takes about as long as
simulating the longer county from scratch, and holds the folder's tables and the longer county in memory
at once. Because every round draws from its own random streams (`survey.simulate`), the replayed first
rounds are exactly the stored ones unless the folder was edited or made by another simulator version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from survey.archive_card import ARCHIVE_FOLDER
from survey.io import TABLE_NAMES, Survey, SurveyReadError, read_survey
from survey.simulate import SIMULATOR_VERSION, WORLD_FILE, CountySettings, simulate_county

MANIFEST_FILE = "simulation.json"


class ContinuationError(Exception):
    """A folder cannot be continued: no manifest, a bad one, or tables that are not the simulator's."""


@dataclass(frozen=True)
class SimulationManifest:
    """How a simulated county was made: its settings, the simulator version and the world file's hash."""

    settings: CountySettings
    simulator_version: int
    world_sha256: str

    def to_json(self) -> str:
        document = {
            "settings": asdict(self.settings),
            "simulator_version": self.simulator_version,
            "world_sha256": self.world_sha256,
        }
        return json.dumps(document, indent=2) + "\n"


def manifest_for(settings: CountySettings) -> SimulationManifest:
    """The manifest of a county simulated now, with this simulator and the shipped world file."""
    return SimulationManifest(settings, SIMULATOR_VERSION, world_file_sha256())


def world_file_sha256() -> str:
    return hashlib.sha256(WORLD_FILE.read_bytes()).hexdigest()


def read_simulated_county(folder: Path) -> tuple[Survey, SimulationManifest]:
    """The survey and manifest of a folder written by `povrisk simulate --out`; `ContinuationError` when
    the folder has no manifest, a bad one, or files the simulator does not write (they would be lost)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContinuationError(f"survey folder not found: {folder}")
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ContinuationError(
            f"{folder} has no {MANIFEST_FILE}: only a county written by `povrisk simulate --out` "
            "(which writes that manifest) can be continued"
        )
    manifest = _parse_manifest(manifest_path)
    written = {f"{name}.parquet" for name in TABLE_NAMES} | {MANIFEST_FILE, ARCHIVE_FOLDER}  # --export xlsx
    others = sorted(entry.name for entry in folder.iterdir() if entry.name not in written)
    if others:
        raise ContinuationError(
            f"{folder} holds files `povrisk simulate` does not write ({', '.join(others)}); continuing "
            "rewrites the folder, so move them elsewhere first"
        )
    try:
        return read_survey(folder), manifest
    except SurveyReadError as error:
        raise ContinuationError(str(error)) from error


def _parse_manifest(path: Path) -> SimulationManifest:
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
        settings = document["settings"]
        _check_settings(settings)
        return SimulationManifest(
            settings=CountySettings(**settings),
            simulator_version=int(document["simulator_version"]),
            world_sha256=str(document["world_sha256"]),
        )
    except KeyError as error:
        raise ContinuationError(f"{path} is not a simulation manifest: it has no {error}") from error
    except (ValueError, TypeError) as error:
        raise ContinuationError(f"{path} is not a simulation manifest: {error}") from error


def _check_settings(settings: Any) -> None:
    """Settings are an object of CountySettings' fields, each a number of the field's type."""
    types = {field.name: field.type for field in fields(CountySettings)}  # "int" or "float"
    if not isinstance(settings, dict) or not set(settings) <= set(types):
        raise ValueError(f"settings must be an object with keys among {sorted(types)}")
    for name, value in settings.items():
        allowed = (int, float) if types[name] == "float" else (int,)
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise ValueError(f"setting {name} must be a number of type {types[name]}, got {value!r}")


def continue_county(
    stored: Survey, manifest: SimulationManifest, more_rounds: int
) -> tuple[Survey, SimulationManifest]:
    """The county of `manifest` with `more_rounds` rounds appended, and its manifest; `ContinuationError`
    (naming the first difference) when `stored` is not exactly the county the manifest describes."""
    if more_rounds < 1:
        raise ContinuationError(f"give at least one round to append, got {more_rounds}")
    rounds = manifest.settings.rounds
    longer = manifest_for(_with_rounds(manifest.settings, rounds + more_rounds))
    county = simulate_county(longer.settings)
    for name in TABLE_NAMES:
        difference = _first_difference(getattr(stored, name), _first_rounds(getattr(county, name), rounds))
        if difference is not None:
            raise ContinuationError(
                f"{name}.parquet is not what the simulator makes from {MANIFEST_FILE} ({difference})"
                f"{_version_note(manifest)}"
            )
    return county, longer


def _with_rounds(settings: CountySettings, rounds: int) -> CountySettings:
    return CountySettings(**{**asdict(settings), "rounds": rounds})


def _first_rounds(table: pd.DataFrame | None, rounds: int) -> pd.DataFrame | None:
    if table is None or "round" not in table.columns:
        return table
    return table[table["round"] < rounds].reset_index(drop=True)


def _first_difference(stored: pd.DataFrame | None, expected: pd.DataFrame | None) -> str | None:
    """Where `stored` first differs from `expected` (values, missing cells, types), or None if equal."""
    if stored is None or expected is None:
        return None if stored is expected else f"{'missing' if stored is None else 'unexpected'} table"
    if list(stored.columns) != list(expected.columns):
        return f"columns {list(stored.columns)}, expected {list(expected.columns)}"
    if len(stored) != len(expected):
        return f"{len(stored):,} rows, expected {len(expected):,}"
    for column in expected.columns:
        left, right = stored[column].reset_index(drop=True), expected[column].reset_index(drop=True)
        if left.dtype != right.dtype:
            return f"column {column} is {left.dtype}, expected {right.dtype}"
        if not left.equals(right):
            unequal = (left != right) & ~(left.isna() & right.isna())
            return f"column {column} differs, first at row {int(unequal.to_numpy().argmax()):,}"
    return None


def _version_note(manifest: SimulationManifest) -> str:
    if manifest.simulator_version != SIMULATOR_VERSION:
        return f"; it was made by simulator version {manifest.simulator_version}, this is {SIMULATOR_VERSION}"
    if manifest.world_sha256 != world_file_sha256():
        return "; it was made with another world file (county_world.yaml)"
    return ""
