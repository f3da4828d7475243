"""Request models: valid households pass, every kind of bad field is named, frames match the schema."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import ValidationError

from serving.schemas import (
    PERSONAL_FIELDS,
    BuildingState,
    CookingFuel,
    FloorMaterial,
    HealthStatus,
    HouseholdIn,
    HousingStructure,
    LabourCapacity,
    MemberIn,
    PovertyStatus,
    RelationToHead,
    ScoreRequest,
    Sex,
    Tenure,
    to_frames,
)
from survey import schema


def _household(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "household_id": "H1",
        "village_id": "V1",
        "round": 2,
        "survey_year": 2016,
        "income_wages": 9000.0,
        "income_agriculture_net": -300.0,
        "medical_expenses": 1200.0,
        "housing_structure": "earth_wood",
        "dangerous_house": 1,
        "safe_drinking_water": True,
        "poverty_status": "exited",
        "members": [
            {
                "member_id": "1",
                "relation_to_head": "head",
                "sex": "male",
                "age": 51,
                "labour_capacity": "weak",
            },
            {"member_id": "2", "relation_to_head": "child", "sex": "female", "age": 12, "in_school": 0},
        ],
    }
    body.update(overrides)
    return body


def _error_locations(body: dict[str, Any]) -> set[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        HouseholdIn.model_validate(body)
    return {tuple(error["loc"]) for error in caught.value.errors()}


def test_valid_household_is_accepted() -> None:
    household = HouseholdIn.model_validate(_household())
    assert household.members[1].in_school is False
    assert household.dangerous_house is True


def test_minimal_household_needs_only_its_keys() -> None:
    household = HouseholdIn.model_validate({"household_id": "H1", "village_id": "V1", "round": 0})
    assert household.members == []


@pytest.mark.parametrize(
    ("body", "location"),
    [
        (_household(members=[{"member_id": "1", "age": -3}]), ("members", 0, "age")),
        (_household(members=[{"member_id": str(i)} for i in range(300)]), ("members",)),
        (_household(members=[{"member_id": "1", "sex": "unknown"}]), ("members", 0, "sex")),
        ({k: v for k, v in _household().items() if k != "household_id"}, ("household_id",)),
        (_household(favourite_colour="red"), ("favourite_colour",)),
        (_household(round=-1), ("round",)),
        (_household(income_wages=-5.0), ("income_wages",)),
        (_household(dangerous_house=0.5), ("dangerous_house",)),
        (_household(housing_structure="castle"), ("housing_structure",)),
        (
            _household(members=[{"member_id": "1", "migrant_work_months": 13}]),
            ("members", 0, "migrant_work_months"),
        ),
        (_household(members=[{"member_id": "1", "shoe_size": 42}]), ("members", 0, "shoe_size")),
    ],
)
def test_bad_field_is_named(body: dict[str, Any], location: tuple[Any, ...]) -> None:
    assert location in _error_locations(body)


def test_every_bad_field_is_named_at_once() -> None:
    body = _household(round=-1, cooking_fuel="uranium", members=[{"member_id": "1", "age": 400}])
    assert _error_locations(body) == {("round",), ("cooking_fuel",), ("members", 0, "age")}


def test_duplicate_member_ids_are_rejected() -> None:
    with pytest.raises(ValidationError, match="duplicate member_id"):
        HouseholdIn.model_validate(_household(members=[{"member_id": "1"}, {"member_id": "1"}]))


def test_score_request_language() -> None:
    assert ScoreRequest.model_validate({"household": _household()}).lang == "zh"
    with pytest.raises(ValidationError, match="lang"):
        ScoreRequest.model_validate({"household": _household(), "lang": "fr"})


@pytest.mark.parametrize(
    ("literal", "levels"),
    [
        (RelationToHead, schema.RELATIONS_TO_HEAD),
        (Sex, schema.SEXES),
        (HealthStatus, schema.HEALTH_STATUSES),
        (LabourCapacity, schema.LABOUR_CAPACITIES),
        (HousingStructure, schema.HOUSING_STRUCTURES),
        (CookingFuel, schema.COOKING_FUELS),
        (PovertyStatus, schema.POVERTY_STATUSES),
        (Tenure, schema.TENURES),
        (BuildingState, schema.BUILDING_STATES),
        (FloorMaterial, schema.FLOOR_MATERIALS),
    ],
)
def test_categories_match_the_survey_schema(literal: Any, levels: tuple[str, ...]) -> None:
    assert typing.get_args(literal) == levels


def test_fields_cover_the_survey_schema() -> None:
    household_columns = set(schema.Households.to_schema().columns)
    member_columns = set(schema.Members.to_schema().columns) - {"household_id", "round"}
    assert household_columns <= set(HouseholdIn.model_fields)
    assert member_columns == set(MemberIn.model_fields) - set(PERSONAL_FIELDS)


def test_personal_data_is_accepted_then_dropped_everywhere() -> None:
    body = _household()
    body |= {"head_name": "张三", "head_id_card_number": "110101195001011234"}
    body["members"][0] |= {"name": "张三", "id_card_number": "110101195001011234"}
    household = HouseholdIn.model_validate(body)
    households, members = to_frames(household)
    shown = " ".join([repr(household), str(household.model_dump()), households.to_csv(), members.to_csv()])
    assert "张三" not in shown and "110101195001011234" not in shown
    assert not set(PERSONAL_FIELDS) & (set(households.columns) | set(members.columns))


def test_frames_validate_against_the_survey_schema() -> None:
    households, members = to_frames(HouseholdIn.model_validate(_household()))
    schema.Households.validate(households)
    schema.Members.validate(members)
    assert households["dangerous_house"].item() == 1.0
    assert households["safe_drinking_water"].dtype == "float64"
    assert households["round"].item() == 2
    assert list(members["member_id"]) == ["1", "2"]
    assert list(members["round"]) == [2, 2]
    assert members["in_school"].tolist()[1] == 0.0


def test_fields_left_out_are_absent_columns() -> None:
    households, members = to_frames(HouseholdIn(household_id="H1", village_id="V1", round=0))
    assert list(households.columns) == ["household_id", "village_id", "round"]
    assert members.empty
    assert list(members.columns) == ["household_id", "member_id", "round"]


def test_member_model_rejects_an_empty_id() -> None:
    with pytest.raises(ValidationError, match="member_id"):
        MemberIn(member_id="")
