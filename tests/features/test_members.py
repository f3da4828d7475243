"""Member aggregates: counts, means and maxima per household and round; absent blocks are NaN."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.members import MEMBER_AGGREGATES, MemberTableError, member_aggregates
from features.policy import DEFAULT_POLICY_PATH, AgeBands, AgeRange, load_policy

NAN = np.nan
SHIPPED_AGES = load_policy(DEFAULT_POLICY_PATH).ages  # working age 16-64, school age 7-15, elderly 65+


def test_aggregates_of_the_hand_built_members(members: pd.DataFrame) -> None:
    result = member_aggregates(members, SHIPPED_AGES)
    assert list(result.columns) == list(MEMBER_AGGREGATES)
    assert result.index.names == ["household_id", "round"]
    assert (result.dtypes == np.float64).all()
    a0, a1, b0, c0 = (result.loc[key] for key in [("a", 0), ("a", 1), ("b", 0), ("c", 0)])
    assert a0["household_size"] == 3 and b0["household_size"] == 1
    assert a0["labour_capable_members"] == 1  # ordinary; weak and none do not count
    assert c0["labour_capable_members"] == 2 and b0["labour_capable_members"] == 0
    assert c0["members_in_migrant_work"] == 1  # 12 months counts, 3 months does not
    assert c0["migrant_work_months_total"] == 15
    assert (a0["children"], a0["working_age"], a0["elderly"]) == (1, 2, 0)
    assert (b0["children"], b0["working_age"], b0["elderly"]) == (0, 0, 1)
    assert a0["mean_adult_education_years"] == 7.5  # the child's 3 years are not an adult's
    assert a0["max_adult_education_years"] == 9
    assert a0["school_age_not_in_school"] == 1 and a1["school_age_not_in_school"] == 0
    assert a0["chronic_illness_members"] == 1 and b0["serious_illness_members"] == 1
    assert b0["disabled_members"] == 1 and c0["disabled_members"] == 0
    assert a0["schooling_gap"] == 1 and a1["schooling_gap"] == 0
    assert np.isnan(b0["schooling_gap"])  # no school-age member: no gap to measure
    assert (a0["head_age"], a0["head_education_years"], b0["head_age"]) == (42, 6, 72)
    assert a0["mean_member_age"] == (42 + 40 + 10) / 3 and a0["youngest_member_age"] == 10
    assert a0["mean_member_education_years"] == 6  # the child's 3 years count here
    assert a0["education_years_spread"] == pytest.approx(np.std([6.0, 9.0, 3.0]))
    assert b0["education_years_spread"] == 0 and c0["education_years_spread"] == 0


def test_head_values_are_missing_without_a_head_row(members: pd.DataFrame) -> None:
    no_head = members.assign(relation_to_head=members["relation_to_head"].replace("head", "other"))
    result = member_aggregates(no_head, SHIPPED_AGES)
    assert result["head_age"].isna().all() and result["head_education_years"].isna().all()
    assert result["mean_member_age"].notna().all()
    assert member_aggregates(members.drop(columns="relation_to_head"), SHIPPED_AGES)["head_age"].isna().all()


def test_schooling_gap_is_the_mean_over_members_with_a_recorded_gap() -> None:
    members = pd.DataFrame(
        {
            "household_id": ["a", "a", "a", "b"],
            "member_id": ["1", "2", "3", "1"],
            "round": [0, 0, 0, 0],
            "school_years_behind": [NAN, 1.0, 2.0, NAN],
        }
    )
    result = member_aggregates(members, SHIPPED_AGES)
    assert result.loc[("a", 0), "schooling_gap"] == 1.5
    assert np.isnan(result.loc[("b", 0), "schooling_gap"])


def test_absent_optional_columns_give_nan_not_zero() -> None:
    bare = pd.DataFrame({"household_id": ["a", "a", "b"], "member_id": ["1", "2", "1"], "round": [0, 0, 0]})
    result = member_aggregates(bare, SHIPPED_AGES)
    np.testing.assert_array_equal(result["household_size"].to_numpy(), [2, 1])
    others = result.drop(columns="household_size")
    assert others.isna().all().all()


def test_labour_capacity_falls_back_to_age_without_disability_or_serious_illness() -> None:
    members = pd.DataFrame(
        {
            "household_id": ["a"] * 5,
            "member_id": list("12345"),
            "round": [0] * 5,
            "age": [30.0, 50.0, 70.0, 40.0, 25.0],
            "disability": [0.0, 0.0, 0.0, 1.0, 0.0],
            "health_status": ["healthy", "healthy", "healthy", "healthy", "serious_illness"],
            "labour_capacity": [None, "weak", None, None, None],
        }
    )
    result = member_aggregates(members, SHIPPED_AGES)
    # 30-year-old by age; 50-year-old is recorded weak; 70 too old; disabled; seriously ill
    assert result.loc[("a", 0), "labour_capable_members"] == 1


def test_unknown_answers_are_skipped_and_all_unknown_is_nan() -> None:
    members = pd.DataFrame(
        {
            "household_id": ["a", "a", "b"],
            "member_id": ["1", "2", "1"],
            "round": [0, 0, 0],
            "age": [40.0, NAN, NAN],
            "education_years": [6.0, 12.0, 5.0],
        }
    )
    result = member_aggregates(members, SHIPPED_AGES)
    assert result.loc[("a", 0), "working_age"] == 1
    assert np.isnan(result.loc[("b", 0), "working_age"])
    assert result.loc[("a", 0), "mean_adult_education_years"] == 6  # the member of unknown age is skipped
    assert np.isnan(result.loc[("b", 0), "max_adult_education_years"])


def _one_household(ages: list[float], **columns: list[float]) -> pd.DataFrame:
    """Members of household "a" in round 0 with these ages, none in school, and further columns."""
    return pd.DataFrame(
        {
            "household_id": ["a"] * len(ages),
            "member_id": [str(i) for i in range(len(ages))],
            "round": [0] * len(ages),
            "age": ages,
            "in_school": [0.0] * len(ages),
            **columns,
        }
    )


def test_age_boundaries() -> None:
    members = _one_household([6.0, 7.0, 15.0, 15.5, 16.0, 64.0, 64.5, 65.0])
    row = member_aggregates(members, SHIPPED_AGES).loc[("a", 0)]
    assert row["children"] == 4  # 6, 7, 15, 15.5
    assert row["working_age"] == 3  # 16, 64, 64.5
    assert row["elderly"] == 1
    assert row["school_age_not_in_school"] == 3  # 7, 15, 15.5


def test_the_policys_ages_set_the_age_structure() -> None:
    """Another country's ages: working age 15-59, elderly 60+, compulsory school 6-14."""
    members = _one_household(
        [5.0, 6.0, 14.0, 15.0, 59.0, 60.0, 64.0], education_years=[0.0, 0.0, 6.0, 8.0, 4.0, 2.0, 2.0]
    )
    other = AgeBands(
        working_age=AgeRange(at_least=15, below=60),
        compulsory_school_age=AgeRange(at_least=6, below=15),
        elderly_from=60,
    )
    row = member_aggregates(members, other).loc[("a", 0)]
    assert (row["children"], row["working_age"], row["elderly"]) == (3, 2, 2)  # 5, 6, 14 | 15, 59 | 60, 64
    assert row["school_age_not_in_school"] == 2  # 6, 14
    assert row["labour_capable_members"] == 2
    assert row["max_adult_education_years"] == 8  # the 15-year-old is an adult here
    shipped = member_aggregates(members, SHIPPED_AGES).loc[("a", 0)]
    assert (shipped["children"], shipped["working_age"], shipped["elderly"]) == (4, 3, 0)


def test_members_of_different_rounds_are_separate_groups(members: pd.DataFrame) -> None:
    result = member_aggregates(members, SHIPPED_AGES)
    assert len(result) == 4
    assert result.loc[("a", 1), "migrant_work_months_total"] == 10


def test_input_is_not_mutated(members: pd.DataFrame) -> None:
    snapshot = members.copy(deep=True)
    member_aggregates(members, SHIPPED_AGES)
    pd.testing.assert_frame_equal(members, snapshot)


def test_missing_key_column_raises_a_clear_error(members: pd.DataFrame) -> None:
    with pytest.raises(MemberTableError, match="round"):
        member_aggregates(members.drop(columns="round"), SHIPPED_AGES)


def test_negative_round_raises(members: pd.DataFrame) -> None:
    with pytest.raises(MemberTableError, match="round"):
        member_aggregates(members.assign(round=-1), SHIPPED_AGES)
