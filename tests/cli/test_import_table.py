"""`povrisk import table` and `povrisk simulate --export xlsx` as a user runs them: a simulated county out as
archive-card workbooks and back in by the shipped mapping's name, a valid survey folder, into the register
with --county; a file with several problems lists them all, exits 1 and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from survey.io import read_survey
from survey.table_import import read_source
from survey.xlsx import xlsx_workbook

from .invoking import invoke, one_error_line

SIZE = ("--households", "60", "--villages", "3", "--seed", "5", "--draws", "10")


@pytest.fixture
def exported(workplace: Path) -> Path:
    folder = workplace / "county"
    if not folder.exists():
        code, output = invoke("simulate", "--out", str(folder), *SIZE, "--rounds", "2", "--export", "xlsx")
        assert code == 0, output
    return folder


def test_simulate_export_xlsx_writes_a_workbook_per_round_beside_the_tables(exported: Path) -> None:
    cards = exported / "archive-card"
    assert sorted(path.name for path in cards.iterdir()) == ["round-0.xlsx", "round-1.xlsx"]
    assert (exported / "households.parquet").is_file()
    sheet = read_source(cards / "round-1.xlsx", "户表").rows
    assert len(sheet) == 60 and set(sheet["轮次"]) == {1}


def test_an_exported_round_imports_by_the_mapping_name_into_a_valid_survey(
    exported: Path, tmp_path: Path
) -> None:
    out = tmp_path / "imported"
    code, output = invoke(
        "import",
        "table",
        str(exported / "archive-card" / "round-1.xlsx"),
        "--mapping",
        "archive-card",
        "--out",
        str(out),
    )
    assert code == 0, output
    assert "households: 60" in output.splitlines()
    code, output = invoke("validate", str(out))
    assert code == 0, output
    simulated = read_survey(exported).households
    imported = read_survey(out).households
    assert (
        imported["household_id"].tolist() == simulated.loc[simulated["round"] == 1, "household_id"].tolist()
    )


def test_continue_keeps_the_workbooks_up_to_date(tmp_path: Path) -> None:
    folder = tmp_path / "county"
    # 300 households: a 60-household county cannot be continued today (its empty verification table's
    # dtype differs from what the simulator makes again), nothing to do with the workbooks
    size = ("--households", "300", "--villages", "3", "--seed", "4", "--draws", "10")
    code, output = invoke("simulate", "--out", str(folder), *size, "--rounds", "2", "--export", "xlsx")
    assert code == 0, output
    code, output = invoke("simulate", "--continue", str(folder))
    assert code == 0, output
    assert sorted(path.name for path in (folder / "archive-card").iterdir()) == [
        "round-0.xlsx",
        "round-1.xlsx",
        "round-2.xlsx",
    ]


def test_import_with_county_appends_to_the_register(
    exported: Path, tmp_path: Path, local_stores: None
) -> None:
    out = tmp_path / "imported"
    card = exported / "archive-card" / "round-0.xlsx"
    code, output = invoke(
        "import", "table", str(card), "--mapping", "archive-card", "--out", str(out), "--county", "县乙"
    )
    assert code == 0, output
    assert "county 县乙 round 0: " in output
    code, output = invoke("rounds", "--county", "县乙")
    assert code == 0 and "60" in output, output


def test_several_problems_are_listed_and_nothing_is_written(exported: Path, tmp_path: Path) -> None:
    card = exported / "archive-card" / "round-0.xlsx"
    households = read_source(card, "户表").rows
    members = read_source(card, "成员表").rows
    households.loc[0, "住房结构"] = "茅草房"
    households.loc[1, "户编号"] = None
    households.loc[2, "工资性收入（元）"] = -10.0
    households.loc[3, "医疗支出（元）"] = 5e8  # beyond the policy's money bounds (1e8 yuan a year)
    members.loc[0, "健康状况"] = "亚健康"
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(xlsx_workbook([("户表", households), ("成员表", members)]))
    out = tmp_path / "imported"
    code, output = invoke("import", "table", str(bad), "--mapping", "archive-card", "--out", str(out))
    assert code == 1
    text = " ".join(output.split())
    assert "'茅草房' (row 2)" in text
    assert "missing key 户编号 (household_id) in row(s) 3" in text
    assert "'亚健康' (row 2)" in text
    assert "income_wages (工资性收入（元）)" in text and "row 4: -10.0" in text
    assert "medical_expenses (医疗支出（元）)" in text and "row 5: 500000000.0" in text
    assert output.strip().splitlines()[-1].startswith("error: ")
    assert "nothing written" in text
    assert not out.exists()


def test_an_unknown_mapping_and_a_missing_out_are_one_line_errors(exported: Path, tmp_path: Path) -> None:
    card = str(exported / "archive-card" / "round-0.xlsx")
    line = one_error_line("import", "table", card, "--mapping", "no-such", "--out", str(tmp_path / "x"))
    assert "no mapping 'no-such'" in line and "archive-card" in line
    assert "--out" in one_error_line("import", "table", card, "--mapping", "archive-card")


def test_a_member_file_beside_a_household_file(exported: Path, tmp_path: Path) -> None:
    card = exported / "archive-card" / "round-0.xlsx"
    read_source(card, "户表").rows.to_csv(tmp_path / "户表.csv", index=False)
    members = read_source(card, "成员表").rows
    (tmp_path / "成员表.xlsx").write_bytes(xlsx_workbook([("成员表", members)]))
    out = tmp_path / "imported"
    code, output = invoke(
        "import",
        "table",
        str(tmp_path / "户表.csv"),
        str(tmp_path / "成员表.xlsx"),
        "--mapping",
        "archive-card",
        "--out",
        str(out),
    )
    assert code == 0, output
    survey = read_survey(out)
    assert survey.members is not None and len(survey.members) == len(members)
    assert pd.api.types.is_string_dtype(survey.households["household_id"])
