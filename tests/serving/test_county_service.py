"""Counties scored by models of their own, tier 2: the service's ASGI app under a policy file giving C02
models of its own and C04 too, with `until_trained: refuse` (C04 has no own champion in
`county_registry`); C05 is not listed. The same households are registered in the three counties."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import yaml
from sqlalchemy import text
from starlette.testclient import TestClient

from features.policy import DEFAULT_POLICY_PATH, POLICY_VARIABLE
from models.predictor import RiskPredictor
from serving.batch import score_round
from serving.schemas import FROM_REGISTER, ErrorOut, ScoreResponse
from serving.scoring import register_context, registered_input
from store.database import create_schema, make_engine
from store.register import ingest_survey, read_register, registered_household
from survey.io import Survey
from survey.validate import conform

from .conftest import OWN_BOTH, service_variables

pytestmark = pytest.mark.integration

REFUSED, UNLISTED = "C04", "C05"
ROUND = 2
TOLERANCE = 1e-9
OWN = [(f"povrisk-poverty-{OWN_BOTH}", "1"), (f"povrisk-relapse-{OWN_BOTH}", "1")]
SHARED = [("povrisk-poverty", "1"), ("povrisk-relapse", "1")]


@pytest.fixture(scope="module")
def environment(
    county_registry: str,
    api_keys: dict[str, Any],
    other_county: Survey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("county-service")
    settings = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    settings["county_models"] = {"counties": [OWN_BOTH, REFUSED], "until_trained": "refuse"}
    policy_file = folder / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    values = service_variables(county_registry, api_keys, folder) | {POLICY_VARIABLE: str(policy_file)}
    engine = make_engine(values["POVRISK_DB_URL"])
    create_schema(engine)
    for county in (OWN_BOTH, REFUSED, UNLISTED):
        ingest_survey(engine, other_county, county, source="test", by="test")
    engine.dispose()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        yield values


@pytest.fixture(scope="module")
def client(environment: dict[str, str], service_app: Any) -> Iterator[TestClient]:
    with TestClient(service_app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def expected(
    environment: dict[str, str], policy: Any, trained: dict[str, Any], county_trained: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    """Batch scoring of round 2 by C02's own models and by the shared ones: what each answer must be."""
    engine = make_engine(environment["POVRISK_DB_URL"])
    survey = conform(read_register(engine, UNLISTED))
    engine.dispose()
    flags = {}
    for name, models in (("own", county_trained), ("shared", trained)):
        predictor = RiskPredictor(policy, poverty=models["poverty"].model, relapse=models["relapse"].model)
        flags[name] = score_round(predictor, survey, ROUND, lang="en").set_index("household_id")
    return flags


def _by_reference(client: TestClient, key: str, county: str, household: str, lang: str = "en") -> Any:
    body = {"request": {"county_id": county, "household_id": household, "round": ROUND, "lang": lang}}
    return client.post("/score", json=body, headers={"X-API-Key": key})


def _households(expected: dict[str, pd.DataFrame], count: int) -> list[str]:
    return [
        str(household) for household in expected["own"].index.intersection(expected["shared"].index)[:count]
    ]


def test_a_county_of_its_own_model_gets_its_answers_and_the_others_the_shared_one(
    client: TestClient, api_keys: dict[str, Any], expected: dict[str, pd.DataFrame]
) -> None:
    household = _households(expected, 1)[0]
    for county, refs, flags in ((OWN_BOTH, OWN, expected["own"]), (UNLISTED, SHARED, expected["shared"])):
        response = _by_reference(client, api_keys["monitor"], county, household)
        assert response.status_code == 200, response.text
        body = response.json()
        assert [(ref["name"], ref["version"]) for ref in body["models"]] == refs
        assert abs(body["poverty_risk"] - flags.loc[household, "poverty_risk"]) <= TOLERANCE
        assert abs(body["relapse_risk"] - flags.loc[household, "relapse_risk"]) <= TOLERANCE


def test_a_county_refused_until_its_own_model_has_a_champion_gets_409_in_words(
    client: TestClient, api_keys: dict[str, Any]
) -> None:
    chinese = _by_reference(client, api_keys["monitor"], REFUSED, "H000001", lang="zh")
    assert chinese.status_code == 409
    assert "C04" in chinese.json()["error"] and "本县自己的模型" in chinese.json()["error"]
    english = _by_reference(client, api_keys["monitor"], REFUSED, "H000001")
    assert english.status_code == 409 and "not scored until it has" in english.json()["error"]
    assert "_" not in english.json()["error"]  # words, not codes


def test_the_model_card_shows_the_county_models(client: TestClient, api_keys: dict[str, Any]) -> None:
    card = client.get("/model", headers={"X-API-Key": api_keys["analyst"]}).json()
    assert [(model["name"], model["version"]) for model in card["models"]] == SHARED
    counties = card["county_models"]
    assert counties["until_trained"] == "refuse"
    assert [(county["county_id"], county["scored"]) for county in counties["counties"]] == [
        (OWN_BOTH, True),
        (REFUSED, False),
    ]
    assert [(model["name"], model["version"]) for model in counties["counties"][0]["models"]] == OWN
    reloaded = client.post("/admin/reload", json={}, headers={"X-API-Key": api_keys["analyst"]})
    assert reloaded.status_code == 200 and reloaded.json()["county_models"] == counties


def test_the_audit_trail_names_the_models_that_scored_each_household(
    client: TestClient,
    api_keys: dict[str, Any],
    expected: dict[str, pd.DataFrame],
    environment: dict[str, str],
) -> None:
    household = _households(expected, 3)[2]
    for county in (OWN_BOTH, UNLISTED):
        assert _by_reference(client, api_keys["monitor"], county, household).status_code == 200
    engine = make_engine(environment["POVRISK_DB_URL"])
    query = text(
        "SELECT county_id, model_name, model_version FROM score_audit WHERE household_id = :household"
    )
    for _ in range(100):
        with engine.connect() as connection:
            rows = set(connection.execute(query, {"household": household}).fetchall())
        if len(rows) >= 2:
            break
        threading.Event().wait(0.05)
    engine.dispose()
    assert rows == {
        (OWN_BOTH, f"povrisk-poverty-{OWN_BOTH};povrisk-relapse-{OWN_BOTH}", "1;1"),
        (UNLISTED, "povrisk-poverty;povrisk-relapse", "1;1"),
    }


def test_requests_of_several_counties_scored_together_keep_their_own_answers(
    client: TestClient, api_keys: dict[str, Any], expected: dict[str, pd.DataFrame]
) -> None:
    """Overlapping requests are merged into one scoring pass (the batching dispatcher); each still gets
    its county's models, and a refused county's request its 409, as when sent alone."""
    requests = [
        (county, household)
        for household in _households(expected, 3)
        for county in (OWN_BOTH, UNLISTED, REFUSED)
    ]
    alone = [_by_reference(client, api_keys["monitor"], *request) for request in requests]
    together: list[Any] = [None] * len(requests)

    def score(position: int) -> None:
        together[position] = _by_reference(client, api_keys["monitor"], *requests[position])

    threads = [threading.Thread(target=score, args=(position,)) for position in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [(r.status_code, r.json()) for r in together] == [(r.status_code, r.json()) for r in alone]
    assert [r.status_code for r in alone] == [200, 200, 409] * 3


def test_one_pass_over_several_counties_answers_in_order(
    client: TestClient, expected: dict[str, pd.DataFrame], environment: dict[str, str]
) -> None:
    """The service's own scoring of one merged batch: C02, C05, C04 (refused), C02 again."""
    from serving.service import _WORKER_HEALTH

    service = _WORKER_HEALTH[-1].__self__
    engine = make_engine(environment["POVRISK_DB_URL"])
    household = _households(expected, 1)[0]
    order = (OWN_BOTH, UNLISTED, REFUSED, OWN_BOTH)
    registered = [registered_household(engine, county, household, ROUND) for county in order]
    engine.dispose()
    households = [registered_input(one) for one in registered]  # type: ignore[arg-type]
    contexts = [
        register_context(one, sent, FROM_REGISTER)  # type: ignore[arg-type]
        for one, sent in zip(registered, households, strict=True)
    ]
    answers = service._score_or_isolate(service._current(), households, "zh", contexts)
    assert [type(answer) for answer in answers] == [ScoreResponse, ScoreResponse, ErrorOut, ScoreResponse]
    assert [answer.county_id for answer in answers if isinstance(answer, ScoreResponse)] == [
        OWN_BOTH,
        UNLISTED,
        OWN_BOTH,
    ]
    assert [
        [(ref.name, ref.version) for ref in answer.models]
        for answer in answers
        if isinstance(answer, ScoreResponse)
    ] == [OWN, SHARED, OWN]
    assert answers[2].status == 409 and "C04" in answers[2].error  # type: ignore[union-attr]
    assert answers[0].model_dump() == answers[3].model_dump()  # type: ignore[union-attr]
