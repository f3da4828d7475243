"""Register amendments: the latest correction of a field is what the register reads (in bulk and for one
household alike), a member who left is out of the round, what was ingested stays as it was, and a round
replaced later starts clean."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from store.amendments import (
    LEFT_HOUSEHOLD,
    Amendment,
    apply_amendments,
    household_amendments,
    write_amendments,
)
from store.register import (
    amended,
    ingest_survey,
    read_register,
    registered_histories,
    registered_history,
    registered_household,
)
from survey.io import Survey
from survey.simulate import CountySettings, simulate_county

AT = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def county() -> Survey:
    return simulate_county(CountySettings(households=120, villages=3, rounds=2, seed=5))


def _amend(
    engine: Engine, household: str, round_: int, changes: list[Amendment], by: str = "li.cadre"
) -> None:
    registered = registered_household(engine, "C1", household, round_)
    assert registered is not None
    with engine.begin() as connection:
        write_amendments(
            connection,
            registered.ingest_id,
            ("C1", household, round_),
            changes,
            by=by,
            role="cadre",
            flag_id=7,
            at=AT,
        )


def test_the_latest_amendment_of_a_field_is_what_the_register_reads(engine: Engine, county: Survey) -> None:
    ingest_survey(engine, county, "C1", source="test", by="test")
    household = str(county.households["household_id"].iloc[0])
    member = str(county.members.loc[county.members["household_id"] == household, "member_id"].iloc[0])
    _amend(engine, household, 1, [Amendment("income_wages", 1_000.0, previous=np.float64(5.0))])
    _amend(
        engine,
        household,
        1,
        [Amendment("income_wages", 2_500.0), Amendment("health_status", "chronic", member_id=member)],
        by="wang.township",
    )

    survey = read_register(engine, "C1")
    row = survey.households.set_index(["household_id", "round"]).loc[(household, 1)]
    assert row["income_wages"] == 2_500.0
    members = survey.members.set_index(["household_id", "member_id", "round"])
    assert members.loc[(household, member, 1), "health_status"] == "chronic"
    # the other round, the other households and the frame's dtypes are as ingested
    original = county.households.set_index(["household_id", "round"])
    assert (
        survey.households.set_index(["household_id", "round"]).loc[(household, 0), "income_wages"]
        == (original.loc[(household, 0), "income_wages"])
    )
    assert list(survey.households.dtypes) == list(county.households.dtypes)
    untouched = read_register(engine, "C1", amended=False)
    pd.testing.assert_frame_equal(
        untouched.households, county.households.reset_index(drop=True), check_like=False
    )

    # one household read alone sees the same facts
    registered = registered_household(engine, "C1", household, 1)
    assert registered is not None
    assert registered.households["income_wages"].iloc[-1] == 2_500.0
    assert registered.members is not None
    alone = registered.members.set_index(["member_id", "round"])
    assert alone.loc[(member, 1), "health_status"] == "chronic"

    stored = household_amendments(engine, "C1", household)
    assert list(stored["amended_by"]) == ["li.cadre", "wang.township", "wang.township"]
    assert stored["previous"].iloc[0] == 5.0 and stored["value"].iloc[0] == 1_000.0


def test_a_member_who_left_is_out_of_the_round_only(engine: Engine, county: Survey) -> None:
    ingest_survey(engine, county, "C1", source="test", by="test")
    household = str(county.households["household_id"].iloc[3])
    member = str(county.members.loc[county.members["household_id"] == household, "member_id"].iloc[-1])
    _amend(engine, household, 1, [Amendment(LEFT_HOUSEHOLD, True, member_id=member)])
    members = read_register(engine, "C1").members
    of_household = members[members["household_id"] == household]
    assert member not in set(of_household.loc[of_household["round"] == 1, "member_id"])
    assert member in set(of_household.loc[of_household["round"] == 0, "member_id"])


def test_a_replaced_round_starts_clean(engine: Engine, county: Survey) -> None:
    ingest_survey(engine, county, "C1", source="test", by="test")
    household = str(county.households["household_id"].iloc[1])
    _amend(engine, household, 1, [Amendment("income_wages", 4_321.0)])
    households = county.households.copy()
    households.loc[households["round"] == 1, "income_transfers"] = 10.0
    replaced = Survey(households, county.members, county.villages, verification=county.verification)
    ingest_survey(engine, replaced, "C1", source="again", by="test", replace=True)
    row = read_register(engine, "C1").households.set_index(["household_id", "round"]).loc[(household, 1)]
    assert row["income_wages"] != 4_321.0 and row["income_transfers"] == 10.0
    assert len(household_amendments(engine, "C1", household)) == 1  # still on record


def test_amending_in_memory_equals_reading_back(engine: Engine, county: Survey) -> None:
    ingest_survey(engine, county, "C1", source="test", by="test")
    household = str(county.households["household_id"].iloc[2])
    changes = [Amendment("dangerous_house", 1.0), Amendment("housing_area_m2", 30.0)]
    registered = registered_household(engine, "C1", household, 1)
    assert registered is not None
    before_writing = amended(registered, changes)
    _amend(engine, household, 1, changes)
    read_back = registered_household(engine, "C1", household, 1)
    assert read_back is not None
    pd.testing.assert_frame_equal(before_writing.households, read_back.households)


def test_a_field_the_rows_lack_becomes_a_column() -> None:
    rows = pd.DataFrame({"household_id": ["H1", "H2"], "round": [1, 1], "income_wages": [1.0, 2.0]})
    changes = pd.DataFrame(
        {
            "round": [1],
            "household_id": ["H2"],
            "member_id": [None],
            "field": ["medical_insurance"],
            "value": [0.0],
        }
    )
    households, members = apply_amendments(rows, None, changes)
    assert members is None
    assert households["medical_insurance"].isna().tolist() == [True, False]
    assert households.loc[1, "medical_insurance"] == 0.0
    assert "medical_insurance" not in rows.columns  # the caller's frame is left alone


def test_many_households_read_together_equal_each_read_alone(engine: Engine, county: Survey) -> None:
    """`registered_histories` (a village's pages, a phone's queued visits) reads what
    `registered_history` reads for each household, amendments and members who left included."""
    ingest_survey(engine, county, "C1", source="test", by="test")
    households = county.households["household_id"].astype(str).unique().tolist()
    member = str(county.members.loc[county.members["household_id"] == households[1], "member_id"].iloc[-1])
    _amend(engine, households[0], 1, [Amendment("income_wages", 777.0)])
    _amend(engine, households[1], 1, [Amendment(LEFT_HOUSEHOLD, True, member_id=member)])
    chosen = [households[1], households[0], *households[5:40], "NOT-REGISTERED"]
    together = registered_histories(engine, "C1", chosen, up_to=1)
    assert set(together) == set(chosen) - {"NOT-REGISTERED"}
    for household in chosen[:-1]:
        alone = registered_history(engine, "C1", household, 1)
        assert [(r.round, r.village_id, r.ingest_id, r.village_counts) for r in together[household]] == [
            (r.round, r.village_id, r.ingest_id, r.village_counts) for r in alone
        ]
        for mine, single in zip(together[household], alone, strict=True):
            pd.testing.assert_frame_equal(mine.households, single.households)
            if single.members is None:
                assert mine.members is None
            else:
                pd.testing.assert_frame_equal(mine.members, single.members)
    assert together[households[0]][-1].households["income_wages"].iloc[-1] == 777.0
