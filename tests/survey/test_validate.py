from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from survey.io import Survey
from survey.schema import MAX_MEMBERS_PER_HOUSEHOLD
from survey.validate import FAILURE_COLUMNS, SurveyInvalid, conform, validate_survey


def _failed_checks(survey: Survey) -> set[tuple[str, str]]:
    failures = validate_survey(survey).failures
    return set(zip(failures["table"], failures["column"], strict=True))


def test_good_survey_is_ok(small_survey: Survey) -> None:
    report = validate_survey(small_survey)
    assert report.ok
    assert list(report.failures.columns) == list(FAILURE_COLUMNS)
    assert "valid" in report.summary()


def test_survey_with_only_required_columns_validates() -> None:
    households = pd.DataFrame({"household_id": ["A", "B"], "village_id": ["V", "V"], "round": [0, 0]})
    members = pd.DataFrame({"household_id": ["A", "B"], "member_id": ["A1", "B1"], "round": [0, 0]})
    assert validate_survey(Survey(households=households, members=members)).ok


def test_negative_age_is_reported(small_survey: Survey) -> None:
    members = small_survey.members.assign(age=[45.0, -3.0, 70.0, 33.0, 46.0, 13.0, 71.0, 34.0])
    failures = validate_survey(replace(small_survey, members=members)).failures
    row = failures[(failures["column"] == "age")]
    assert len(row) == 1
    assert row.iloc[0]["table"] == "members" and row.iloc[0]["row"] == 1 and row.iloc[0]["value"] == -3.0
    assert "greater_than_or_equal_to" in row.iloc[0]["check"]


def test_unknown_category_is_reported(small_survey: Survey) -> None:
    households = small_survey.households.assign(housing_structure=["castle", *["brick_wood"] * 5])
    failures = validate_survey(replace(small_survey, households=households)).failures
    bad = failures[failures["column"] == "housing_structure"]
    assert bad[["row", "value"]].values.tolist() == [[0, "castle"]]


def test_duplicate_household_is_reported(small_survey: Survey) -> None:
    households = pd.concat([small_survey.households, small_survey.households.iloc[[0]]], ignore_index=True)
    failures = validate_survey(replace(small_survey, households=households)).failures
    duplicates = failures[failures["check"].str.contains("uniqueness")]
    assert set(duplicates["row"]) == {0, 6}
    assert (duplicates["table"] == "households").all()


def test_unknown_village_is_reported(small_survey: Survey) -> None:
    households = small_survey.households.assign(village_id=["V01", "V01", "V99", "V01", "V01", "V02"])
    failures = validate_survey(replace(small_survey, households=households)).failures
    assert failures[["table", "column", "check", "row", "value"]].values.tolist() == [
        ["households", "village_id", "village_in_villages_table", 2, "V99"]
    ]


def test_unknown_village_is_not_checked_without_a_village_table(small_survey: Survey) -> None:
    households = small_survey.households.assign(village_id="V99")
    assert validate_survey(replace(small_survey, households=households, villages=None)).ok


def test_orphan_member_is_reported(small_survey: Survey) -> None:
    orphan = pd.DataFrame({"household_id": ["H009"], "member_id": ["H009-01"], "round": [0]})
    members = pd.concat([small_survey.members, orphan], ignore_index=True)
    failures = validate_survey(replace(small_survey, members=members)).failures
    assert failures[["table", "check", "row", "value"]].values.tolist() == [
        ["members", "household_row_exists", 8, "H009"]
    ]


def test_verification_of_an_unknown_household_or_a_bad_finding_is_reported(small_survey: Survey) -> None:
    assert small_survey.verification is not None
    extra = pd.DataFrame({"household_id": ["H009", "H001"], "round": [0, 0], "poor": [1.0, 0.5]})
    verification = pd.concat([small_survey.verification, extra], ignore_index=True)
    failures = validate_survey(replace(small_survey, verification=verification)).failures
    found = set(map(tuple, failures[["table", "column", "row"]].values.tolist()))
    assert ("verification", "household_id", 2) in found  # H009 has no household row
    assert ("verification", "poor", 3) in found  # a finding is 0 or 1


def test_member_in_a_round_without_its_household_is_an_orphan(small_survey: Survey) -> None:
    late = pd.DataFrame({"household_id": ["H001"], "member_id": ["H001-01"], "round": [2]})
    members = pd.concat([small_survey.members, late], ignore_index=True)
    assert ("members", "household_id") in _failed_checks(replace(small_survey, members=members))


def test_oversized_household_is_reported(small_survey: Survey) -> None:
    size = MAX_MEMBERS_PER_HOUSEHOLD + 1
    crowd = pd.DataFrame(
        {"household_id": ["H001"] * size, "member_id": [f"X{i}" for i in range(size)], "round": [0] * size}
    )
    members = pd.concat([small_survey.members, crowd], ignore_index=True)
    failures = validate_survey(replace(small_survey, members=members)).failures
    assert failures["check"].tolist() == [f"at_most_{MAX_MEMBERS_PER_HOUSEHOLD}_members"]
    assert failures.iloc[0]["value"] == size + 2


def test_type_failure_is_reported_once(small_survey: Survey) -> None:
    members = small_survey.members.astype({"age": object})
    members.loc[3, "age"] = "abc"
    failures = validate_survey(replace(small_survey, members=members)).failures
    assert failures[["column", "row", "value"]].values.tolist() == [["age", 3, "abc"]]
    assert failures.iloc[0]["check"].startswith("coerce_dtype")


def test_missing_required_column_is_reported(small_survey: Survey) -> None:
    households = small_survey.households.drop(columns=["village_id"])
    failures = validate_survey(replace(small_survey, households=households)).failures
    missing = failures[failures["check"] == "column_in_dataframe"]
    assert missing[["table", "column"]].values.tolist() == [["households", "village_id"]]


def test_every_failure_is_reported_together(small_survey: Survey) -> None:
    households = small_survey.households.assign(
        village_id=["V01", "V77", "V02", "V01", "V01", "V02"],
        income_wages=[-1.0, 0.0, 30_000.0, 14_000.0, 2_000.0, 31_000.0],
        poverty_status=["never_poor", "rich", "never_poor", "never_poor", "exited", "never_poor"],
    )
    members = small_survey.members.astype({"age": object}).assign(
        household_id=["H001", "H001", "H002", "H003", "H001", "H001", "H002", "H404"]
    )
    members.loc[0, "age"] = "abc"
    villages = pd.concat([small_survey.villages, small_survey.villages.iloc[[0]]], ignore_index=True)
    report = validate_survey(Survey(households=households, members=members, villages=villages))
    assert _failed_checks(Survey(households=households, members=members, villages=villages)) == {
        ("households", "village_id"),
        ("households", "income_wages"),
        ("households", "poverty_status"),
        ("members", "age"),
        ("members", "household_id"),
        ("villages", "village_id"),
    }
    summary = report.summary()
    assert "households.income_wages" in summary and "members.age" in summary and "'rich'" in summary


def test_summary_counts_and_truncates_examples(small_survey: Survey) -> None:
    members = small_survey.members.assign(age=-1.0)
    summary = validate_survey(replace(small_survey, members=members)).summary(examples=2)
    assert "8 failure(s)" in summary
    assert summary.count("row ") == 2 and "..." in summary


def test_conform_coerces_types(small_survey: Survey) -> None:
    households = small_survey.households.assign(round=["0", "0", "0", "1", "1", "1"])
    conformed = conform(replace(small_survey, households=households))
    assert conformed.households["round"].dtype == "int64"
    assert conformed.truth is not None and conformed.truth.equals(small_survey.truth)
    assert households["round"].tolist()[0] == "0"  # the input frame is untouched


def test_conform_raises_with_the_report(small_survey: Survey) -> None:
    members = small_survey.members.assign(age=-1.0)
    with pytest.raises(SurveyInvalid) as raised:
        conform(replace(small_survey, members=members))
    assert len(raised.value.report.failures) == 8
    assert "members.age" in str(raised.value)


def test_a_duplicated_index_is_still_checked_and_rows_are_file_positions() -> None:
    households = pd.DataFrame(
        {"household_id": ["H1", "H2", "H1"], "village_id": ["V1", "V1", "V1"], "round": [0, 0, 0]},
        index=[0, 1, 0],
    )
    report = validate_survey(Survey(households=households))
    duplicates = report.failures[report.failures["table"] == "households"]
    assert not report.ok
    assert set(duplicates["row"]) == {0, 2}


def _no_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "household_id": pd.Series(dtype=str),
            "village_id": pd.Series(dtype=str),
            "round": pd.Series(dtype=int),
        }
    )


def _with_round_3(survey: Survey) -> Survey:
    """Rounds 0, 1 and 3: round 2 is missing between present rounds."""
    round_3 = survey.households[survey.households["round"] == 1].assign(round=3)
    return replace(survey, households=pd.concat([survey.households, round_3], ignore_index=True))


def test_a_survey_without_household_rows_is_reported() -> None:
    report = validate_survey(Survey(households=_no_rows()))
    assert report.failures[["table", "column", "check", "row", "value"]].values.tolist() == [
        ["households", "household_id", "at_least_one_row", None, None]
    ]
    assert "  households.household_id [at_least_one_row]: 1 failure(s)" in report.summary().splitlines()


def test_a_round_missing_between_present_rounds_is_reported(small_survey: Survey) -> None:
    report = validate_survey(_with_round_3(small_survey))
    assert report.failures[["table", "column", "check", "row", "value"]].values.tolist() == [
        ["households", "round", "no_round_missing_between_present_rounds", None, 2]
    ]
    assert "households.round [no_round_missing_between_present_rounds]: 1 failure(s) - 2" in report.summary()


def test_rounds_need_not_start_at_zero(small_survey: Survey) -> None:
    later = replace(
        small_survey,
        households=small_survey.households.assign(round=small_survey.households["round"] + 4),
        members=small_survey.members.assign(round=small_survey.members["round"] + 4),
        verification=None,
    )
    assert validate_survey(later).ok


@pytest.mark.parametrize(
    ("table", "column", "row", "bad"),
    [
        ("households", "household_id", 1, "H002\x00"),
        ("households", "village_id", 4, "V01\n"),
        ("households", "housing_structure", 0, "brick_wood\r"),
        ("households", "head_name", 2, "Li\u2028Wei"),  # an extra column: every text column is checked
        ("members", "member_id", 3, "H003-01\x1b[2J"),
        ("members", "household_id", 0, "H001\t"),
        ("villages", "township_id", 1, "T01\x85"),
        ("verification", "household_id", 0, "H002\x7f"),
        ("truth", "household_id", 2, "H003\x00"),
    ],
)
def test_control_characters_in_any_text_column_are_reported_escaped(
    small_survey: Survey, table: str, column: str, row: int, bad: str
) -> None:
    frame = getattr(small_survey, table).copy()
    if column not in frame.columns:
        frame[column] = "x"
    frame.loc[row, column] = bad
    report = validate_survey(replace(small_survey, **{table: frame}))

    found = report.failures[report.failures["check"] == "no_control_characters"]
    assert found[["table", "column", "row", "value"]].values.tolist() == [[table, column, row, bad]]
    summary = report.summary()
    escaped = bad.encode("unicode_escape").decode("ascii")
    assert f"{table}.{column} [no_control_characters]: 1 failure(s) - row {row}: '{escaped}'" in summary
    assert bad not in summary and "\x00" not in summary


@pytest.mark.parametrize("kind", ["no household rows", "a missing round", "a NUL in an id"])
def test_conform_refuses_what_validate_reports(small_survey: Survey, kind: str) -> None:
    bad = {
        "no household rows": Survey(households=_no_rows()),
        "a missing round": _with_round_3(small_survey),
        "a NUL in an id": replace(
            small_survey, members=small_survey.members.assign(member_id=lambda m: m["member_id"] + "\x00")
        ),
    }[kind]
    with pytest.raises(SurveyInvalid) as raised:
        conform(bad)
    assert not raised.value.report.ok
