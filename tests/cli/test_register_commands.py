"""`povrisk ingest`, `rounds` and `export` as a user runs them: a simulated county in, the same county out,
identical content ingested twice changing nothing, a changed round refused unless --replace."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from survey.io import read_survey, write_survey

from .invoking import invoke

TABLES = ("households", "members", "villages", "verification")


@pytest.fixture
def county(workplace: Path, local_stores: None) -> Path:
    folder = workplace / "county"
    if not folder.exists():
        code, output = invoke(
            "simulate",
            "--out",
            str(folder),
            "--households",
            "200",
            "--villages",
            "4",
            "--rounds",
            "3",
            "--seed",
            "2",
            "--draws",
            "10",
        )
        assert code == 0, output
    return folder


def test_ingest_then_export_gives_the_county_back(county: Path, workplace: Path) -> None:
    code, output = invoke("ingest", str(county), "--county", "县甲")
    assert code == 0, output
    assert "county 县甲 round 2: added; 200 households" in output
    assert "since round 1: 0 new, 0 missing" in output

    code, output = invoke("ingest", str(county), "--county", "县甲")
    assert code == 0 and "already holds exactly these rounds; nothing changed" in output

    code, output = invoke("rounds", "--county", "县甲")
    assert code == 0 and output.count("县甲\tround") == 3 and "version 1" in output

    out = workplace / "exported"
    code, output = invoke("export", "--county", "县甲", "--out", str(out))
    assert code == 0, output
    original, exported = read_survey(county), read_survey(out)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(exported, name), getattr(original, name))


def test_a_changed_round_is_refused_unless_replace(county: Path, workplace: Path) -> None:
    invoke("ingest", str(county), "--county", "县乙")
    survey = read_survey(county)
    households = survey.households.copy()
    households.loc[households["round"] == 2, "debt"] = 1_000.0
    changed = workplace / "changed"
    write_survey(
        type(survey)(households, survey.members, survey.villages, verification=survey.verification), changed
    )

    code, output = invoke("ingest", str(changed), "--county", "县乙")
    assert code == 1
    assert output.strip().splitlines() == [
        "error: county 县乙 already holds round(s) [2] with other content; nothing was written. Give "
        "--replace to store this version (the old one is kept, marked replaced)"
    ]

    code, output = invoke("ingest", str(changed), "--county", "县乙", "--replace", "--by", "analyst Sun")
    assert code == 0 and "county 县乙 round 2: replaced" in output
    code, output = invoke("rounds", "--county", "县乙", "--history")
    assert output.count("round 2\tversion") == 2 and "(replaced " in output


def test_an_invalid_survey_is_reported_and_nothing_ingested(county: Path, workplace: Path) -> None:
    survey = read_survey(county)
    households = survey.households.copy()
    households.loc[households.index[3], "round"] = 200
    bad = workplace / "bad"
    write_survey(type(survey)(households, survey.members), bad)

    code, output = invoke("ingest", str(bad), "--county", "县丙")
    assert code == 1
    assert "households.round" in output and "nothing was written to the register" in output
    code, output = invoke("rounds", "--county", "县丙")
    assert output.strip() == "the register holds no rounds of county 县丙"


def test_export_of_an_unknown_county_is_one_line(local_stores: None, workplace: Path) -> None:
    code, output = invoke("export", "--county", "nowhere", "--out", str(workplace / "none"))
    assert code == 1 and output.strip().splitlines() == [
        "error: the register holds no rounds of county nowhere (the county is not in the register)"
    ]
