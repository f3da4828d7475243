"""Request and response models of the scoring service, mirroring the canonical survey schema.

`HouseholdIn` and `MemberIn` carry the same columns, ranges and categories as `survey.schema`'s
`Households` and `Members` (money in yuan per year, land in mu, distances in km). Yes/no answers are
booleans here (JSON true/false or 0/1) and 0/1 floats in the frames `to_frames` builds. Every optional
field may be left out; a field that is left out is absent from the frames, as an unrecorded survey block
is. Unknown fields are errors that name the field (`extra="forbid"`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from survey.io import Survey
from survey.schema import MAX_MEMBERS_PER_HOUSEHOLD
from survey.text import control_characters

# Literal types spelled out so that type checkers see them; tests check they equal survey.schema's tuples.
RelationToHead = Literal[
    "head", "spouse", "child", "child_in_law", "grandchild", "parent", "sibling", "other"
]
Sex = Literal["male", "female"]
HealthStatus = Literal["healthy", "chronic", "serious_illness"]
LabourCapacity = Literal["skilled", "ordinary", "weak", "lost", "none"]
HousingStructure = Literal["reinforced_concrete", "brick_concrete", "brick_wood", "earth_wood", "other"]
CookingFuel = Literal["electricity", "gas", "biogas", "coal", "firewood", "other"]
PovertyStatus = Literal["never_poor", "poor", "exited"]
Tenure = Literal["owned", "owned_paying", "rented", "precarious", "other"]
BuildingState = Literal["good", "regular", "bad"]
FloorMaterial = Literal["tiles", "cement", "wood", "natural", "none", "other"]

_MAX_MONEY = 1e8
_MIN_NET_MONEY = -1e7


def _yes_no(description: str) -> Any:
    return Field(default=None, description=f"{description} (yes/no)", examples=[True])


def _money(description: str, example: float, *, can_be_negative: bool = False) -> Any:
    return Field(
        default=None,
        ge=_MIN_NET_MONEY if can_be_negative else 0.0,
        le=_MAX_MONEY,
        allow_inf_nan=False,
        description=f"{description}, yuan per year",
        examples=[example],
    )


def _bounded(description: str, low: float, high: float, example: float) -> Any:
    return Field(
        default=None, ge=low, le=high, allow_inf_nan=False, description=description, examples=[example]
    )


NO_CONTROL_CHARACTERS = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$"
"""The OpenAPI pattern of every text field: no control characters (`survey.text`)."""


def _without_control_characters(text: str) -> str:
    found = control_characters(text)
    if found:
        raise ValueError(f"must not contain control characters (found {', '.join(found)})")
    return text


Identifier = Annotated[
    str,  # no NUL, newline or other control character: they broke the audit trail and forged log lines
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": NO_CONTROL_CHARACTERS}),
    AfterValidator(_without_control_characters),
]

PERSONAL_FIELDS = ("name", "id_card_number", "head_name", "head_id_card_number")
"""Personal data an archive-card export may carry. Accepted so that such a record is not refused, then
dropped: never part of the frames, a response, a log line or the audit trail (`exclude`, `repr=False`)."""


def _personal(description: str) -> Any:
    return Field(
        default=None,
        max_length=64,
        exclude=True,
        repr=False,
        description=f"{description} (dropped)",
        json_schema_extra={"pattern": NO_CONTROL_CHARACTERS},
    )


PersonalText = Annotated[str, AfterValidator(_without_control_characters)]
"""Text of a personal field: refused with control characters like every text field, then dropped."""


def _yes_no_value(value: Any) -> Any:
    """true / false, or the survey's 0 / 1 (exactly); anything else is left for the bool check to refuse."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    return value


YesNo = Annotated[
    bool,
    BeforeValidator(_yes_no_value),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, {"enum": [0, 1]}]}),
]
"""A yes/no answer: JSON true/false, or 0/1 as the survey codes it."""


class _Input(BaseModel):
    # strict: "5" is not a number and "yes" not a yes/no answer (a lax parse would accept both)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class MemberIn(_Input):
    """One household member in the round being scored."""

    member_id: Identifier = Field(description="Member id, unique within the household", examples=["1"])
    name: PersonalText | None = _personal("Member's name")
    id_card_number: PersonalText | None = _personal("Member's ID-card number")
    relation_to_head: RelationToHead | None = Field(
        default=None, description="Relation to the household head", examples=["head"]
    )
    sex: Sex | None = Field(default=None, description="Sex", examples=["female"])
    age: float | None = _bounded("Age in years", 0, 120, 42)
    education_years: float | None = _bounded("Completed years of schooling", 0, 25, 9)
    school_years_behind: float | None = _bounded(
        "Years behind the grade expected for the age (school-age members)", 0, 20, 0
    )
    in_school: YesNo | None = _yes_no("Currently enrolled in school")
    health_status: HealthStatus | None = Field(
        default=None, description="Health status", examples=["healthy"]
    )
    disability: YesNo | None = _yes_no("Has a registered disability")
    labour_capacity: LabourCapacity | None = Field(
        default=None, description="Labour capacity as recorded by the village", examples=["ordinary"]
    )
    migrant_work_months: float | None = _bounded("Months worked away from home this year", 0, 12, 8)


class HouseholdIn(_Input):
    """One household in one survey round, as recorded on the archive card (建档立卡)."""

    household_id: Identifier = Field(description="Household id", examples=["H000123"])
    village_id: Identifier = Field(description="Village id", examples=["V0042"])
    round: int = Field(ge=0, le=100, description="Survey round (0 = first)", examples=[3])
    head_name: PersonalText | None = _personal("Household head's name")
    head_id_card_number: PersonalText | None = _personal("Household head's ID-card number")
    survey_year: int | None = Field(
        default=None, ge=1990, le=2100, description="Calendar year of the round", examples=[2019]
    )
    # income block
    income_wages: float | None = _money("Wage income", 12_000)
    income_agriculture_net: float | None = _money("Net farm income", 3_000, can_be_negative=True)
    income_business: float | None = _money("Net business income", 0, can_be_negative=True)
    income_transfers: float | None = _money("Transfer income (subsidies, pensions, remittances)", 2_400)
    income_property: float | None = _money("Property income (rent, dividends)", 0)
    # spending block
    production_costs: float | None = _money("Production costs", 1_500)
    medical_expenses: float | None = _money("Medical expenses", 800)
    schooling_expenses: float | None = _money("Schooling expenses", 600)
    debt: float | None = _money("Outstanding debt (yuan)", 0)
    # land and livestock
    arable_land_mu: float | None = _bounded("Arable land, mu", 0, 10_000, 4.5)
    livestock_units: float | None = _bounded("Livestock units", 0, 10_000, 1)
    # housing and utilities
    housing_area_m2: float | None = _bounded("Housing floor area, m2", 0, 5_000, 90)
    housing_structure: HousingStructure | None = Field(
        default=None, description="Main structure of the house", examples=["brick_concrete"]
    )
    dangerous_house: YesNo | None = _yes_no("House appraised as dangerous")
    safe_drinking_water: YesNo | None = _yes_no("Has safe drinking water")
    electricity: YesNo | None = _yes_no("Has grid electricity")
    cooking_fuel: CookingFuel | None = Field(default=None, description="Main cooking fuel", examples=["gas"])
    rooms: float | None = _bounded("Rooms of the dwelling (all rooms)", 0, 100, 4)
    bedrooms: float | None = _bounded("Bedrooms of the dwelling", 0, 100, 2)
    toilet: YesNo | None = _yes_no("Has a toilet in the dwelling")
    tenure: Tenure | None = Field(
        default=None,
        description="Tenure of the dwelling: owned, owned_paying (instalments), rented, precarious, other",
        examples=["owned"],
    )
    rent_paid: float | None = _money("Rent or instalments paid for the dwelling", 0)
    wall_state: BuildingState | None = Field(
        default=None, description="State of the outside walls: good, regular, bad", examples=["good"]
    )
    roof_state: BuildingState | None = Field(
        default=None, description="State of the roof: good, regular, bad", examples=["good"]
    )
    floor_state: BuildingState | None = Field(
        default=None, description="State of the floor: good, regular, bad", examples=["regular"]
    )
    floor_material: FloorMaterial | None = Field(
        default=None,
        description="Floor: tiles (ceramic, mosaic, terrazzo), cement, wood, natural (earth), none, other",
        examples=["cement"],
    )
    ceiling: YesNo | None = _yes_no("Has a ceiling under the roof")
    # access
    distance_road_km: float | None = _bounded("Distance to a paved road, km", 0, 500, 0.5)
    distance_market_km: float | None = _bounded("Distance to the nearest market, km", 0, 500, 6)
    distance_clinic_km: float | None = _bounded("Distance to the nearest clinic, km", 0, 500, 3)
    # assets and insurance
    durable_assets: float | None = _bounded("Count of durable assets (appliances, vehicles)", 0, 1_000, 5)
    mobile_phones: float | None = _bounded("Mobile phones owned by the household", 0, 100, 2)
    medical_insurance: YesNo | None = _yes_no("Covered by medical insurance")
    pension_insurance: YesNo | None = _yes_no("Covered by pension insurance")
    # shocks reported this round
    shock_serious_illness: YesNo | None = _yes_no("A member fell seriously ill this round")
    shock_disability: YesNo | None = _yes_no("A member became disabled this round")
    shock_disaster: YesNo | None = _yes_no("Natural disaster hit the household this round")
    shock_accident: YesNo | None = _yes_no("Accident this round")
    shock_job_loss: YesNo | None = _yes_no("A member lost a job this round")
    shock_industry_failure: YesNo | None = _yes_no("A farm or business venture failed this round")
    shock_schooling_cost: YesNo | None = _yes_no("A sudden large schooling cost this round")
    # registration and assistance
    poverty_status: PovertyStatus | None = Field(
        default=None, description="Registration status at the start of the round", examples=["never_poor"]
    )
    receiving_assistance: YesNo | None = _yes_no("Receiving assistance")
    assistance_ends: YesNo | None = _yes_no("Assistance ends this round")
    household_size: float | None = _bounded(
        "Number of members (for records without a member list)", 1, MAX_MEMBERS_PER_HOUSEHOLD, 4
    )
    members: list[MemberIn] = Field(
        default_factory=list,
        max_length=MAX_MEMBERS_PER_HOUSEHOLD,
        description=f"Household members (at most {MAX_MEMBERS_PER_HOUSEHOLD})",
    )

    @model_validator(mode="after")
    def _member_ids_unique(self) -> HouseholdIn:
        ids = [member.member_id for member in self.members]
        duplicated = sorted({member_id for member_id in ids if ids.count(member_id) > 1})
        if duplicated:
            raise ValueError(f"members: duplicate member_id {duplicated}")
        return self


class ScoreRequest(_Input):
    """Score one household; reasons are written in `lang`. Either by reference to the household register
    (`county_id` + `household_id`, `round` optional: its latest), or with its facts (`household`; with a
    `county_id` they are scored on top of what the register holds of the household)."""

    household: HouseholdIn | None = Field(default=None, description="The household's facts (this round)")
    county_id: Identifier | None = Field(default=None, description="County in the register", examples=["C01"])
    household_id: Identifier | None = Field(
        default=None, description="Household id, to score it as the register holds it", examples=["H000123"]
    )
    round: int | None = Field(
        default=None, ge=0, le=100, description="Round, with household_id (default: the latest)", examples=[4]
    )
    lang: Literal["zh", "en"] = Field(default="zh", description="Language of the reasons", examples=["en"])

    @model_validator(mode="after")
    def _facts_or_reference(self) -> ScoreRequest:
        if self.household is not None:
            if self.household_id is not None or self.round is not None:
                raise ValueError(
                    "give the household's facts (household) or a reference (household_id), not both"
                )
        elif self.household_id is None or self.county_id is None:
            raise ValueError("give the household's facts (household) or county_id and household_id")
        return self


MAX_BATCH_HOUSEHOLDS = 200
"""Most households one /score_batch request may carry (bigger lists: split them, or use `povrisk score`)."""
MAX_REQUEST_BYTES = 8_000_000
"""Largest request body the service reads: enough for the largest valid `/score_batch`, 200 households
of 30 members with every field filled at its longest (7.5 MB with every non-ASCII character escaped as
JSON allows, 5.1 MB in plain UTF-8; a typical 200-household batch is 0.3-0.5 MB)."""


class BatchRequest(_Input):
    """Score several households; each is checked on its own, so one bad household gets its own error
    entry and does not fail the others."""

    households: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH_HOUSEHOLDS,
        description=f"Households in the `HouseholdIn` shape (at most {MAX_BATCH_HOUSEHOLDS})",
    )
    lang: Literal["zh", "en"] = Field(default="zh", description="Language of the reasons", examples=["en"])


class MemberChange(_Input):
    """New answers for one existing member (fields left out keep their value)."""

    member_id: Identifier = Field(description="The member to change", examples=["2"])
    changes: dict[str, Any] = Field(
        description="Member fields and their new values, as in `MemberIn`",
        examples=[{"migrant_work_months": 10}],
    )


class WhatIfChanges(_Input):
    """Proposed changes: household fields and member fields, each as in the household's own schema."""

    household: dict[str, Any] = Field(
        default_factory=dict,
        description="Household fields and new values, as in `HouseholdIn` (ids and round cannot change)",
        examples=[{"medical_insurance": True}],
    )
    members: list[MemberChange] = Field(default_factory=list, max_length=MAX_MEMBERS_PER_HOUSEHOLD)


class WhatIfRequest(_Input):
    """One household and the changes an assistance option would bring."""

    household: HouseholdIn
    changes: WhatIfChanges
    lang: Literal["zh", "en"] = Field(default="zh", description="Language of the reasons", examples=["en"])


class ReasonOut(BaseModel):
    """One reason behind the score: an indicator, its value, its effect on the probability, its SHAP
    contribution and a sentence (a true statement about the household: a guarantee names the test it
    failed, an amount the median it is compared with)."""

    indicator: str = Field(description="Indicator name (a feature column; for machines, not for people)")
    value: float | None = Field(description="The household's value of the indicator (null when unknown)")
    contribution: float = Field(
        description="SHAP contribution to the log-odds of the model that explains the score (machine field)"
    )
    effect_pp: float | None = Field(
        default=None,
        description="What the reason adds to that model's calibrated probability, in percentage points "
        "(p(margin) - p(margin - contribution), rounded to 0.1)",
        examples=[12.3],
    )
    sentence: str = Field(description="The reason in plain words, in the request's language")


class ModelRef(BaseModel):
    """A registered model that produced the score."""

    name: str = Field(description="Registered model name", examples=["povrisk-poverty"])
    version: str = Field(description="Registered model version or data hash", examples=["3"])


class DataBlockOut(BaseModel):
    """A block of a household's data (features/completeness.py)."""

    code: str = Field(description="Block code", examples=["income"])
    label: str = Field(description="The block in the request's language", examples=["收入"])


class CauseOut(BaseModel):
    """A cause of poverty from the archive card's list."""

    code: str = Field(description="Cause code (monitoring/causes.yaml)", examples=["illness"])
    label: str = Field(description="The cause in the request's language", examples=["illness"])


class MeasureOut(BaseModel):
    """A recommended assistance measure and why it fits (policy table `assistance`)."""

    measure: str = Field(description="Measure code", examples=["serious_illness_assistance"])
    family: str = Field(description="Family of targeted help (health, education, employment, ...)")
    name: str = Field(description="The measure in the request's language")
    cause: str = Field(description="The cause of poverty it answers")
    why: str = Field(description="Why it fits this household")


Basis = Literal["register", "submitted, with register history", "no history"]
"""What an answer rests on: the household as the register holds it (scored by reference); the facts sent,
on top of the household's earlier rounds and its village's context in the register; or the facts sent
alone (the household is not in the register, or no county was given)."""
FROM_REGISTER: Basis = "register"
SUBMITTED_WITH_HISTORY: Basis = "submitted, with register history"
NO_HISTORY: Basis = "no history"


class ScoreResponse(BaseModel):
    """Risk scores, tier, monitoring category, reasons, causes and fitting assistance for one household."""

    household_id: str
    county_id: str | None = Field(default=None, description="The county, when the register was read")
    round: int | None = Field(default=None, description="The survey round scored")
    basis: Basis = Field(
        default=NO_HISTORY,
        description="register: as the register holds it; submitted, with register history: the facts sent "
        "on top of its earlier rounds and its village's context; no history: the facts sent alone",
    )
    poverty_risk: float | None = Field(description="Calibrated probability of being poor now (0-1)")
    relapse_risk: float | None = Field(
        description="Calibrated probability of falling (back) into poverty by the next round (0-1)"
    )
    risk_tier: str | None = Field(
        description="high / medium / low, from the policy's tier bounds; null when the data is insufficient"
    )
    category: str = Field(description="Monitoring category (see monitoring.categories)")
    category_rule: str = Field(description="The rule that put the household in its category")
    data_completeness: float | None = Field(
        default=None,
        description="Share (0-1) of the models' explanatory weight (mean |SHAP| over their training rows) "
        "whose inputs are known for this household; null for models saved without the weights",
    )
    income_to_line_ratio: float | None = Field(
        default=None,
        description="Per-capita net income over the poverty line of the survey year (null when unknown)",
    )
    sufficient_data: bool = Field(
        default=True,
        description="false: completeness below the policy's minimum, so no tier, and a category only on "
        "the household's facts (insufficient_data when none holds)",
    )
    missing_blocks: list[DataBlockOut] = Field(
        default_factory=list, description="The blocks of data whose absence makes the data insufficient"
    )
    reasons: list[ReasonOut]
    main_cause: CauseOut
    secondary_causes: list[CauseOut] = Field(description="Up to two secondary causes")
    measures: list[MeasureOut] = Field(
        description="Up to three fitting measures (none for a household no monitoring rule holds for)"
    )
    models: list[ModelRef] = Field(
        description="The models that scored it: the shared ones (povrisk-<task>), or, for a household of a "
        "county the policy gives models of its own, that county's (povrisk-<task>-<county>)"
    )


class ErrorOut(BaseModel):
    """Why one household of a batch was not scored."""

    status: int = Field(description="The HTTP status a single request would have got (400, 403)")
    error: str = Field(description="What is wrong")
    fields: list[str] = Field(default_factory=list, description="The bad fields, when the body was invalid")


class BatchItemOut(BaseModel):
    """One entry per household of the batch, in request order: its score or its error."""

    index: int
    household_id: str | None
    score: ScoreResponse | None = None
    error: ErrorOut | None = None


class BatchResponse(BaseModel):
    results: list[BatchItemOut]
    scored: int
    failed: int
    models: list[ModelRef] = Field(
        description="The models that scored the batch's households (the shared ones when none was scored)"
    )


class ChangedReason(BaseModel):
    """An indicator among the reasons before or after the change, with its value and contribution."""

    indicator: str
    value_before: float | None
    value_after: float | None
    contribution_before: float | None
    contribution_after: float | None
    effect_pp_before: float | None = Field(default=None, description="Effect before, percentage points")
    effect_pp_after: float | None = Field(default=None, description="Effect after, percentage points")
    sentence_after: str | None


class WhatIfResponse(BaseModel):
    """The household scored as it is and as it would be after the changes."""

    household_id: str
    before: ScoreResponse
    after: ScoreResponse
    poverty_risk_change: float | None
    relapse_risk_change: float | None
    changed_reasons: list[ChangedReason] = Field(
        description="Indicators that entered, left or moved among the top reasons"
    )
    models: list[ModelRef] = Field(description="The models that scored it (as ScoreResponse.models)")


class TaskCard(BaseModel):
    """What one served model is."""

    task: str
    name: str
    version: str
    aliases: list[str]
    trained_rounds: list[int]
    data_hash: str
    metrics: dict[str, float | None]
    features: list[str]
    policy_version: str | None
    calibrator: str
    candidate: Literal["lightgbm", "logistic", "blend"] = "lightgbm"
    """Which candidate training kept (the LightGBM model, the logistic regression, or their blend)."""
    blend_weight: float = 0.0
    """The logistic regression's weight in the model's log-odds (0 = LightGBM alone, 1 = logistic alone)."""
    candidate_brier: dict[str, float] = {}
    """Why this candidate: each candidate's cross-fitted out-of-fold Brier score in training (lowest kept)."""


ModelSource = Literal["registry", "cache", "packaged"]
"""Where the served models came from."""
MODEL_SOURCES: dict[str, str] = {
    "registry": "the champions of the registry",
    "cache": "the local copy of the last champions",
    "packaged": "the champions packaged in the Bento",
}
"""Each source in words, for logs."""


class CountyCard(BaseModel):
    """What scores the households of one county the policy gives models of its own."""

    county_id: str = Field(description="The county", examples=["C02"])
    scored: bool = Field(
        description="false: its own models have no champion yet and the policy says `refuse`, so its "
        "households are not scored (409) until one has",
        examples=[True],
    )
    models: list[TaskCard] = Field(
        description="The models that score it, by task: its own (povrisk-<task>-<county>) where it has a "
        "champion, else the shared one (povrisk-<task>) under `shared_model`; empty when not scored"
    )


class CountyModelsCard(BaseModel):
    """The counties scored by models of their own (the policy's `county_models`)."""

    until_trained: Literal["shared_model", "refuse"] = Field(
        default="shared_model",
        description="What scores such a county before its own model has a champion for a task: the "
        "shared model (shared_model) or nothing (refuse)",
        examples=["shared_model"],
    )
    counties: list[CountyCard] = Field(
        default_factory=list, description="Each county the policy lists, in the policy's order"
    )


class ModelCard(BaseModel):
    """The models being served and where they came from."""

    models: list[TaskCard] = Field(
        description="The shared models, which score every household not of a county listed in county_models"
    )
    policy_version: str
    source: ModelSource = Field(
        description="registry: loaded from the MLflow registry; cache: the local copy of the last "
        "champions; packaged: the champions packaged in the Bento (serving.bento)"
    )
    tracking_uri: str
    loaded_at: str
    county_models: CountyModelsCard = Field(
        default_factory=CountyModelsCard,
        description="The counties the policy gives models of their own, and what scores each",
    )


_HOUSEHOLD_TEXT = (
    "household_id",
    "village_id",
    "housing_structure",
    "cooking_fuel",
    "tenure",
    "wall_state",
    "roof_state",
    "floor_state",
    "floor_material",
    "poverty_status",
)
_HOUSEHOLD_INTEGERS = ("round", "survey_year")
_MEMBER_TEXT = ("household_id", "member_id", "relation_to_head", "sex", "health_status", "labour_capacity")


def to_frames(household: HouseholdIn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The household and its members as one-row/one-per-member frames in the canonical schema.

    Fields left out are absent columns; yes/no answers become 0/1 floats; numbers are float64, except
    `round` and `survey_year` (int64). The member frame has the key columns even when there are no members.
    Columns are built as typed arrays directly: this runs on every request.
    """
    return frames_of([household])


def frames_of(
    households: Sequence[HouseholdIn], keys: Sequence[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`to_frames` for several households at once: one row per household, members stacked. A field any
    household answered is a column (NaN where another left it out). `keys`, when given, replace each
    household's id and village id (e.g. by its position, to score every household as if alone)."""
    answers = [household.model_dump(exclude={"members"}, exclude_none=True) for household in households]
    if keys is not None:
        for answer, key in zip(answers, keys, strict=True):
            answer["household_id"] = answer["village_id"] = key
    names = dict.fromkeys(name for answer in answers for name in answer)
    household_frame = pd.DataFrame(
        {
            name: _typed_column(
                [answer.get(name) for answer in answers], name, _HOUSEHOLD_TEXT, _HOUSEHOLD_INTEGERS
            )
            for name in names
        }
    )
    rows = [
        (answer["household_id"], household.round, member.model_dump(exclude_none=True))
        for answer, household in zip(answers, households, strict=True)
        for member in household.members
    ]
    member_names = dict.fromkeys(name for _, _, row in rows for name in row if name != "member_id")
    member_frame = pd.DataFrame(
        {
            "household_id": _typed_column([row[0] for row in rows], "household_id", _MEMBER_TEXT, ()),
            "member_id": _typed_column([row[2]["member_id"] for row in rows], "member_id", _MEMBER_TEXT, ()),
            "round": _typed_column([row[1] for row in rows], "round", (), ("round",)),
            **{
                name: _typed_column([row[2].get(name) for row in rows], name, _MEMBER_TEXT, ())
                for name in member_names
            },
        }
    )
    return household_frame, member_frame


def _typed_column(
    values: list[Any], name: str, text: tuple[str, ...], integers: tuple[str, ...]
) -> np.ndarray | pd.Series:
    if name in text:  # plain object strings: on a few rows they compare ~2.5x faster than Arrow strings
        return pd.Series(values, dtype=object)
    if name in integers and None not in values:
        return np.array(values, dtype=np.int64)
    return np.array([np.nan if value is None else float(value) for value in values], dtype=np.float64)


def household_from_survey(survey: Survey, household_id: str, round: int) -> HouseholdIn:
    """One household of a survey round as a request body: the schema's columns, members nested.

    Missing answers are left out, as a cadre's request would leave them out; extra survey columns that
    the service does not take (e.g. an external label) are dropped.
    """
    households = survey.households
    rows = households[(households["household_id"] == household_id) & (households["round"] == round)]
    if rows.empty:
        raise LookupError(f"no household {household_id} in round {round}")
    household = _answers(rows.iloc[0], HouseholdIn.model_fields)
    members = pd.DataFrame() if survey.members is None else survey.members
    own = (
        members[(members["household_id"] == household_id) & (members["round"] == round)]
        if len(members)
        else members
    )
    household["members"] = [_answers(member, MemberIn.model_fields) for _, member in own.iterrows()]
    return HouseholdIn.model_validate(household)


def _answers(row: pd.Series, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(name): value.item() if hasattr(value, "item") else value
        for name, value in row.items()
        if name in fields and not pd.isna(value)
    }
