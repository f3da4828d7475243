"""Counties scored by models of their own (`Policy.county_models`), tier 1: what `load_models` loads from
a real MLflow registry holding counties' own champions (`county_registry`), which models score a
registered household of each county, the fallback to the shared model and the refusal, the model card,
and the local copy with and without county models."""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine

from features.policy import Policy
from models.predictor import RiskPredictor
from serving.batch import score_round
from serving.bento import CHAMPIONS_FOLDER, package_champions
from serving.model_cache import Champions, load_champions, load_county_champions, save_champions
from serving.scoring import (
    CountyNotScored,
    LoadedModels,
    ServiceStartError,
    load_models,
    models_for,
    score_registered,
    score_registered_together,
)
from store.database import create_schema, make_engine
from store.register import ingest_survey, read_register, registered_household
from survey.io import Survey
from survey.validate import conform
from training.train import TrainedTask

from .conftest import OWN_BOTH, OWN_POVERTY, county_policy

pytestmark = pytest.mark.integration

NO_OWN, UNLISTED = "C04", "C05"
"""C04: listed by the test policies, without any own champion; C05: never listed (the shared model)."""
ROUND = 2
TOLERANCE = 1e-9
SHARED = [("povrisk-poverty", "1"), ("povrisk-relapse", "1")]
OWN = [(f"povrisk-poverty-{OWN_BOTH}", "1"), (f"povrisk-relapse-{OWN_BOTH}", "1")]


@pytest.fixture(scope="module")
def register(other_county: Survey, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The same simulated households registered as four counties: one per case."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('counties') / 'povrisk.db'}")
    create_schema(engine)
    for county in (OWN_BOTH, OWN_POVERTY, NO_OWN, UNLISTED):
        ingest_survey(engine, other_county, county, source="test", by="test")
    yield engine
    engine.dispose()


@pytest.fixture
def in_registry(county_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The county registry in force, and the local copy's folder (returned)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", county_registry)
    monkeypatch.setenv("POVRISK_MODEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _flags(predictor: RiskPredictor, register: Engine) -> pd.DataFrame:
    """Batch scoring of round 2 by `predictor` (the same households in every county)."""
    survey = conform(read_register(register, UNLISTED))
    return score_round(predictor, survey, ROUND, lang="en").set_index("household_id")


def _predictor(policy: Policy, poverty: TrainedTask | None, relapse: TrainedTask | None) -> RiskPredictor:
    return RiskPredictor(
        policy,
        poverty=None if poverty is None else poverty.model,
        relapse=None if relapse is None else relapse.model,
    )


def _households(register: Engine, pairs: list[tuple[str, str]]) -> list[Any]:
    found = [registered_household(register, county, household, ROUND) for county, household in pairs]
    assert all(registered is not None for registered in found)
    return found


def _refs(answer: Any) -> list[tuple[str, str]]:
    return [(ref.name, ref.version) for ref in answer.models]


def _assert_risks(answer: Any, flags: pd.DataFrame) -> None:
    flag = flags.loc[answer.household_id]
    assert abs(answer.poverty_risk - flag["poverty_risk"]) <= TOLERANCE, answer.household_id
    assert abs(answer.relapse_risk - flag["relapse_risk"]) <= TOLERANCE, answer.household_id


def _failing_registry() -> Any:
    def fail(*_: Any, **__: Any) -> Any:
        raise ConnectionError("cannot reach http://mlflow.example:5000")

    return types.SimpleNamespace(
        tracking_uri=lambda: "http://mlflow.example:5000", load_champion=fail, version_aliases=fail
    )


def test_a_county_of_its_own_model_is_scored_by_it_and_the_rest_by_the_shared_model_in_order(
    in_registry: Path,
    register: Engine,
    policy: Policy,
    trained: dict[str, TrainedTask],
    county_trained: dict[str, TrainedTask],
) -> None:
    models = load_models(county_policy(policy, OWN_BOTH))
    assert set(models.county_models) == {OWN_BOTH} and not models.refused_counties
    own_flags = _flags(_predictor(policy, county_trained["poverty"], county_trained["relapse"]), register)
    shared_flags = _flags(_predictor(policy, trained["poverty"], trained["relapse"]), register)
    both = [str(household) for household in own_flags.index.intersection(shared_flags.index)[:4]]
    pairs = [(county, household) for household in both for county in (OWN_BOTH, UNLISTED)]
    answers = score_registered_together(models, _households(register, pairs), "en")
    assert [(answer.county_id, answer.household_id) for answer in answers] == pairs  # the request's order
    for answer in answers:
        own = answer.county_id == OWN_BOTH
        assert _refs(answer) == (OWN if own else SHARED)
        _assert_risks(answer, own_flags if own else shared_flags)
        alone = score_registered(
            models, registered_household(register, answer.county_id, answer.household_id), "en"
        )
        assert alone.model_dump() == answer.model_dump()  # the same answer, mixed or alone
    by_county = {(answer.county_id, answer.household_id): answer.poverty_risk for answer in answers}
    assert any(by_county[(OWN_BOTH, household)] != by_county[(UNLISTED, household)] for household in both)


def test_under_shared_model_each_task_without_an_own_champion_is_scored_by_the_shared_one(
    in_registry: Path,
    register: Engine,
    policy: Policy,
    trained: dict[str, TrainedTask],
    county_trained: dict[str, TrainedTask],
) -> None:
    models = load_models(county_policy(policy, OWN_BOTH, OWN_POVERTY, NO_OWN))
    assert set(models.county_models) == {OWN_BOTH, OWN_POVERTY} and not models.refused_counties
    assert models_for(models, NO_OWN) is models and models_for(models, None) is models
    half = _flags(_predictor(policy, county_trained["poverty"], trained["relapse"]), register)
    shared_flags = _flags(_predictor(policy, trained["poverty"], trained["relapse"]), register)
    household = str(half.index.intersection(shared_flags.index)[0])
    half_own, no_own = score_registered_together(
        models, _households(register, [(OWN_POVERTY, household), (NO_OWN, household)]), "en"
    )
    assert _refs(half_own) == [(f"povrisk-poverty-{OWN_POVERTY}", "1"), ("povrisk-relapse", "1")]
    _assert_risks(half_own, half)
    assert _refs(no_own) == SHARED
    _assert_risks(no_own, shared_flags)

    card = models.card.county_models
    assert card.until_trained == "shared_model"
    assert [(county.county_id, county.scored) for county in card.counties] == [
        (OWN_BOTH, True),
        (OWN_POVERTY, True),
        (NO_OWN, True),
    ]
    named = {
        county.county_id: [(m.task, m.name, "champion" in m.aliases) for m in county.models]
        for county in card.counties
    }
    assert named[OWN_POVERTY] == [
        ("poverty", f"povrisk-poverty-{OWN_POVERTY}", True),
        ("relapse", "povrisk-relapse", True),
    ]
    assert [name for _, name, _ in named[NO_OWN]] == ["povrisk-poverty", "povrisk-relapse"]
    assert [(m.name, m.version) for m in models.card.models] == SHARED  # the shared models, as before


def test_under_refuse_a_county_without_an_own_champion_is_not_scored(
    in_registry: Path,
    register: Engine,
    policy: Policy,
    county_trained: dict[str, TrainedTask],
) -> None:
    models = load_models(county_policy(policy, OWN_BOTH, OWN_POVERTY, NO_OWN, until_trained="refuse"))
    assert models.refused_counties == {NO_OWN} and set(models.county_models) == {OWN_BOTH, OWN_POVERTY}
    (household,) = _households(register, [(NO_OWN, "H000001")])
    with pytest.raises(CountyNotScored) as refused:
        score_registered(models, household)
    assert refused.value.county_id == NO_OWN
    assert "C04" in refused.value.words("zh") and "模型" in refused.value.words("zh")
    assert "C04" in refused.value.words("en") and "not scored" in refused.value.words("en")
    with pytest.raises(CountyNotScored):
        models_for(models, NO_OWN)
    # a county with its own poverty champion alone: the relapse task is not scored for it
    own_poverty = _flags(_predictor(policy, county_trained["poverty"], None), register)
    (half,) = _households(register, [(OWN_POVERTY, str(own_poverty.index[0]))])
    answer = score_registered(models, half, "en")
    assert _refs(answer) == [(f"povrisk-poverty-{OWN_POVERTY}", "1")] and answer.relapse_risk is None
    assert abs(answer.poverty_risk - own_poverty.loc[answer.household_id, "poverty_risk"]) <= TOLERANCE
    card = models.card.county_models
    assert card.until_trained == "refuse"
    assert [(county.county_id, county.scored, len(county.models)) for county in card.counties] == [
        (OWN_BOTH, True, 2),
        (OWN_POVERTY, True, 1),
        (NO_OWN, False, 0),
    ]


def test_the_local_copy_holds_the_county_models_and_serves_them_without_the_registry(
    in_registry: Path, register: Engine, policy: Policy, caplog: pytest.LogCaptureFixture
) -> None:
    listing = county_policy(policy, OWN_BOTH, OWN_POVERTY, NO_OWN)
    from_registry = load_models(listing)
    assert (in_registry / "counties" / OWN_BOTH / "relapse" / "booster.txt").exists()
    assert not (in_registry / "counties" / NO_OWN).exists()
    with caplog.at_level("WARNING", logger="serving.scoring"):
        from_copy = load_models(listing, tracking=_failing_registry())
    assert from_copy.card.source == "cache" and "records no models" not in caplog.text
    assert _scopes(from_copy) == _scopes(from_registry)
    pairs = [(county, "H000003") for county in (OWN_BOTH, OWN_POVERTY, NO_OWN, UNLISTED)]
    households = _households(register, pairs)
    assert [answer.model_dump() for answer in score_registered_together(from_copy, households)] == [
        answer.model_dump() for answer in score_registered_together(from_registry, households)
    ]
    refusing = county_policy(policy, NO_OWN, until_trained="refuse")
    assert load_models(refusing, tracking=_failing_registry()).refused_counties == {NO_OWN}


def _scopes(models: LoadedModels) -> dict[str, Any]:
    return {county: scope.model_refs for county, scope in models.county_models.items()} | {
        "refused": models.refused_counties,
        "shared": models.model_refs,
    }


def test_a_copy_saved_before_counties_had_models_still_loads(
    trained: dict[str, TrainedTask],
    policy: Policy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("POVRISK_MODEL_CACHE", str(tmp_path / "cache"))
    shared = {task: trained[task].model.registered_as(f"povrisk-{task}", "1") for task in trained}
    save_champions(shared, {task: ["champion"] for task in shared}, tmp_path / "cache")
    card_file = tmp_path / "cache" / "card.json"
    older = {key: value for key, value in json.loads(card_file.read_text()).items() if key != "counties"}
    card_file.write_text(json.dumps(older))  # as a copy made before counties had models of their own
    with caplog.at_level("WARNING", logger="serving.scoring"):
        models = load_models(county_policy(policy, OWN_BOTH), tracking=_failing_registry())
    assert models.card.source == "cache" and not models.county_models and not models.refused_counties
    assert f"records no models of county {OWN_BOTH}" in caplog.text
    refusing = load_models(
        county_policy(policy, OWN_BOTH, until_trained="refuse"), tracking=_failing_registry()
    )
    assert refusing.refused_counties == {OWN_BOTH}
    assert load_champions(tmp_path / "cache", ("poverty", "relapse"))[0].keys() == {"poverty", "relapse"}


def test_a_county_model_trained_under_another_policy_is_refused_at_start(
    trained: dict[str, TrainedTask],
    county_trained: dict[str, TrainedTask],
    policy: Policy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POVRISK_MODEL_CACHE", str(tmp_path / "cache"))
    shared = {task: trained[task].model.registered_as(f"povrisk-{task}", "1") for task in trained}
    stale = dataclasses.replace(
        county_trained["poverty"].model.registered_as(f"povrisk-poverty-{OWN_BOTH}", "2"),
        policy_version="an-older-policy",
    )
    save_champions(shared, {}, tmp_path / "cache", {OWN_BOTH: Champions({"poverty": stale}, {})})
    with pytest.raises(ServiceStartError, match=rf"povrisk-poverty-{OWN_BOTH} version 2.*an-older-policy"):
        load_models(county_policy(policy, OWN_BOTH), tracking=_failing_registry())


def test_the_packaged_champions_hold_the_county_models_and_serve_them_without_the_registry(
    in_registry: Path, policy: Policy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bentoml

    listing = county_policy(policy, OWN_BOTH, OWN_POVERTY, NO_OWN)
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    packaged = package_champions(listing)
    stored = bentoml.models.get(packaged.model_tag)
    assert stored.info.metadata["counties"][OWN_POVERTY] == {
        "poverty": [f"povrisk-poverty-{OWN_POVERTY}", "1"]
    }
    folder = Path(stored.path) / CHAMPIONS_FOLDER
    own = load_county_champions(folder, listing.county_models.counties)
    assert {county: sorted(champions.models) for county, champions in own.items()} == {
        OWN_BOTH: ["poverty", "relapse"],
        OWN_POVERTY: ["poverty"],
        NO_OWN: [],
    }
    monkeypatch.setenv("POVRISK_PACKAGED_MODEL", packaged.model_tag)
    monkeypatch.setenv("POVRISK_MODEL_CACHE", str(tmp_path / "no-copy"))
    served = load_models(listing, tracking=_failing_registry())
    assert served.card.source == "packaged"
    assert _scopes(served) == _scopes(load_models(listing))
