"""A county's round exported to Parquet by village block (`store.province_export`) reads back, for any
villages, the very Survey the register's database read gives (`read_register_villages`): a household that
moved village brings its earlier rows along, amendments are laid over as the register lays them, and a
new export replaces the old one whole."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from store.amendments import LEFT_HOUSEHOLD, Amendment, write_amendments
from store.province_export import (
    ExportError,
    export_is_current,
    export_round,
    read_exported_villages,
    read_manifest,
)
from store.register import ingest_survey, read_register_villages, registered_household
from survey.io import Survey
from survey.simulate import CountySettings, simulate_county

ROUND = 2
AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def county() -> Survey:
    """Six villages, three rounds, and what a real register holds beside the simulator's panel: a
    household that moved village, one new in the last round, one gone from it, a survey's own columns."""
    simulated = simulate_county(CountySettings(households=240, villages=6, rounds=3, seed=3))
    households = simulated.households.copy()
    last = households[households["round"] == ROUND]
    moved, new, gone = (str(last["household_id"].iloc[i]) for i in (0, 1, 2))
    earlier_village = "V0006" if last["village_id"].iloc[0] != "V0006" else "V0001"
    households.loc[(households["household_id"] == moved) & (households["round"] < ROUND), "village_id"] = (
        earlier_village
    )
    households = households.assign(
        region=pd.Series(
            ["山区" if index % 2 == 0 else None for index in range(len(households))], index=households.index
        ),
        plots=households.index.to_numpy() % 4,
        # an object column of mixed values, as an imported survey's own column may be
        grant=pd.Series(
            [("none", 300, None, 2.5)[index % 4] for index in range(len(households))],
            index=households.index,
            dtype=object,
        ),
    )

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        dropped = ((frame["household_id"] == new) & (frame["round"] < ROUND)) | (
            (frame["household_id"] == gone) & (frame["round"] == ROUND)
        )
        return frame[~dropped].reset_index(drop=True)

    assert simulated.members is not None and simulated.verification is not None
    return Survey(
        households=keep(households),
        members=keep(simulated.members),
        villages=simulated.villages,
        verification=keep(simulated.verification),
    )


def _moved(county: Survey) -> tuple[str, str, str]:
    """The household that moved, the village it lives in in ROUND and the one it lived in before."""
    households = county.households
    villages = households.groupby("household_id")["village_id"].nunique()
    moved = str(villages[villages > 1].index[0])
    rows = households[households["household_id"] == moved].set_index("round")["village_id"]
    return moved, str(rows[ROUND]), str(rows[0])


def _amend(engine: Engine, household: str, round_: int, changes: list[Amendment]) -> None:
    registered = registered_household(engine, "C1", household, round_)
    assert registered is not None
    with engine.begin() as connection:
        write_amendments(
            connection,
            registered.ingest_id,
            ("C1", household, round_),
            changes,
            by="li.cadre",
            role="cadre",
            flag_id=None,
            at=AT,
        )


def _amended_register(engine: Engine, county: Survey) -> None:
    """The county in the register with corrections: of the moved household's earlier round (where it
    lived elsewhere), of a member, a member who left, and a field the survey does not have."""
    ingest_survey(engine, county, "C1", source="test", by="test")
    moved, _, _ = _moved(county)
    _amend(engine, moved, 1, [Amendment("income_wages", 12_345.0)])
    assert county.members is not None
    last = county.members[county.members["round"] == ROUND]
    household, member = str(last["household_id"].iloc[10]), str(last["member_id"].iloc[10])
    leaving = last[last["household_id"] == household]["member_id"].iloc[-1]
    _amend(
        engine,
        household,
        ROUND,
        [
            Amendment("health_status", "chronic", member_id=member),
            Amendment(LEFT_HOUSEHOLD, True, member_id=str(leaving)),
            Amendment("visit_note", "roof repaired"),
        ],
    )


def _assert_same(got: Survey, expected: Survey) -> None:
    for name in ("households", "members", "villages", "verification", "truth"):
        mine, theirs = getattr(got, name), getattr(expected, name)
        if theirs is None:
            assert mine is None, name
        else:
            pd.testing.assert_frame_equal(mine, theirs, check_exact=True, obj=name)


def test_any_villages_read_from_the_export_as_from_the_register(
    engine: Engine, county: Survey, tmp_path: Path
) -> None:
    _amended_register(engine, county)
    manifest = export_round(engine, "C1", ROUND, tmp_path / "export", households_per_block=70)
    assert len(manifest.blocks) >= 3
    moved, lives_in, lived_in = _moved(county)
    villages = [village for block in manifest.blocks for village in block]
    choices = [
        *([village] for village in villages),
        villages[1:4],  # across blocks
        villages,
        [lived_in],  # the moved household's earlier village: its rows are not there
        [lives_in],
        ["V9999"],
        [],
    ]
    for chosen in choices:
        expected = read_register_villages(engine, "C1", ROUND, chosen)
        _assert_same(read_exported_villages(tmp_path / "export", "C1", ROUND, chosen), expected)

    whole = read_exported_villages(tmp_path / "export", "C1", ROUND, [lives_in])
    history = whole.households[whole.households["household_id"] == moved]
    assert history["village_id"].tolist() == [lived_in, lived_in, lives_in]
    assert 12_345.0 in history["income_wages"].tolist()
    assert "visit_note" in read_register_villages(engine, "C1", ROUND, villages).households.columns


def test_a_new_export_replaces_the_old_whole_and_tells_when_it_is_stale(
    engine: Engine, county: Survey, tmp_path: Path
) -> None:
    ingest_survey(engine, county, "C1", source="test", by="test")
    target = tmp_path / "exports" / "C1-2"
    export_round(engine, "C1", ROUND, target, households_per_block=100)
    assert export_is_current(engine, target)

    moved, lives_in, _ = _moved(county)
    _amend(engine, moved, ROUND, [Amendment("income_wages", 1.0)])
    assert not export_is_current(engine, target)
    export_round(engine, "C1", ROUND, target, households_per_block=100)
    assert export_is_current(engine, target)
    assert [path.name for path in target.parent.iterdir()] == ["C1-2"], "no staging or retired folder left"
    _assert_same(
        read_exported_villages(target, "C1", ROUND, [lives_in]),
        read_register_villages(engine, "C1", ROUND, [lives_in]),
    )


def test_an_export_is_read_only_for_its_county_and_round(
    engine: Engine, county: Survey, tmp_path: Path
) -> None:
    ingest_survey(engine, county, "C1", source="test", by="test")
    export_round(engine, "C1", 1, tmp_path / "export")
    assert read_manifest(tmp_path / "export").round == 1
    with pytest.raises(ExportError, match="not round 2 of county C1"):
        read_exported_villages(tmp_path / "export", "C1", ROUND, ["V0001"])
    with pytest.raises(ExportError, match="no export"):
        read_exported_villages(tmp_path / "nothing", "C1", ROUND, ["V0001"])
