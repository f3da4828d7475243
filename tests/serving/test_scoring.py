"""What the service computes, tier 1: the pure scoring, batch, what-if and model-card functions."""

from __future__ import annotations

import typing
from typing import Any

import annotated_types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic.fields import FieldInfo

from features.policy import PolicyError
from models.predictor import RiskPredictor
from monitoring.categories import CATEGORIES
from serving.schemas import NO_CONTROL_CHARACTERS, HouseholdIn, MemberIn, WhatIfChanges
from serving.scoring import (
    LoadedModels,
    WhatIfError,
    apply_changes,
    score_household,
    score_households,
    what_if,
)


def _household(body: dict[str, Any], **overrides: Any) -> HouseholdIn:
    return HouseholdIn.model_validate({**body, **overrides})


def test_score_household_fills_every_field(loaded: LoadedModels, household_body: dict[str, Any]) -> None:
    response = score_household(loaded, _household(household_body), lang="en")
    assert response.household_id == "H-test"
    assert response.poverty_risk is not None and 0.0 <= response.poverty_risk <= 1.0
    assert response.relapse_risk is not None and 0.0 <= response.relapse_risk <= 1.0
    assert response.risk_tier in {"high", "medium", "low"}
    assert response.category in CATEGORIES and response.category != "not_monitored"
    assert response.category_rule
    assert 1 <= len(response.reasons) <= 3
    assert all(reason.contribution > 0 and reason.sentence for reason in response.reasons)
    assert all(reason.effect_pp is not None and reason.effect_pp >= 0.1 for reason in response.reasons)
    assert all(round(reason.effect_pp, 1) == reason.effect_pp for reason in response.reasons)
    assert response.main_cause.code in loaded.causes.causes and response.main_cause.label
    assert len(response.secondary_causes) <= 2
    assert 1 <= len(response.measures) <= 3
    assert all(measure.why and measure.name for measure in response.measures)
    assert [ref.name for ref in response.models] == ["povrisk-poverty", "povrisk-relapse"]


def test_a_seriously_ill_household_is_offered_health_measures(
    loaded: LoadedModels, household_body: dict[str, Any]
) -> None:
    """The test household: seriously ill head, a dangerous house, exited poverty, low income."""
    response = score_household(loaded, _household(household_body), lang="en")
    codes = [measure.measure for measure in response.measures]
    causes = [response.main_cause.code, *(cause.code for cause in response.secondary_causes)]
    assert "illness" in causes and "serious_illness_assistance" in codes
    by_cause = {measure.measure: measure.cause for measure in response.measures}
    assert by_cause["serious_illness_assistance"] == "illness"


def test_a_secure_household_gets_causes_but_no_measures(
    loaded: LoadedModels, household_body: dict[str, Any]
) -> None:
    healthy = {"health_status": "healthy", "labour_capacity": "skilled", "migrant_work_months": 0}
    secure = HouseholdIn.model_validate(
        household_body
        | {
            "household_id": "rich",
            "income_wages": 120_000.0,
            "income_business": 40_000.0,
            "medical_expenses": 500.0,
            "debt": 0.0,
            "housing_structure": "brick_concrete",
            "housing_area_m2": 140.0,
            "dangerous_house": False,
            "poverty_status": "never_poor",
            "receiving_assistance": False,
            "shock_serious_illness": False,
            "members": [
                household_body["members"][0] | {"age": 40} | healthy,
                household_body["members"][1] | {"age": 38} | healthy,
            ],
        }
    )
    response = score_household(loaded, secure, lang="en")
    assert response.category == "not_monitored"
    assert response.measures == []


def test_score_matches_batch_scoring_of_the_same_row(
    loaded: LoadedModels, predictor: RiskPredictor, household_body: dict[str, Any]
) -> None:
    from serving.schemas import to_frames

    households, members = to_frames(_household(household_body))
    expected = predictor.score(households, members, lang="en").iloc[0]
    response = score_household(loaded, _household(household_body), lang="en")
    assert response.poverty_risk == pytest.approx(expected["poverty_risk"])
    assert response.relapse_risk == pytest.approx(expected["relapse_risk"])
    assert [reason.indicator for reason in response.reasons] == [r["indicator"] for r in expected["reasons"]]


def test_each_household_of_a_batch_is_scored_as_if_alone(
    loaded: LoadedModels, household_body: dict[str, Any]
) -> None:
    """Same household twice in consecutive rounds, neighbours in one village: no history, no village."""
    first = _household(household_body)
    later = _household(household_body, round=3, survey_year=2017, income_wages=9_000.0)
    neighbours = [_household(household_body, household_id=f"N{i}", shock_disaster=True) for i in range(6)]
    together = score_households(loaded, [first, later, *neighbours], lang="en")
    alone = [score_household(loaded, household, lang="en") for household in [first, later, *neighbours]]
    assert [r.model_dump() for r in together] == [r.model_dump() for r in alone]


def test_language_changes_the_sentences_not_the_scores(
    loaded: LoadedModels, household_body: dict[str, Any]
) -> None:
    chinese = score_household(loaded, _household(household_body), lang="zh")
    english = score_household(loaded, _household(household_body), lang="en")
    assert chinese.poverty_risk == english.poverty_risk
    assert [r.indicator for r in chinese.reasons] == [r.indicator for r in english.reasons]
    assert [r.sentence for r in chinese.reasons] != [r.sentence for r in english.reasons]
    assert (
        chinese.main_cause.code == english.main_cause.code
        and chinese.main_cause.label != english.main_cause.label
    )
    assert [m.measure for m in chinese.measures] == [m.measure for m in english.measures]


def test_household_and_village_ids_do_not_change_the_score(
    loaded: LoadedModels, household_body: dict[str, Any]
) -> None:
    first = score_household(loaded, _household(household_body), lang="en")
    renamed = score_household(
        loaded, _household(household_body, household_id="other", village_id="elsewhere")
    )
    assert renamed.poverty_risk == first.poverty_risk
    assert renamed.relapse_risk == first.relapse_risk


def test_a_household_with_only_its_keys_is_scored(loaded: LoadedModels) -> None:
    response = score_household(loaded, HouseholdIn(household_id="bare", village_id="v", round=0))
    assert response.poverty_risk is not None


def test_year_before_the_first_poverty_line_is_a_policy_error(
    loaded: LoadedModels, household_body: dict[str, Any]
) -> None:
    with pytest.raises(PolicyError, match="1995"):
        score_household(loaded, _household(household_body, survey_year=1995))


# --- what if ---------------------------------------------------------------------------------------

UNINSURED: dict[str, Any] = {
    "household_id": "H-whatif",
    "village_id": "V-test",
    "round": 2,
    "survey_year": 2016,
    "income_wages": 9_000.0,
    "income_agriculture_net": 3_000.0,
    "medical_insurance": False,
    "members": [
        {"member_id": "1", "relation_to_head": "head", "age": 45, "labour_capacity": "ordinary"},
        {"member_id": "2", "relation_to_head": "spouse", "age": 43, "labour_capacity": "ordinary"},
    ],
}


def test_enrolling_in_medical_insurance_fixes_the_guarantee_and_leaves_the_poverty_risk(
    loaded: LoadedModels,
) -> None:
    """No insurance fails the basic-medical guarantee, a part of the poverty label itself, which the
    poverty model may not read (features/lineage.py): enrolment must not move the poverty risk."""
    answer = what_if(
        loaded,
        HouseholdIn.model_validate(UNINSURED),
        WhatIfChanges(household={"medical_insurance": True}),
        "en",
    )
    assert answer.before.poverty_risk is not None and answer.after.poverty_risk is not None
    assert answer.poverty_risk_change == pytest.approx(answer.after.poverty_risk - answer.before.poverty_risk)
    assert answer.poverty_risk_change == pytest.approx(0.0)
    assert "deprived_basic_medical" not in {reason.indicator for reason in answer.before.reasons}


def test_a_member_change_reaches_the_member_indicators(loaded: LoadedModels) -> None:
    changes = WhatIfChanges.model_validate(
        {"members": [{"member_id": "2", "changes": {"migrant_work_months": 10}}]}
    )
    changed = apply_changes(HouseholdIn.model_validate(UNINSURED), changes)
    assert [member.migrant_work_months for member in changed.members] == [None, 10.0]
    answer = what_if(loaded, HouseholdIn.model_validate(UNINSURED), changes, "en")
    assert answer.after.household_id == answer.before.household_id == "H-whatif"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"household": {"village_id": "V2"}}, "changes.household.village_id: cannot change"),
        ({"members": [{"member_id": "9", "changes": {"age": 30}}]}, "no member '9'"),
        ({"household": {"income_wages": -5}}, "income_wages"),
        ({"members": [{"member_id": "1", "changes": {"age": 300}}]}, "age"),
    ],
)
def test_changes_that_cannot_apply_are_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(WhatIfError, match=message):
        apply_changes(HouseholdIn.model_validate(UNINSURED), WhatIfChanges.model_validate(changes))


def test_the_model_card_describes_both_models(loaded: LoadedModels) -> None:
    card = loaded.card
    assert [model.task for model in card.models] == ["poverty", "relapse"]
    for model in card.models:
        assert (
            model.name == f"povrisk-{model.task}" and model.version == "1" and model.aliases == ["champion"]
        )
        assert model.trained_rounds and model.data_hash and model.features and "roc_auc" in model.metrics
        served = loaded.predictor.poverty if model.task == "poverty" else loaded.predictor.relapse
        assert (model.candidate, model.blend_weight) == (served.candidate, served.blend_weight)
        assert model.candidate_brier == dict(served.candidate_brier) and len(model.candidate_brier) == 5
    assert card.policy_version == loaded.predictor.policy.version and card.source == "registry"


# --- any valid household -----------------------------------------------------------------------------


def _bounds(field: FieldInfo) -> tuple[float, float]:
    low = next(m.ge for m in field.metadata if isinstance(m, annotated_types.Ge))
    high = next(m.le for m in field.metadata if isinstance(m, annotated_types.Le))
    return float(low), float(high)


def _value_strategy(name: str, field: FieldInfo) -> st.SearchStrategy[Any]:
    levels = [
        typing.get_args(arg)[0] if typing.get_origin(arg) is typing.Annotated else arg
        for arg in typing.get_args(field.annotation)
    ]
    literal = next((arg for arg in levels if typing.get_origin(arg) is typing.Literal), None)
    if literal is not None:
        choice: st.SearchStrategy[Any] = st.sampled_from(typing.get_args(literal))
    elif levels[0] is bool:
        choice = st.booleans()
    elif levels[0] is str:  # personal fields: dropped before scoring (never with control characters)
        choice = st.from_regex(NO_CONTROL_CHARACTERS, fullmatch=True).filter(lambda text: len(text) <= 10)
    else:
        low, high = _bounds(field)
        choice = st.floats(low, high, allow_nan=False)
    return st.none() | choice


_SKIPPED = {"household_id", "village_id", "round", "survey_year", "members"}


@st.composite
def _valid_households(draw: st.DrawFn) -> HouseholdIn:
    answers = {
        name: draw(_value_strategy(name, field))
        for name, field in HouseholdIn.model_fields.items()
        if name not in _SKIPPED
    }
    member_fields = {name: field for name, field in MemberIn.model_fields.items() if name != "member_id"}
    members = [
        {
            "member_id": str(number),
            **{name: draw(_value_strategy(name, f)) for name, f in member_fields.items()},
        }
        for number in range(draw(st.integers(0, 30)))
    ]
    return HouseholdIn.model_validate(
        {
            "household_id": "H",
            "village_id": "V",
            "round": draw(st.integers(0, 100)),
            "survey_year": draw(st.none() | st.integers(2010, 2100)),
            "members": members,
            **answers,
        }
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(household=_valid_households())
def test_any_valid_household_is_scored(loaded: LoadedModels, household: HouseholdIn) -> None:
    response = score_household(loaded, household, lang="en")
    for risk in (response.poverty_risk, response.relapse_risk):
        assert risk is not None and 0.0 <= risk <= 1.0
    assert len(response.measures) <= 3


def test_a_household_sent_with_its_ids_alone_has_insufficient_data_not_a_tier(loaded: LoadedModels) -> None:
    bare = HouseholdIn.model_validate({"household_id": "H-bare", "village_id": "V", "round": 2})
    response = score_household(loaded, bare, lang="zh")
    assert response.risk_tier is None
    assert not response.sufficient_data
    assert response.data_completeness is not None and response.data_completeness < 0.1
    assert response.category == "insufficient_data"
    codes = [block.code for block in response.missing_blocks]
    assert {"income", "members"} <= set(codes)
    assert "收入" in [block.label for block in response.missing_blocks]
    assert "缺少：收入" in response.category_rule  # the rule in the language asked for


def test_a_registered_poor_household_with_too_little_data_is_poor_on_its_facts_without_a_tier(
    loaded: LoadedModels,
) -> None:
    sparse = HouseholdIn.model_validate(
        {"household_id": "H-poor", "village_id": "V", "round": 2, "poverty_status": "poor"}
    )
    response = score_household(loaded, sparse, lang="en")
    assert response.category == "poor"
    assert response.category_rule.startswith("registered poor")
    assert response.risk_tier is None and not response.sufficient_data
    assert [block.label for block in response.missing_blocks][:1] == ["income"]


def test_a_complete_household_has_sufficient_data(
    loaded: LoadedModels, household_body: dict[str, Any]
) -> None:
    response = score_household(loaded, _household(household_body), lang="en")
    assert response.sufficient_data and response.missing_blocks == []
    assert response.data_completeness == pytest.approx(1.0)
    assert response.risk_tier in {"high", "medium", "low"}
