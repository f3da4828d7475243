"""The scoring service, tier 1: the pure scoring function and the service class called directly.

The class is instantiated against a temporary MLflow registry in which the small county's models were
registered and promoted (fixture `registry` in conftest.py).
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from bentoml.exceptions import BentoMLException, InvalidArgument
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic.fields import FieldInfo

from features.policy import PolicyError
from models.predictor import RiskPredictor
from serving.schemas import HouseholdIn, MemberIn, ModelRef, ScoreRequest, ScoreResponse
from serving.service import LoadedModels, PovertyRiskService, ServiceStartError, score_household


@pytest.fixture(scope="module")
def loaded(predictor: RiskPredictor) -> LoadedModels:
    refs = (ModelRef(name="povrisk-poverty", version="1"), ModelRef(name="povrisk-relapse", version="1"))
    return LoadedModels(predictor=predictor, model_refs=refs)


def _household(body: dict[str, Any], **overrides: Any) -> HouseholdIn:
    return HouseholdIn.model_validate({**body, **overrides})


def test_score_household_fills_every_field(loaded: LoadedModels, household_body: dict[str, Any]) -> None:
    response = score_household(loaded, _household(household_body), lang="en")
    assert response.household_id == "H-test"
    assert response.poverty_risk is not None and 0.0 <= response.poverty_risk <= 1.0
    assert response.relapse_risk is not None and 0.0 <= response.relapse_risk <= 1.0
    assert response.risk_tier in {"high", "medium", "low"}
    assert response.category in {
        "poor",
        "unstable_after_exit",
        "sudden_hardship",
        "marginal",
        "not_monitored",
    }
    assert response.category_rule
    assert 1 <= len(response.reasons) <= 3
    assert all(reason.contribution > 0 and reason.sentence for reason in response.reasons)
    assert [ref.name for ref in response.models] == ["povrisk-poverty", "povrisk-relapse"]


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


def test_language_changes_the_sentences_not_the_scores(
    loaded: LoadedModels, household_body: dict[str, Any]
) -> None:
    chinese = score_household(loaded, _household(household_body), lang="zh")
    english = score_household(loaded, _household(household_body), lang="en")
    assert chinese.poverty_risk == english.poverty_risk
    assert [r.indicator for r in chinese.reasons] == [r.indicator for r in english.reasons]
    assert [r.sentence for r in chinese.reasons] != [r.sentence for r in english.reasons]


def test_household_and_village_ids_do_not_change_the_score(
    loaded: LoadedModels, household_body: dict[str, Any]
) -> None:
    first = score_household(loaded, _household(household_body), lang="en")
    renamed = score_household(
        loaded, _household(household_body, household_id="other", village_id="elsewhere"), lang="en"
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


# --- the BentoML service class, called directly --------------------------------------------------


@pytest.fixture
def service(registry: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    return PovertyRiskService()


def test_service_loads_both_champions_and_is_ready(service: Any, household_body: dict[str, Any]) -> None:
    assert service.__is_ready__()
    response = service.score(request=ScoreRequest(household=_household(household_body), lang="en"))
    assert isinstance(response, ScoreResponse)
    assert [(ref.name, ref.version) for ref in response.models] == [
        ("povrisk-poverty", "1"),
        ("povrisk-relapse", "1"),
    ]


def test_service_turns_an_unscorable_household_into_a_400(
    service: Any, household_body: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument, match="1995") as caught:
        service.score(request=ScoreRequest(household=_household(household_body, survey_year=1995)))
    assert isinstance(caught.value, BentoMLException)
    assert int(caught.value.error_code) == 400


def test_service_refuses_to_start_without_a_champion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty_registry = f"sqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", empty_registry)
    with pytest.raises(ServiceStartError, match="no usable champion for task 'poverty'"):
        PovertyRiskService()


# --- any valid household is scored (the service never answers a valid body with a 500) ----------


def _bounds(field: FieldInfo) -> tuple[float, float]:
    low = next(item.ge for item in field.metadata if isinstance(item, annotated_types.Ge))
    high = next(item.le for item in field.metadata if isinstance(item, annotated_types.Le))
    return float(low), float(high)


def _value_strategy(name: str, field: FieldInfo) -> st.SearchStrategy[Any]:
    """Any value the field accepts (None included), from its annotation and bounds."""
    levels = [arg for arg in typing.get_args(field.annotation) if arg is not type(None)]
    if typing.get_origin(levels[0]) is typing.Literal:
        choice: st.SearchStrategy[Any] = st.sampled_from(typing.get_args(levels[0]))
    elif levels[0] is bool:
        choice = st.booleans()
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
