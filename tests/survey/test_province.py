"""A simulated province (`survey.province`): counties drawn around the seed county, written as a Parquet
dataset partitioned by county and round, each county read back as the survey it was simulated as."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

from survey.io import SurveyReadError
from survey.province import (
    MANIFEST,
    ProvinceSettings,
    county_world,
    is_province,
    province_counties,
    province_county_ids,
    read_province_county,
    write_province,
)
from survey.simulate import CountySettings, load_world, simulate_county

SETTINGS = ProvinceSettings(
    counties=3, county=CountySettings(households=60, villages=3, rounds=2, seed=5, monte_carlo_draws=10)
)


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("province") / "p"
    write_province(SETTINGS, folder)
    return folder


def test_counties_have_their_own_seed_level_and_trend_drawn_from_the_province_seed() -> None:
    counties = province_counties(SETTINGS)
    assert [c.county_id for c in counties] == ["C001", "C002", "C003"]
    assert len({c.settings.seed for c in counties}) == 3 and len({c.level for c in counties}) == 3
    assert counties == province_counties(SETTINGS)  # the same seed, the same province
    flat = province_counties(ProvinceSettings(counties=2, county=SETTINGS.county, level_sd=0, trend_sd=0))
    world = load_world()
    assert county_world(flat[0], world) == world
    richer = county_world(counties[0], world)
    assert richer.local_wage == pytest.approx(world.local_wage * counties[0].level)
    assert richer.crop_growth == pytest.approx(world.crop_growth + counties[0].trend)


def test_a_county_reads_back_as_the_survey_it_was_simulated_as(province: Path) -> None:
    assert is_province(province) and province_county_ids(province) == ["C001", "C002", "C003"]
    second = province_counties(SETTINGS)[1]
    alone = simulate_county(second.settings, county_world(second, load_world()))
    back = read_province_county(province, "C002")
    for name in ("households", "members", "villages", "truth", "verification"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(alone, name))


def test_the_dataset_is_partitioned_by_county_and_round_for_any_parquet_reader(province: Path) -> None:
    dataset = ds.dataset(province / "households", format="parquet", partitioning="hive")
    table = dataset.to_table(filter=(ds.field("county_id") == "C003") & (ds.field("round") == 1))
    assert table.num_rows == 60
    assert sorted(path.name for path in (province / "households").iterdir()) == [
        "county_id=C001",
        "county_id=C002",
        "county_id=C003",
    ]
    manifest = json.loads((province / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["settings"]["county"]["households"] == 60 and len(manifest["counties"]) == 3


def test_a_county_the_province_lacks_is_named_with_those_it_holds(province: Path, tmp_path: Path) -> None:
    with pytest.raises(SurveyReadError, match=r"no county 'C009'.*C001, C002, C003"):
        read_province_county(province, "C009")
    (tmp_path / MANIFEST).write_text("{}", encoding="utf-8")
    with pytest.raises(SurveyReadError, match="not a province"):
        read_province_county(tmp_path, "C001")


def test_a_failed_write_leaves_nothing_and_keeps_the_folder_there(tmp_path: Path) -> None:
    target = tmp_path / "p"
    write_province(SETTINGS, target)
    before = sorted(str(p) for p in target.rglob("*"))

    def stop(county: object, survey: object) -> None:
        raise RuntimeError("the machine ran out of disk")

    with pytest.raises(RuntimeError):
        write_province(SETTINGS, target, progress=stop)
    assert sorted(str(p) for p in target.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["p"]
