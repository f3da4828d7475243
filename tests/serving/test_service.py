"""The scoring service, tier 2: the BentoML service's ASGI app (middleware, endpoints, start-up) driven
by a test client, against the temporary registry of conftest.py, a key file and an audit database."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from monitoring.audit import household_audit
from monitoring.store import make_engine
from serving.schemas import MAX_BATCH_HOUSEHOLDS
from serving.service import PovertyRiskService

from .conftest import service_variables

pytestmark = pytest.mark.integration

PERSONAL = {"head_name": "王小明", "head_id_card_number": "530102198001011234"}
MEMBER_PERSONAL = {"name": "王大妈", "id_card_number": "530102195501015678"}


@pytest.fixture(scope="module")
def environment(
    registry: str, api_keys: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    values = service_variables(registry, api_keys, tmp_path_factory.mktemp("service"))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        yield values


@pytest.fixture(scope="module")
def client(environment: dict) -> Iterator[TestClient]:
    with TestClient(PovertyRiskService.to_asgi()) as test_client:
        yield test_client


def _headers(api_keys: dict[str, Any], role: str) -> dict[str, str]:
    return {"X-API-Key": api_keys[role]}


def _score(client: TestClient, household: dict[str, Any], key: str | None, lang: str = "en") -> Any:
    headers = {"X-API-Key": key} if key else {}
    return client.post("/score", json={"request": {"household": household, "lang": lang}}, headers=headers)


def test_ready_and_scoring_with_a_cadre_key(client: TestClient, api_keys: dict, household_body: dict) -> None:
    assert client.get("/readyz").status_code == 200
    response = _score(client, household_body, api_keys["cadre"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["household_id"] == "H-test" and body["measures"] and body["main_cause"]["code"]
    assert [(m["name"], m["version"]) for m in body["models"]] == [
        ("povrisk-poverty", "1"),
        ("povrisk-relapse", "1"),
    ]


def test_keys_and_villages_decide_who_may_ask(
    client: TestClient, api_keys: dict, household_body: dict, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = {**household_body, "village_id": "V0999"}
    with caplog.at_level(logging.WARNING):
        assert _score(client, household_body, None).status_code == 401
        assert _score(client, household_body, "pvk_wrong").status_code == 401
        refused = _score(client, elsewhere, api_keys["cadre"])
        assert refused.status_code == 403
        assert "V0999" in refused.json()["error"] and "cadre-li" in refused.json()["error"]
        assert client.get("/model", headers=_headers(api_keys, "cadre")).status_code == 403
        assert client.get("/model", headers=_headers(api_keys, "monitor")).status_code == 403
    assert "refused household hh-" in caplog.text and "of village V0999: key cadre-li" in caplog.text
    assert _score(client, elsewhere, api_keys["monitor"]).status_code == 200
    assert _score(client, elsewhere, api_keys["analyst"]).status_code == 200
    card = client.get("/model", headers=_headers(api_keys, "analyst"))
    assert card.status_code == 200
    assert [model["task"] for model in card.json()["models"]] == ["poverty", "relapse"]
    assert card.json()["source"] == "registry" and card.json()["models"][0]["features"]


def test_personal_data_never_reaches_logs_answers_or_the_audit_trail(
    client: TestClient,
    api_keys: dict,
    household_body: dict,
    environment: dict,
    caplog: pytest.LogCaptureFixture,
) -> None:
    household = copy.deepcopy(household_body) | PERSONAL | {"household_id": "H-pii"}
    household["members"][0] |= MEMBER_PERSONAL
    with caplog.at_level(logging.DEBUG):
        single = _score(client, household, api_keys["cadre"])
        batch = client.post(
            "/score_batch",
            json={
                "request": {
                    "households": [household, {**household, "members": [{"age": -1, **MEMBER_PERSONAL}]}]
                }
            },
            headers=_headers(api_keys, "cadre"),
        )
        changed = client.post(
            "/whatif",
            json={"request": {"household": household, "changes": {"household": {"medical_insurance": True}}}},
            headers=_headers(api_keys, "cadre"),
        )
    assert single.status_code == batch.status_code == changed.status_code == 200
    engine = make_engine(environment["POVRISK_DB_URL"])
    _wait_for_audit(engine, "H-pii", rows=3)
    with engine.connect() as connection:
        stored = " ".join(
            str(row) for row in connection.execute(text("SELECT * FROM score_audit")).fetchall()
        )
    for secret in [*PERSONAL.values(), *MEMBER_PERSONAL.values()]:
        for where, content in (("logs", caplog.text), ("answers", single.text + batch.text + changed.text)):
            assert secret not in content, where
        assert secret not in stored
    assert "H-pii" not in caplog.text  # logs carry a salted hash of the household id


def _wait_for_audit(engine: Any, household_id: str, rows: int) -> Any:
    for _ in range(100):
        trail = household_audit(engine, household_id)
        if len(trail) >= rows:
            return trail
        threading.Event().wait(0.05)
    raise AssertionError(f"the audit trail of {household_id} holds {len(trail)} rows, expected {rows}")


def test_every_score_is_audited_with_key_and_model(
    client: TestClient, api_keys: dict, household_body: dict, environment: dict
) -> None:
    household = {**household_body, "household_id": "H-audit"}
    _score(client, household, api_keys["monitor"])
    trail = _wait_for_audit(make_engine(environment["POVRISK_DB_URL"]), "H-audit", rows=1)
    row = trail.iloc[-1]
    assert row["key_id"] == "monitor-county" and row["endpoint"] == "/score"
    assert row["model_name"] == "povrisk-poverty;povrisk-relapse" and row["model_version"] == "1;1"
    assert row["poverty_risk"] is not None and row["reasons"].startswith("[")


def test_a_batch_gives_each_bad_household_its_own_error(
    client: TestClient, api_keys: dict, household_body: dict
) -> None:
    households = [
        household_body,
        {
            **household_body,
            "household_id": "H-bad",
            "members": [{"member_id": "1", "age": -4, "sex": "unknown"}],
        },
        {**household_body, "household_id": "H-far", "village_id": "V0999"},
        {**household_body, "household_id": "H-1995", "survey_year": 1995},
        {"village_id": "V-test", "round": 1},
    ]
    response = client.post(
        "/score_batch",
        json={"request": {"households": households, "lang": "zh"}},
        headers=_headers(api_keys, "cadre"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["scored"], body["failed"]) == (1, 4)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert results[0]["score"]["household_id"] == "H-test"
    assert results[1]["error"]["status"] == 400 and {"members.0.age", "members.0.sex"} <= set(
        results[1]["error"]["fields"]
    )
    assert results[2]["error"]["status"] == 403
    assert results[3]["error"]["status"] == 400 and "1995" in results[3]["error"]["error"]
    assert results[4]["household_id"] is None and "household_id" in results[4]["error"]["fields"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            {"request": {"household": {"village_id": "V", "round": "x", "favourite_colour": "red"}}},
            ["household_id", "round", "favourite_colour"],
        ),
        (
            {
                "request": {
                    "household": {
                        "household_id": "H",
                        "village_id": "V",
                        "round": 1,
                        "members": [{"member_id": str(i)} for i in range(31)],
                    }
                }
            },
            ["members"],
        ),
        (
            {
                "request": {
                    "household": {
                        "household_id": "H",
                        "village_id": "V",
                        "round": 1,
                        "medical_insurance": "maybe",
                    }
                }
            },
            ["medical_insurance"],
        ),
        (
            {
                "request": {
                    "household": {"household_id": "H", "village_id": "V", "round": 1, "income_wages": 1e12}
                }
            },
            ["income_wages"],
        ),
        ({"request": {"household": {"household_id": "", "village_id": "V", "round": 1}}}, ["household_id"]),
        ({}, ["request"]),
    ],
)
def test_a_malformed_request_gets_400_naming_every_bad_field(
    client: TestClient, api_keys: dict, body: dict, named: list[str]
) -> None:
    response = client.post("/score", json=body, headers=_headers(api_keys, "cadre"))
    assert response.status_code == 400, response.text
    for field in named:
        assert field in response.text, field


def test_bodies_that_are_not_json_too_large_or_too_many_get_a_4xx(
    client: TestClient, api_keys: dict, household_body: dict
) -> None:
    headers = _headers(api_keys, "cadre") | {"content-type": "application/json"}
    assert 400 <= client.post("/score", content=b"{not json", headers=headers).status_code < 500
    assert client.post("/score", content=b" " * 1_000_001, headers=headers).status_code == 413
    too_many = {"request": {"households": [household_body] * (MAX_BATCH_HOUSEHOLDS + 1)}}
    response = client.post("/score_batch", json=too_many, headers=_headers(api_keys, "cadre"))
    assert response.status_code == 400 and "households" in response.text


def test_what_if_over_http(client: TestClient, api_keys: dict, household_body: dict) -> None:
    body = {
        "household": {**household_body, "medical_insurance": False},
        "changes": {"household": {"medical_insurance": True}},
    }
    response = client.post("/whatif", json={"request": body}, headers=_headers(api_keys, "cadre"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["after"]["poverty_risk"] <= answer["before"]["poverty_risk"]
    bad = {"household": household_body, "changes": {"members": [{"member_id": "9", "changes": {"age": 3}}]}}
    refused = client.post("/whatif", json={"request": bad}, headers=_headers(api_keys, "cadre"))
    assert refused.status_code == 400 and "no member '9'" in refused.text


def test_reload_under_load_drops_no_request(client: TestClient, api_keys: dict, household_body: dict) -> None:
    statuses: list[int] = []
    stop = threading.Event()

    def keep_scoring() -> None:
        while not stop.is_set():
            statuses.append(_score(client, household_body, api_keys["monitor"]).status_code)

    workers = [threading.Thread(target=keep_scoring) for _ in range(4)]
    for worker in workers:
        worker.start()
    reloads = [client.post("/admin/reload", json={}, headers=_headers(api_keys, "analyst")) for _ in range(2)]
    stop.set()
    for worker in workers:
        worker.join()
    assert [reload.status_code for reload in reloads] == [200, 200]
    assert len(statuses) > 4 and set(statuses) == {200}
    assert client.post("/admin/reload", json={}, headers=_headers(api_keys, "cadre")).status_code == 403


def test_alone_or_merged_with_others_a_household_gets_the_same_answer(
    client: TestClient, api_keys: dict, household_body: dict
) -> None:
    """A request that finds the service idle is scored at once; requests that overlap go through the
    batching dispatcher together. Both give the same answers."""
    households = [{**household_body, "household_id": f"H-{number}"} for number in range(12)]
    for number, household in enumerate(households):
        household["income_wages"] = 1_000.0 * number
    alone = [_score(client, household, api_keys["monitor"]).json() for household in households]
    together: list[Any] = [None] * len(households)

    def score(position: int) -> None:
        together[position] = _score(client, households[position], api_keys["monitor"]).json()

    threads = [threading.Thread(target=score, args=(position,)) for position in range(len(households))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert together == alone
    assert len({answer["poverty_risk"] for answer in alone}) > 1  # the households differ
