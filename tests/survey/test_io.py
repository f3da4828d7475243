from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from survey import io as survey_io
from survey.io import Survey, SurveyReadError, read_survey, survey_hash, write_survey


def test_write_then_read_gives_the_same_tables(tmp_path: Path, small_survey: Survey) -> None:
    write_survey(small_survey, tmp_path / "county")
    loaded = read_survey(tmp_path / "county")
    for name in ("households", "members", "villages", "truth", "verification"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(small_survey, name), check_dtype=False)
    assert sorted(path.name for path in (tmp_path / "county").iterdir()) == [
        "households.parquet",
        "members.parquet",
        "truth.parquet",
        "verification.parquet",
        "villages.parquet",
    ]


def test_optional_tables_absent_are_none(tmp_path: Path, small_survey: Survey) -> None:
    write_survey(Survey(households=small_survey.households), tmp_path / "only")
    loaded = read_survey(tmp_path / "only")
    assert loaded.members is None and loaded.villages is None and loaded.truth is None
    assert loaded.verification is None


def test_csv_ids_are_read_as_strings(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "households.csv").write_text("household_id,village_id,round,income_wages\n0012,007,0,100\n")
    (folder / "members.csv").write_text("household_id,member_id,round\n0012,01,0\n")
    loaded = read_survey(folder)
    assert loaded.households.loc[0, "household_id"] == "0012"
    assert loaded.households.loc[0, "village_id"] == "007"
    assert loaded.members is not None and loaded.members.loc[0, "member_id"] == "01"
    assert loaded.households.loc[0, "round"] == 0


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(SurveyReadError, match="not found"):
        read_survey(tmp_path / "nowhere")


def test_missing_households_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "members.csv").write_text("household_id,member_id,round\nH1,H1-01,0\n")
    with pytest.raises(SurveyReadError, match=r"households\.parquet or households\.csv"):
        read_survey(tmp_path)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "households.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(SurveyReadError, match=r"households\.parquet"):
        read_survey(tmp_path)


def test_rewrite_replaces_the_old_survey(tmp_path: Path, small_survey: Survey) -> None:
    target = tmp_path / "county"
    write_survey(small_survey, target)
    write_survey(Survey(households=small_survey.households.head(2)), target)
    loaded = read_survey(target)
    assert len(loaded.households) == 2 and loaded.members is None
    assert [path.name for path in tmp_path.iterdir()] == ["county"]


def test_failed_write_leaves_old_survey_and_no_debris(tmp_path: Path, small_survey: Survey) -> None:
    target = tmp_path / "county"
    write_survey(small_survey, target)
    unwritable = replace(small_survey, truth=pd.DataFrame({"mixed": [1, "a"]}))  # pyarrow cannot store it
    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises, the folder must be intact
        write_survey(unwritable, target)
    assert [path.name for path in tmp_path.iterdir()] == ["county"]
    pd.testing.assert_frame_equal(read_survey(target).truth, small_survey.truth, check_dtype=False)


def test_failed_first_write_leaves_nothing(tmp_path: Path, small_survey: Survey) -> None:
    unwritable = replace(small_survey, members=pd.DataFrame({"mixed": [1, "a"]}))
    with pytest.raises(Exception):  # noqa: B017
        write_survey(unwritable, tmp_path / "county")
    assert list(tmp_path.iterdir()) == []


def test_writing_onto_a_file_is_refused(tmp_path: Path, small_survey: Survey) -> None:
    (tmp_path / "county").write_text("a file")
    with pytest.raises(NotADirectoryError):
        write_survey(small_survey, tmp_path / "county")


def test_hash_is_deterministic_and_content_sensitive(small_survey: Survey) -> None:
    same = Survey(
        households=small_survey.households.copy(),
        members=small_survey.members.copy(),
        verification=small_survey.verification,
    )
    assert survey_hash(small_survey) == survey_hash(same)
    assert len(survey_hash(small_survey)) == survey_io.HASH_LENGTH
    changed = small_survey.households.assign(income_wages=small_survey.households["income_wages"] + 1)
    assert survey_hash(replace(small_survey, households=changed)) != survey_hash(small_survey)
    assert survey_hash(replace(small_survey, members=None)) != survey_hash(small_survey)


def test_hash_ignores_truth_and_villages(small_survey: Survey) -> None:
    assert survey_hash(replace(small_survey, truth=None, villages=None)) == survey_hash(small_survey)


def test_hash_follows_the_verification_findings(small_survey: Survey) -> None:
    """Findings change the labels a model is trained on, so they are part of its data's identity."""
    assert small_survey.verification is not None
    flipped = small_survey.verification.assign(poor=1.0 - small_survey.verification["poor"])
    assert survey_hash(replace(small_survey, verification=flipped)) != survey_hash(small_survey)
    assert survey_hash(replace(small_survey, verification=None)) != survey_hash(small_survey)


CHINESE_HOUSEHOLDS = "household_id,village_id,round,户主姓名\nH1,V1,0,张三\nH2,V1,0,李四\n"


def test_a_gbk_csv_is_refused_with_the_command_that_converts_it(tmp_path: Path) -> None:
    (tmp_path / "households.csv").write_bytes(CHINESE_HOUSEHOLDS.encode("gbk"))
    with pytest.raises(SurveyReadError) as raised:
        read_survey(tmp_path)
    message = str(raised.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(
        f"{tmp_path / 'households.csv'} is not UTF-8 (its first bad byte, 0xBB, is on line 1)"
    )
    assert "looks like GBK/GB18030" in message
    assert f"iconv -f GB18030 -t UTF-8 {tmp_path / 'households.csv'} > " in message


def test_a_gbk_members_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "households.csv").write_text("household_id,village_id,round\nH1,V1,0\n", encoding="utf-8")
    members = "household_id,member_id,round,relation\nH1,H1-01,0,head\nH1,H1-02,0,配偶\n"
    (tmp_path / "members.csv").write_bytes(members.encode("gbk"))
    with pytest.raises(SurveyReadError, match=r"members\.csv is not UTF-8 .* on line 3\).*GBK/GB18030"):
        read_survey(tmp_path)


def test_a_latin1_csv_is_refused_without_a_gbk_hint(tmp_path: Path) -> None:
    households = "household_id,village_id,round,nombre\nH1,V1,0,Año Peñas\n"  # decodes as GB18030 too
    (tmp_path / "households.csv").write_bytes(households.encode("latin-1"))
    with pytest.raises(SurveyReadError) as raised:
        read_survey(tmp_path)
    assert "households.csv is not UTF-8" in str(raised.value)
    assert "GB18030" not in str(raised.value)


def test_a_utf16_csv_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "households.csv").write_bytes(CHINESE_HOUSEHOLDS.encode("utf-16"))
    with pytest.raises(
        SurveyReadError, match="UTF-16 byte-order mark: convert it with iconv -f UTF-16 -t UTF-8"
    ):
        read_survey(tmp_path)


def test_utf8_with_chinese_text_is_read(tmp_path: Path) -> None:
    (tmp_path / "households.csv").write_text(CHINESE_HOUSEHOLDS, encoding="utf-8")
    assert read_survey(tmp_path).households["户主姓名"].tolist() == ["张三", "李四"]
