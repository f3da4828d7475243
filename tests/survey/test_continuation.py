"""Continuing a simulated county: the manifest, the replayed rounds, and the folders that are refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from survey.continuation import (
    MANIFEST_FILE,
    ContinuationError,
    continue_county,
    manifest_for,
    read_simulated_county,
)
from survey.io import TABLE_NAMES, write_survey
from survey.simulate import SIMULATOR_VERSION, CountySettings, simulate_county

SMALL = CountySettings(households=300, villages=3, rounds=2, seed=2, monte_carlo_draws=8)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A small county written as `povrisk simulate --out` writes it: the tables and the manifest."""
    out = tmp_path / "county"
    write_survey(simulate_county(SMALL), out, extra_files={MANIFEST_FILE: manifest_for(SMALL).to_json()})
    return out


def test_the_manifest_records_the_settings_and_the_simulator(folder: Path) -> None:
    document = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert document["settings"] == {
        "households": 300,
        "villages": 3,
        "rounds": 2,
        "seed": 2,
        "survey_noise": 1.0,
        "first_year": 2014,
        "monte_carlo_draws": 8,
    }
    assert document["simulator_version"] == SIMULATOR_VERSION and len(document["world_sha256"]) == 64
    _, manifest = read_simulated_county(folder)
    assert manifest == manifest_for(SMALL)


def test_continuing_gives_the_longer_county(folder: Path) -> None:
    stored, manifest = read_simulated_county(folder)
    county, longer = continue_county(stored, manifest, more_rounds=2)
    assert longer == manifest_for(replace(SMALL, rounds=4))
    fresh = simulate_county(replace(SMALL, rounds=4))
    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(getattr(county, name), getattr(fresh, name), obj=name)


def test_an_edited_table_is_refused_naming_it(folder: Path) -> None:
    stored, manifest = read_simulated_county(folder)
    truth = stored.truth
    assert truth is not None
    edited = replace(stored, truth=truth.assign(poor=1.0 - truth["poor"]))
    with pytest.raises(ContinuationError, match=r"truth\.parquet .*column poor differs, first at row 0"):
        continue_county(edited, manifest, more_rounds=1)


def test_a_county_of_other_settings_is_refused(folder: Path) -> None:
    stored, manifest = read_simulated_county(folder)
    with pytest.raises(ContinuationError, match=r"households\.parquet"):
        continue_county(stored, replace(manifest, settings=replace(SMALL, seed=3)), more_rounds=1)


def test_another_simulator_version_is_named_when_the_tables_differ(folder: Path) -> None:
    stored, manifest = read_simulated_county(folder)
    other = replace(manifest, settings=replace(SMALL, seed=3), simulator_version=SIMULATOR_VERSION - 1)
    with pytest.raises(ContinuationError, match=f"simulator version {SIMULATOR_VERSION - 1}"):
        continue_county(stored, other, more_rounds=1)


def test_a_missing_table_is_refused(folder: Path) -> None:
    (folder / "verification.parquet").unlink()
    stored, manifest = read_simulated_county(folder)
    with pytest.raises(ContinuationError, match=r"verification\.parquet .*missing table"):
        continue_county(stored, manifest, more_rounds=1)


def test_a_folder_without_manifest_is_refused(folder: Path) -> None:
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(ContinuationError, match=f"no {MANIFEST_FILE}.*simulate --out"):
        read_simulated_county(folder)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{", "not a simulation manifest"),
        ('{"simulator_version": 2, "world_sha256": "x"}', "has no 'settings'"),
        ('{"settings": {"households": "300"}, "simulator_version": 2, "world_sha256": "x"}', "households"),
        ('{"settings": {"counties": 2}, "simulator_version": 2, "world_sha256": "x"}', "keys among"),
        ('{"settings": {"rounds": 0}, "simulator_version": 2, "world_sha256": "x"}', "rounds must be"),
    ],
)
def test_a_bad_manifest_is_refused(folder: Path, text: str, named: str) -> None:
    (folder / MANIFEST_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(ContinuationError, match=named):
        read_simulated_county(folder)


def test_a_folder_holding_other_files_is_refused(folder: Path) -> None:
    (folder / "scores.csv").write_text("household_id,score\n", encoding="utf-8")
    with pytest.raises(ContinuationError, match=r"scores\.csv"):
        read_simulated_county(folder)
