"""The household register: rounds in (validated, all or nothing, idempotent, versioned on --replace),
canonical frames out exactly as they went in, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, text

from store.database import create_schema, make_engine
from store.register import RegisterError, RoundsDiffer, ingest_survey, read_register, register_rounds
from store.register_tables import DATA_TABLES, ingests
from survey.io import Survey, write_survey
from survey.simulate import CountySettings, simulate_county
from survey.validate import SurveyInvalid

from .postgres import isolated_postgres_url

TABLES = ("households", "members", "villages", "verification")


@pytest.fixture(scope="module")
def county() -> Survey:
    return simulate_county(CountySettings(households=240, villages=4, rounds=3, seed=3))


def _ingest(engine: Engine, survey: Survey, county_id: str = "C1", **options: object):  # type: ignore[no-untyped-def]
    return ingest_survey(engine, survey, county_id, source="test", by="analyst Zhao", **options)  # type: ignore[arg-type]


def _row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        counts = {
            name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in DATA_TABLES.items()
        }
        counts["ingests"] = connection.execute(select(func.count()).select_from(ingests)).scalar_one()
    return counts


def _assert_same_survey(got: Survey, expected: Survey) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name).reset_index(drop=True))


def test_a_county_comes_back_frame_for_frame(engine: Engine, county: Survey) -> None:
    _ingest(engine, county)
    _assert_same_survey(read_register(engine, "C1"), county)
    second_round = read_register(engine, "C1", [1])
    assert set(second_round.households["round"]) == {1}
    assert len(second_round.members) == (county.members["round"] == 1).sum()


def test_a_surveys_own_columns_are_kept_and_returned(engine: Engine, county: Survey) -> None:
    households = county.households.assign(
        region=np.where(county.households.index % 2 == 0, "山区", None),
        distance_school_km=np.where(county.households.index % 3 == 0, np.nan, 2.5),
        plots=county.households.index.to_numpy() % 4,
    )
    members = county.members.assign(occupation="farmer")
    survey = Survey(households=households, members=members, villages=county.villages)

    _ingest(engine, survey)

    back = read_register(engine, "C1")
    pd.testing.assert_frame_equal(back.households, households.reset_index(drop=True))
    pd.testing.assert_frame_equal(back.members, members.reset_index(drop=True))
    assert back.verification is None


def test_ingesting_the_same_content_again_changes_nothing(engine: Engine, county: Survey) -> None:
    assert _ingest(engine, county).changed_anything
    before = _row_counts(engine)
    again = _ingest(engine, county)
    assert not again.changed_anything
    assert [summary.outcome for summary in again.rounds] == ["unchanged"] * 3
    assert _row_counts(engine) == before


def test_a_round_that_differs_is_refused_and_nothing_is_written(engine: Engine, county: Survey) -> None:
    _ingest(engine, county)
    before = _row_counts(engine)
    households = county.households.copy()
    changed = households.index[(households["round"] == 2)][:5]
    households.loc[changed, "income_wages"] = 12_345.0
    later = Survey(households, county.members, county.villages, verification=county.verification)
    with pytest.raises(RoundsDiffer, match=r"round\(s\) \[2\]"):
        _ingest(engine, later)
    assert _row_counts(engine) == before


def test_replace_keeps_the_old_version_with_who_when_and_what_changed(engine: Engine, county: Survey) -> None:
    _ingest(engine, county)
    households = county.households.copy()
    round_2 = households.index[households["round"] == 2]
    households.loc[round_2[:5], "income_wages"] = 12_345.0
    corrected = Survey(households, county.members, county.villages, verification=county.verification)

    result = ingest_survey(engine, corrected, "C1", source="corrected", by="analyst Qian", replace=True)

    assert [summary.outcome for summary in result.rounds] == ["unchanged", "unchanged", "replaced"]
    versions = register_rounds(engine, "C1", history=True)
    round_2_versions = versions[versions["round"] == 2]
    assert list(round_2_versions["version"]) == [1, 2]
    assert list(round_2_versions["current"]) == [False, True]
    assert round_2_versions.iloc[0]["replaced_at"] is not None
    with engine.connect() as connection:
        replaced_by = connection.execute(
            select(ingests.c.replaced_by).where(ingests.c.round == 2, ingests.c.version == 1)
        ).scalar_one()
        replacement = connection.execute(
            select(ingests.c.ingested_by, ingests.c.changes).where(
                ingests.c.round == 2, ingests.c.version == 2
            )
        ).one()
    assert replaced_by == replacement.ingested_by == "analyst Qian"
    changes = json.loads(replacement.changes)
    assert changes["replaces_version"] == 1
    assert changes["households"]["changed"] == 5 and changes["households"]["columns_changed"] == [
        "income_wages"
    ]
    assert changes["members"]["changed"] == 0
    _assert_same_survey(read_register(engine, "C1"), corrected)


def test_an_invalid_survey_writes_nothing(engine: Engine, county: Survey) -> None:
    households = county.households.copy()
    households.loc[households.index[0], "income_wages"] = -5.0
    with pytest.raises(SurveyInvalid, match="income_wages"):
        _ingest(engine, Survey(households=households, members=county.members))
    assert _row_counts(engine)["ingests"] == 0


def test_two_counties_with_the_same_household_ids_never_collide(engine: Engine, county: Survey) -> None:
    other = simulate_county(CountySettings(households=240, villages=4, rounds=3, seed=4))
    _ingest(engine, county, "C1")
    _ingest(engine, other, "C2")
    assert set(county.households["household_id"]) & set(other.households["household_id"])
    _assert_same_survey(read_register(engine, "C1"), county)
    _assert_same_survey(read_register(engine, "C2"), other)
    assert list(register_rounds(engine)["county_id"]) == ["C1"] * 3 + ["C2"] * 3


def test_the_summary_counts_what_moved_since_the_round_before(engine: Engine, county: Survey) -> None:
    households, members = county.households, county.members
    in_round_1 = households["round"] == 1
    leaving = households.loc[in_round_1, "household_id"].iloc[0]
    households = households[~(in_round_1 & (households["household_id"] == leaving))].copy()
    members = members[~((members["round"] == 1) & (members["household_id"] == leaving))]
    mover = households.index[households["round"] == 1][0]
    households.loc[mover, "village_id"] = (
        "V0002" if households.loc[mover, "village_id"] == "V0001" else "V0001"
    )

    def rounds_up_to(last: int) -> Survey:
        return Survey(households[households["round"] <= last], members[members["round"] <= last])

    (first,) = _ingest(engine, rounds_up_to(0)).rounds
    assert first.outcome == "added" and first.new_households is None
    assert first.households == (county.households["round"] == 0).sum()
    second = _ingest(engine, rounds_up_to(1)).rounds[1]  # round 0 comes again, unchanged
    assert second.outcome == "added"
    assert second.missing_households == 1 and second.new_households == 0
    assert second.changed_village == 1
    assert set(second.missing_share) >= {"income", "shocks", "members"}


def test_a_county_id_must_be_printable_and_short(engine: Engine, county: Survey) -> None:
    for bad in ("", "C\x001", "C" * 65):
        with pytest.raises(RegisterError, match="county id"):
            _ingest(engine, county, bad)


def test_reading_a_county_the_register_does_not_hold_says_so(engine: Engine) -> None:
    with pytest.raises(RegisterError, match="not in the register"):
        read_register(engine, "nowhere")


@pytest.mark.integration
def test_two_counties_ingested_at_once_on_postgresql(county: Survey) -> None:
    other = simulate_county(CountySettings(households=240, villages=4, rounds=3, seed=4))
    with isolated_postgres_url() as url:
        engine = make_engine(url)
        create_schema(engine)
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(survey: Survey, county_id: str) -> None:
            writer = make_engine(url)
            try:
                start.wait(timeout=30)
                _ingest(writer, survey, county_id)
            except BaseException as error:
                errors.append(error)
            finally:
                writer.dispose()

        threads = [threading.Thread(target=run, args=(s, c)) for s, c in ((county, "C1"), (other, "C2"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        _assert_same_survey(read_register(engine, "C1"), county)
        _assert_same_survey(read_register(engine, "C2"), other)
        engine.dispose()


def test_a_kill_during_ingest_leaves_the_register_as_it_was(tmp_path: Path, county: Survey) -> None:
    """`povrisk ingest` killed (SIGKILL) while its transaction is open: the register holds what it held
    before, and the same ingest run again succeeds."""
    database = tmp_path / "register.db"
    url = f"sqlite:///{database}"
    engine = make_engine(url)
    create_schema(engine)
    _ingest(engine, Survey(households=county.households[county.households["round"] == 0]), "C0")
    before = _row_counts(engine)
    settings = CountySettings(households=20_000, villages=40, rounds=2, seed=5, monte_carlo_draws=0)
    big = simulate_county(settings)
    write_survey(big, tmp_path / "big")
    command = [
        str(Path(sys.executable).with_name("povrisk")),
        "ingest",
        str(tmp_path / "big"),
        "--county",
        "C1",
    ]
    process = subprocess.Popen(
        command,
        env={**os.environ, "POVRISK_DB_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    journal = Path(f"{database}-journal")
    deadline = time.monotonic() + 120
    while not journal.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert process.poll() is None, "the ingest finished before it could be killed mid-transaction"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    assert _row_counts(engine) == before
    assert list(register_rounds(engine)["county_id"]) == ["C0"]
    _ingest(engine, big)
    assert len(read_register(engine, "C1").households) == len(big.households)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"


def test_features_from_the_register_equal_features_from_the_folder(
    engine: Engine, county: Survey, tmp_path: Path
) -> None:
    from features.frame import build_features
    from features.policy import load_policy
    from survey.io import read_survey
    from survey.validate import conform

    write_survey(county, tmp_path / "county")
    _ingest(engine, read_survey(tmp_path / "county"))
    policy = load_policy()
    from_folder, from_register = (
        conform(read_survey(tmp_path / "county")),
        conform(read_register(engine, "C1")),
    )
    pd.testing.assert_frame_equal(
        build_features(from_register.households, from_register.members, policy),
        build_features(from_folder.households, from_folder.members, policy),
    )
