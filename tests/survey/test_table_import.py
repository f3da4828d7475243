"""Importing any survey table through a mapping file: CSV, XLSX, Stata and SPSS; Chinese headers and
values; units, periods and scales; per-household or per-member rows; label, slices and features; every
problem reported at once; the shipped mappings (Costa Rica agrees with its adapter, the archive card
round-trips a simulated county)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from survey.adapters.costa_rica import import_costa_rica
from survey.archive_card import write_archive_cards
from survey.derivations import DERIVATIONS, DerivationInput, Derived
from survey.io import Survey
from survey.simulate import CountySettings, simulate_county
from survey.table_import import TableImportError, convert, import_tables, read_source
from survey.table_mapping import (
    MappingError,
    TableMapping,
    load_mapping,
    mapping_from_settings,
    shipped_mappings,
)
from survey.validate import conform, validate_survey
from survey.xlsx import xlsx_workbook

from ..shared_data import costa_rica_train_csv

NAN = np.nan

HOUSEHOLD_MAPPING = {
    "name": "village-survey",
    "round": {"value": 0},
    "value_sets": {"是否": {"是": 1, "否": 0}},
    "households": {
        "sheet": "户",
        "columns": {
            "household_id": "户编号",
            "village_id": "村",
            "income_wages": {"column": "工资性收入（万元）", "scale": 10000},
            "rent_paid": {"column": "月租金（元）", "per": "month"},
            "medical_insurance": {"column": "是否参加医保", "values": "是否"},
            "housing_structure": {
                "column": "住房结构",
                "values": {"砖混": "brick_concrete", "土木": "earth_wood"},
            },
            "arable_land_mu": {"column": "耕地（亩）", "optional": True},
        },
    },
    "villages": {"township_id": "乡镇"},
    "slices": {"area": {"column": "城乡", "values": {"城镇": "urban", "农村": "rural"}}, "region": "乡镇"},
    "features": {"dependency": "抚养比", "ethnicity": "民族"},
    "label": {"poor": {"column": "是否贫困", "values": "是否"}},
    "members": {
        "sheet": "人",
        "columns": {
            "household_id": "户编号",
            "member_id": "人编号",
            "sex": {"column": "性别", "values": {"男": "male", "女": "female"}},
            "age": "年龄",
            "health_status": {
                "column": "健康状况",
                "values": {
                    "健康": "healthy",
                    "长期慢性病": "chronic",
                    "大病": "serious_illness",
                    "残疾": None,
                },
            },
        },
    },
}


def _households_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "户编号": ["0012", "0013", "0014"],
            "村": ["甲村", "甲村", "乙村"],
            "乡镇": ["东镇", "东镇", "西镇"],
            "工资性收入（万元）": [1.2, 0.35, None],
            "月租金（元）": [100.0, 0.0, 50.0],
            "是否参加医保": ["是", "否", "是"],
            "住房结构": ["砖混", "土木", "砖混"],
            "城乡": ["农村", "农村", "城镇"],
            "抚养比": [0.5, 1.0, 0.0],
            "民族": ["汉", "苗", "汉"],
            "是否贫困": ["否", "是", "否"],
            "户主姓名": ["张三", "李四", "王五"],
        }
    )


def _members_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "户编号": ["0012", "0012", "0013", "0014"],
            "人编号": ["1", "2", "1", "1"],
            "性别": ["男", "女", "女", "男"],
            "年龄": [45, 12, 70, 33],
            "健康状况": ["健康", "健康", "大病", "残疾"],
        }
    )


@pytest.fixture
def mapping() -> TableMapping:
    return mapping_from_settings(HOUSEHOLD_MAPPING)


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    path = tmp_path / "survey.xlsx"
    path.write_bytes(xlsx_workbook([("户", _households_frame()), ("人", _members_frame())]))
    return path


# ---------------------------------------------------------------------------------------------- converting


def test_a_workbook_with_chinese_headers_becomes_a_valid_canonical_survey(
    workbook: Path, mapping: TableMapping
) -> None:
    imported = import_tables(workbook, mapping)
    survey = imported.result.survey
    households = survey.households
    assert households["household_id"].tolist() == ["0012", "0013", "0014"]  # identifiers stay text
    assert households["round"].tolist() == [0, 0, 0]
    np.testing.assert_allclose(households["income_wages"], [12_000.0, 3_500.0, NAN])  # 万元 -> 元
    np.testing.assert_allclose(households["rent_paid"], [1_200.0, 0.0, 600.0])  # per month -> per year
    assert households["medical_insurance"].tolist() == [1.0, 0.0, 1.0]
    assert households["housing_structure"].tolist() == ["brick_concrete", "earth_wood", "brick_concrete"]
    assert "arable_land_mu" not in households.columns  # optional and absent: left out
    assert households["area"].tolist() == ["rural", "rural", "urban"]  # a slice
    assert households["region"].tolist() == ["东镇", "东镇", "西镇"]
    assert households["dependency"].tolist() == [0.5, 1.0, 0.0]  # a numeric feature
    assert households["ethnicity"].tolist() == ["汉", "苗", "汉"]  # a text feature
    assert households["label_poor"].tolist() == [0.0, 1.0, 0.0]
    assert survey.villages is not None
    assert survey.villages.to_dict("list") == {
        "village_id": ["乙村", "甲村"],
        "township_id": ["西镇", "东镇"],
    }
    members = survey.members
    assert members is not None
    assert members["sex"].tolist() == ["male", "female", "female", "male"]
    assert members["health_status"].tolist()[:3] == ["healthy", "healthy", "serious_illness"]
    assert pd.isna(members["health_status"].iloc[3])  # 残疾 says nothing of health
    assert validate_survey(survey).ok
    assert imported.left_out == ("户主姓名",)


def test_a_household_file_and_a_member_file_as_csv(tmp_path: Path, mapping: TableMapping) -> None:
    _households_frame().to_csv(tmp_path / "户.csv", index=False)
    _members_frame().to_csv(tmp_path / "人.csv", index=False)
    survey = import_tables(tmp_path / "户.csv", mapping, tmp_path / "人.csv").result.survey
    assert survey.households["household_id"].tolist() == ["0012", "0013", "0014"]
    assert survey.members is not None and len(survey.members) == 4


def test_member_rows_split_into_households_and_members_from_the_head_row() -> None:
    rows = pd.DataFrame(
        {
            "hh": ["a", "a", "b", "b", "c"],
            "person": ["a1", "a2", "b1", "b2", "c1"],
            "wave": [1, 1, 1, 2, 1],
            "head": [0, 1, 1, 1, 0],
            "village": ["v", "v", "w", "w", "w"],
            "income": [10.0, 20.0, 30.0, 40.0, 50.0],  # the head's row is the household's answer
            "age": [8, 40, 50, 51, 30],
        }
    )
    mapping = mapping_from_settings(
        {
            "name": "panel",
            "rows": "member",
            "round": "wave",
            "head": {"column": "head", "value": 1},
            "households": {
                "columns": {"household_id": "hh", "village_id": "village", "income_wages": "income"}
            },
            "members": {"columns": {"household_id": "hh", "member_id": "person", "age": "age"}},
        }
    )
    imported = convert(_source(rows), mapping)
    households = imported.result.survey.households
    assert households[["household_id", "round", "income_wages"]].values.tolist() == [
        ["a", 1, 20.0],
        ["b", 1, 30.0],
        ["b", 2, 40.0],
        ["c", 1, 50.0],  # no head row: the first row
    ]
    members = imported.result.survey.members
    assert members is not None
    assert members["round"].tolist() == [1, 1, 1, 2, 1]
    assert imported.result.log["households"] == 4


def test_stata_and_spss_files_with_value_labels(tmp_path: Path) -> None:
    pyreadstat = pytest.importorskip("pyreadstat")
    frame = pd.DataFrame({"hhid": ["h1", "h2", "h3"], "vill": ["v1", "v1", "v2"], "water": [1.0, 0.0, 1.0]})
    mapping = mapping_from_settings(
        {
            "name": "labelled",
            "round": {"value": 2},
            "households": {
                "columns": {
                    "household_id": "hhid",
                    "village_id": "vill",
                    "safe_drinking_water": {"column": "water", "values": {"safe": 1, "unsafe": 0}},
                }
            },
        }
    )
    pyreadstat.write_sav(
        frame, str(tmp_path / "survey.sav"), variable_value_labels={"water": {1.0: "safe", 0.0: "unsafe"}}
    )
    labelled = frame.assign(water=pd.Categorical(["safe", "unsafe", "safe"]))
    labelled.to_stata(tmp_path / "survey.dta", write_index=False)
    for name in ("survey.sav", "survey.dta"):
        households = import_tables(tmp_path / name, mapping).result.survey.households
        assert households["safe_drinking_water"].tolist() == [1.0, 0.0, 1.0], name
        assert households["round"].tolist() == [2, 2, 2]


# ------------------------------------------------------------------------------------------------ problems


def test_every_problem_is_reported_at_once(tmp_path: Path, mapping: TableMapping) -> None:
    households = _households_frame()
    households.loc[1, "住房结构"] = "茅草"  # a value the map does not know
    households.loc[2, "住房结构"] = "茅草"
    households.loc[0, "是否参加医保"] = "不知道"
    households["月租金（元）"] = households["月租金（元）"].astype(object)
    households.loc[2, "月租金（元）"] = "五十"  # not a number
    households.loc[1, "户编号"] = None  # a missing key
    households["工资性收入（万元）"] = [1.2, -5.0, 0.1]  # out of range: a wage is at least 0
    households = households.drop(columns="城乡")  # a missing column
    path = tmp_path / "bad.xlsx"
    path.write_bytes(xlsx_workbook([("户", households), ("人", _members_frame())]))
    with pytest.raises(TableImportError) as raised:
        import_tables(path, mapping)
    problems = "\n".join(raised.value.problems)
    assert "'住房结构'" in problems and "'茅草' (row 3, 4)" in problems
    assert "'不知道' (row 2)" in problems
    assert "not a number: '五十' (row 4)" in problems
    assert "missing key 户编号" in problems and "row(s) 3" in problems
    assert "missing column '城乡'" in problems
    assert "income_wages (工资性收入（万元）)" in problems and "row 3: -50000.0" in problems
    assert len(raised.value.problems) >= 6


def test_a_file_that_is_not_utf8_is_refused_with_the_command_that_converts_it(
    tmp_path: Path, mapping: TableMapping
) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes(_households_frame().to_csv(index=False).encode("gb18030"))
    with pytest.raises(TableImportError, match="iconv -f GB18030 -t UTF-8"):
        import_tables(path, mapping)


def test_a_missing_sheet_and_a_missing_member_file_are_named(tmp_path: Path, mapping: TableMapping) -> None:
    path = tmp_path / "one-sheet.xlsx"
    path.write_bytes(xlsx_workbook([("户", _households_frame())]))
    with pytest.raises(TableImportError, match="no sheet '人'"):
        import_tables(path, mapping)
    _households_frame().to_csv(tmp_path / "户.csv", index=False)
    with pytest.raises(TableImportError, match="give the member file"):
        import_tables(tmp_path / "户.csv", mapping)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"households": {"columns": {"household_id": "a", "village_id": "b", "wealth": "c"}}},
            "not canonical",
        ),
        ({"households": {"columns": {"village_id": "b"}}}, "household_id"),
        ({"slices": {"province": "p"}}, "unknown slice"),
        ({"slices": {"area": {"column": "a", "values": {"x": "town"}}}}, "slices.area must map to"),
        (
            {
                "households": {
                    "columns": {"household_id": "a", "village_id": {"column": "b", "values": "nope"}}
                }
            },
            "nope",
        ),
        ({"round": {"column": "a", "value": 0}}, "exactly one of"),
    ],
)
def test_an_invalid_mapping_names_the_field(change: dict, message: str) -> None:
    settings = {
        "name": "m",
        "round": {"value": 0},
        "households": {"columns": {"household_id": "a", "village_id": "b"}},
    }
    with pytest.raises(MappingError, match=message):
        mapping_from_settings(settings | change)


def test_a_mapping_file_by_path_and_the_shipped_ones_by_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(HOUSEHOLD_MAPPING, allow_unicode=True), encoding="utf-8")
    assert load_mapping(path).name == "village-survey"
    assert set(shipped_mappings()) >= {"archive-card", "costa-rica"}
    for name in shipped_mappings():
        assert load_mapping(name).name == name
    with pytest.raises(MappingError, match="archive-card, costa-rica"):
        load_mapping("no-such-mapping")


def test_every_registered_derivation_keeps_the_households_index() -> None:
    """The registry's contract: a function of a DerivationInput returning Derived columns on its index."""
    for name, derivation in DERIVATIONS.items():
        assert list(inspect.signature(derivation).parameters) == ["given"], name
    people = pd.DataFrame(
        {
            "idhogar": ["a", "a", "b"],
            "parentesco1": [1, 0, 1],
            "Target": [2, 2, 4],
            "male": [1, 0, 0],
            "female": [0, 1, 1],
            "hacdor": [0, 0, 1],
        }
    )
    households = pd.DataFrame({"household_id": ["a", "b"]})
    given = DerivationInput(
        rows=people,
        household_of_row=people["idhogar"],
        row_is_head=pd.Series([True, False, True]),
        household_rows=people.iloc[[0, 2]].set_axis(households.index),
        household_row_is_head=np.array([True, True]),
        households=households,
    )
    derived = DERIVATIONS["costa_rica"](given)
    assert isinstance(derived, Derived)
    for column, values in derived.households.items():
        assert values.index.equals(households.index), column
    assert derived.households["label_poor"].tolist() == [1.0, 0.0]
    assert derived.households["head_sex"].tolist() == ["male", "female"]


# ------------------------------------------------------------------------------------------ shipped mappings


@pytest.mark.realdata
def test_the_costa_rica_mapping_agrees_with_its_adapter() -> None:
    source = costa_rica_train_csv()
    if not source.is_file():
        pytest.skip(f"shared Costa Rica data absent: {source}")
    mapped = import_tables(source, load_mapping("costa-rica")).result
    adapted = import_costa_rica(source)
    pd.testing.assert_frame_equal(
        mapped.survey.households.sort_values("household_id", ignore_index=True),
        adapted.survey.households.sort_values("household_id", ignore_index=True),
        check_like=True,
    )
    assert mapped.survey.members is not None and adapted.survey.members is not None
    pd.testing.assert_frame_equal(mapped.survey.members, adapted.survey.members, check_like=True)
    pd.testing.assert_frame_equal(mapped.survey.villages, adapted.survey.villages)
    for count in ("households", "households_without_head", "households_with_disagreeing_targets"):
        assert mapped.log[count] == adapted.log[count]


def test_a_simulated_county_round_trips_through_archive_card_workbooks(tmp_path: Path) -> None:
    county = simulate_county(
        CountySettings(households=40, villages=4, rounds=2, seed=3, monte_carlo_draws=10)
    )
    mapping = load_mapping("archive-card")
    files = write_archive_cards(county, tmp_path)
    assert [path.name for path in files] == ["round-0.xlsx", "round-1.xlsx"]
    rounds = [import_tables(path, mapping) for path in files]
    assert all(imported.left_out == () for imported in rounds)
    imported = conform(
        Survey(
            households=pd.concat([part.result.survey.households for part in rounds], ignore_index=True),
            members=pd.concat([part.result.survey.members for part in rounds], ignore_index=True),
        )
    )
    simulated = conform(Survey(households=county.households, members=county.members))
    # every column the card carries comes back with its dtype; the card adds 家庭人口数 (household_size)
    assert set(imported.households.columns) - set(simulated.households.columns) == {"household_size"}
    pd.testing.assert_frame_equal(imported.households[simulated.households.columns], simulated.households)
    assert imported.members is not None and simulated.members is not None
    pd.testing.assert_frame_equal(imported.members, simulated.members)
    sizes = simulated.members.groupby(["household_id", "round"]).size()
    keyed = imported.households.set_index(["household_id", "round"])["household_size"]
    np.testing.assert_array_equal(keyed.reindex(sizes.index).to_numpy(), sizes.to_numpy())
    villages = rounds[0].result.survey.villages
    assert villages is not None and county.villages is not None
    expected = county.villages[county.villages["village_id"].isin(county.households["village_id"])]
    pd.testing.assert_frame_equal(villages, expected.reset_index(drop=True), check_dtype=False)


def test_the_archive_card_workbook_reads_as_a_person_sees_it(tmp_path: Path) -> None:
    county = simulate_county(
        CountySettings(households=12, villages=2, rounds=2, seed=1, monte_carlo_draws=10)
    )
    (path,) = write_archive_cards(
        Survey(
            households=county.households[county.households["round"] == 0],
            members=county.members,
            villages=county.villages,
        ),
        tmp_path,
    )
    households = read_source(path, "户表").rows
    members = read_source(path, "成员表").rows
    assert {
        "户编号",
        "所在乡镇",
        "所在村",
        "家庭人口数",
        "人均纯收入（元）",
        "是否参加城乡居民基本医疗保险",
        "住房是否安全",
    } <= set(households.columns)
    assert set(households["是否参加城乡居民基本医疗保险"].dropna()) <= {"是", "否"}
    assert {"健康状况", "劳动技能", "务工时间（月）", "性别"} <= set(members.columns)
    assert set(members["性别"]) <= {"男", "女"}


def _source(rows: pd.DataFrame):  # type: ignore[no-untyped-def]
    from survey.table_import import SourceTable

    return SourceTable(rows, "test rows", 2)


def test_the_documented_example_mapping_is_valid() -> None:
    """docs/interfaces.md's example of the format loads as it is written."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "interfaces.md").read_text(encoding="utf-8")
    example = text.split("A mapping file (YAML):", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    mapping = mapping_from_settings(yaml.safe_load(example))
    assert mapping.households.columns["income_wages"].factor == 10000
    assert mapping.households.columns["rent_paid"].factor == 12
