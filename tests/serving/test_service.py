"""The scoring service, tier 2: the BentoML service's ASGI app (middleware, endpoints, start-up) driven
by a test client, against the temporary registry of conftest.py, a key file and an audit database."""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from monitoring.audit import household_audit
from serving.schemas import MAX_BATCH_HOUSEHOLDS, MAX_REQUEST_BYTES
from store.database import make_engine

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
def client(environment: dict, service_app: Any) -> Iterator[TestClient]:
    with TestClient(service_app) as test_client:
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
    elsewhere = {**household_body, "household_id": "H-v0999", "village_id": "V0999"}
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
    assert client.post("/score", content=b" " * (MAX_REQUEST_BYTES + 1), headers=headers).status_code == 413
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
    for number, household in enumerate(households):  # what the poverty model reads (not income: its label)
        household |= {
            "durable_assets": float(number),
            "arable_land_mu": 0.5 * number,
            "distance_road_km": number,
        }
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
    # the households differ (an isotonic calibrator may give several of them the same poverty risk)
    assert len({(answer["poverty_risk"], answer["relapse_risk"]) for answer in alone}) > 1


def _service_instance() -> Any:
    """The service instance behind the module's test client (its health report is bound to it)."""
    from serving.service import _WORKER_HEALTH

    return _WORKER_HEALTH[-1].__self__


@pytest.mark.parametrize(
    ("field", "value"),
    [("household_id", "H\u0000X"), ("village_id", "V-test\nforged line"), ("head_name", "王\u2028")],
)
def test_control_characters_get_400_naming_the_field(
    client: TestClient,
    api_keys: dict,
    household_body: dict,
    field: str,
    value: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A NUL byte in a household id got 200 and then stopped the audit trail on PostgreSQL."""
    with caplog.at_level(logging.DEBUG):
        response = _score(client, {**household_body, field: value}, api_keys["monitor"])
    assert "forged line" not in caplog.text  # the log names the field, never quotes the value
    assert response.status_code == 400, response.text
    assert field in response.text and "control characters" in response.text
    batch = client.post(
        "/score_batch",
        json={"request": {"households": [household_body, {**household_body, field: value}]}},
        headers=_headers(api_keys, "monitor"),
    )
    results = batch.json()["results"]
    assert results[0]["score"] and results[1]["error"]["status"] == 400
    assert field in results[1]["error"]["fields"]


SECRETS = {"name": "李秀英", "id_card_number": "530102198203154321", "phone": "13912345678"}


def test_a_400_is_logged_as_one_line_without_any_input_value(
    client: TestClient, api_keys: dict, household_body: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """A probe found every invalid request logged as a traceback quoting the input (names, ID numbers,
    phone numbers): 929 of 940 refusals of a fuzz run."""
    household = copy.deepcopy(household_body) | {"household_id": "H-private", "phone": SECRETS["phone"]}
    household["head_name"] = SECRETS["name"]
    household["members"][0] |= {"age": -3, "id_card_number": SECRETS["id_card_number"]}
    with caplog.at_level(logging.DEBUG):
        single = _score(client, household, api_keys["cadre"])
        batch = client.post(
            "/score_batch", json={"request": {"households": [household]}}, headers=_headers(api_keys, "cadre")
        )
        not_json = client.post(
            "/score",
            content=f'{{"request": {{"household": "{SECRETS["name"]}'.encode(),
            headers=_headers(api_keys, "cadre") | {"content-type": "application/json"},
        )
    assert single.status_code == not_json.status_code == 400 and batch.status_code == 200
    for secret in [*SECRETS.values(), "H-private"]:
        assert secret not in caplog.text, secret
    assert "Traceback" not in caplog.text and "input_value" not in caplog.text
    lines = [record.getMessage() for record in caplog.records]
    refused = [line for line in lines if line.startswith("400 /score by key cadre-li household hh-")]
    assert len(refused) == 1
    assert "members.0.age greater_than_equal" in refused[0] and "phone extra_forbidden" in refused[0]
    assert any(
        line.startswith("/score_batch by key cadre-li: 1 household(s) invalid: #0 hh-") for line in lines
    )
    assert any(line == "400 /score by key cadre-li: the body is not JSON" for line in lines)


def test_a_cadre_is_checked_against_where_the_household_lives(
    client: TestClient,
    api_keys: dict,
    household_body: dict,
    environment: dict,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cadre of V-test could score a household of another village by sending her own village id."""
    import pandas as pd

    from store.cases import known_villages, upsert_flags

    engine = make_engine(environment["POVRISK_DB_URL"])
    flag = {
        "household_id": "H-elsewhere",
        "village_id": "V0007",
        "round": 2,
        "category": "poor",
        "category_rule": "r",
        "poverty_risk": 0.9,
        "relapse_risk": 0.1,
        "risk_tier": "high",
        "reasons_json": "[]",
        "model_name": "m",
        "model_version": "1",
    }
    upsert_flags(engine, pd.DataFrame([flag]))
    claimed = {**household_body, "household_id": "H-elsewhere", "village_id": "V-test"}
    with caplog.at_level(logging.WARNING):
        refused = _score(client, claimed, api_keys["cadre"])
    assert refused.status_code == 403 and "not known to live in village V-test" in refused.text
    assert "V0007" not in refused.text  # the answer does not say where the household lives
    assert "sent village V-test, but the household is known to live in village V0007" in caplog.text
    assert _score(client, {**claimed, "village_id": "V0007"}, api_keys["monitor"]).status_code == 200

    # a county-wide key's score says where a household lives; a cadre's own never does
    seen = {**household_body, "household_id": "H-seen", "village_id": "V0002"}
    assert _score(client, seen, api_keys["analyst"]).status_code == 200
    mine = {**household_body, "household_id": "H-mine", "village_id": "V0001"}
    assert _score(client, mine, api_keys["cadre"]).status_code == 200
    _wait_for_audit(engine, "H-seen", rows=1)
    _wait_for_audit(engine, "H-mine", rows=1)
    assert known_villages(engine, ["H-seen", "H-mine", "H-elsewhere"]) == {
        "H-seen": "V0002",
        "H-elsewhere": "V0007",
    }
    batch = client.post(
        "/score_batch",
        json={"request": {"households": [{**seen, "village_id": "V-test"}, mine, claimed]}},
        headers=_headers(api_keys, "cadre"),
    )
    statuses = [item["error"]["status"] if item["error"] else 200 for item in batch.json()["results"]]
    assert statuses == [403, 200, 403]
    trail = household_audit(engine, "H-elsewhere")
    assert set(trail["village_id"]) == {"V0007"} and set(trail["key_role"]) == {"monitor"}


def _wait_until_written(audit: Any, timeout: float = 30.0) -> None:
    """Wait until earlier tests' records are written, so the room counted below stays the room
    there is (a record written meanwhile would free a place)."""
    deadline = time.monotonic() + timeout
    while audit.state().queued and time.monotonic() < deadline:
        time.sleep(0.05)
    assert audit.state().queued == 0, audit.state()


def test_no_room_in_the_audit_trail_gets_503_and_readyz_says_why(
    client: TestClient, api_keys: dict, household_body: dict
) -> None:
    """Records are never dropped and a request never blocks: when the audit queue is full, scoring
    requests get 503 (nothing scored) and /readyz reports the audit writer's state."""
    audit = _service_instance()._audit
    _wait_until_written(audit)
    room = audit.state().capacity - audit.state().reserved
    assert audit.reserve(room)
    try:
        refused = _score(client, household_body, api_keys["monitor"])
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        assert "nothing was scored" in refused.json()["error"]
        batch = client.post(
            "/score_batch",
            json={"request": {"households": [household_body]}},
            headers=_headers(api_keys, "monitor"),
        )
        assert batch.status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready" and ready.json()["audit"]["accepting"] is False
        alive = client.get("/livez")
        assert alive.status_code == 200 and alive.json()["audit"]["writer_alive"] is True
    finally:
        audit.release(room)
    assert _score(client, household_body, api_keys["monitor"]).status_code == 200
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["audit"]["database"] == "reachable"


def test_no_redirect_is_built_from_the_host_header(client: TestClient, api_keys: dict) -> None:
    response = client.get(
        "/model/", headers=_headers(api_keys, "analyst") | {"host": "evil.example"}, follow_redirects=False
    )
    assert response.status_code == 307 and response.headers["location"] == "/model"


def _longest(model: Any) -> dict[str, Any]:
    """Every field of a request model filled with its longest valid value."""
    import typing

    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name == "members":
            continue
        literal = [
            arg for arg in typing.get_args(field.annotation) if typing.get_origin(arg) is typing.Literal
        ]
        described = str(field.annotation)
        if literal:
            values[name] = max(typing.get_args(literal[0]), key=len)
        elif "YesNo" in described or "bool" in described:
            values[name] = False
        elif name in ("household_id", "village_id"):
            values[name] = name[0].upper() * 64
        elif "str" in described:
            values[name] = "王" * 64
        elif name == "round":
            values[name] = 100
        elif name == "survey_year":
            values[name] = 2018
        else:
            values[name] = 1.0000000000000002
    return values


def test_the_largest_valid_batch_fits_the_body_limit(client: TestClient, api_keys: dict) -> None:
    """200 households of 30 members each got 413 while the README promised 200 households."""
    from serving.schemas import MAX_MEMBERS_PER_HOUSEHOLD, HouseholdIn, MemberIn

    household = _longest(HouseholdIn) | {"survey_year": 2016, "round": 2}
    household["members"] = [
        _longest(MemberIn) | {"member_id": f"{number:064d}", "age": 40.0}
        for number in range(MAX_MEMBERS_PER_HOUSEHOLD)
    ]
    households = [{**household, "household_id": f"{number:064d}"} for number in range(MAX_BATCH_HOUSEHOLDS)]
    body = json.dumps({"request": {"households": households}}).encode()  # every non-ASCII escaped: longest
    assert len(body) <= MAX_REQUEST_BYTES
    headers = _headers(api_keys, "monitor") | {"content-type": "application/json"}
    response = client.post("/score_batch", content=body, headers=headers)
    assert response.status_code == 200, response.text[:500]
    assert response.json()["failed"] == 0


def test_a_password_in_the_tracking_uri_never_reaches_an_answer_or_the_log(
    client: TestClient,
    api_keys: dict,
    trained: dict,
    policy: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """It appeared in the start-up refusal, the log, /admin/reload's 400 and GET /model."""
    from serving.scoring import model_card

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://svc:pw-s3cret@127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    monkeypatch.setenv("POVRISK_MODEL_CACHE", str(tmp_path / "no-copy"))
    with caplog.at_level(logging.DEBUG):
        refused = client.post("/admin/reload", json={}, headers=_headers(api_keys, "analyst"))
    assert refused.status_code == 400 and "reload failed" in refused.text
    assert "pw-s3cret" not in refused.text + caplog.text and "svc:***@127.0.0.1" in refused.text
    card = model_card(
        {task: trained[task].model for task in trained},
        {},
        policy,
        "registry",
        "postgresql://svc:pw-s3cret@db/x",
    )
    assert card.tracking_uri == "postgresql://svc:***@db/x"


@pytest.fixture(scope="module")
def registered_county(environment: dict, county: Any) -> str:
    """The serving tests' county in the service's register, as county C1."""
    from store.database import create_schema
    from store.register import ingest_survey

    engine = make_engine(environment["POVRISK_DB_URL"])
    create_schema(engine)
    ingest_survey(engine, county, "C1", source="test", by="test")
    engine.dispose()
    return "C1"


def _by_reference(client: TestClient, key: str, **reference: Any) -> Any:
    return client.post("/score", json={"request": {**reference, "lang": "en"}}, headers={"X-API-Key": key})


def test_a_household_by_reference_is_scored_from_the_register(
    client: TestClient, api_keys: dict, registered_county: str, loaded: Any, environment: dict
) -> None:
    from serving.scoring import score_registered
    from store.register import registered_household

    response = _by_reference(client, api_keys["monitor"], county_id=registered_county, household_id="H000002")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["basis"], body["county_id"], body["round"]) == ("register", "C1", 2)
    engine = make_engine(environment["POVRISK_DB_URL"])
    registered = registered_household(engine, "C1", "H000002")
    expected = score_registered(loaded, registered, "en")  # type: ignore[arg-type]
    assert abs(body["poverty_risk"] - expected.poverty_risk) <= 1e-9
    assert body["reasons"] == [reason.model_dump() for reason in expected.reasons]
    earlier = _by_reference(client, api_keys["monitor"], county_id="C1", household_id="H000002", round=0)
    assert earlier.status_code == 200 and earlier.json()["round"] == 0
    with engine.connect() as connection:
        counties = (
            connection.execute(text("SELECT county_id FROM score_audit WHERE household_id = 'H000002'"))
            .scalars()
            .all()
        )
    assert counties and set(counties) == {"C1"}
    engine.dispose()


def test_a_reference_the_register_does_not_hold_gets_404(
    client: TestClient, api_keys: dict, registered_county: str
) -> None:
    response = _by_reference(client, api_keys["monitor"], county_id="C1", household_id="H999999")
    assert response.status_code == 404
    assert response.json()["error"] == "the register holds no household H999999 of county C1"
    elsewhere = _by_reference(client, api_keys["monitor"], county_id="C9", household_id="H000002", round=1)
    assert elsewhere.status_code == 404 and "in round 1" in elsewhere.json()["error"]


@pytest.mark.parametrize(
    "request_body",
    [
        {"county_id": "C1"},
        {"household_id": "H000002"},
        {
            "county_id": "C1",
            "household_id": "H000002",
            "household": {"household_id": "H", "village_id": "V", "round": 1},
        },
    ],
)
def test_facts_or_reference_not_both_nor_neither(
    client: TestClient, api_keys: dict, request_body: dict
) -> None:
    response = client.post("/score", json={"request": request_body}, headers=_headers(api_keys, "monitor"))
    assert response.status_code == 400


def test_a_cadre_scores_by_reference_only_in_her_villages(
    client: TestClient, api_keys: dict, registered_county: str, county: Any
) -> None:
    households = county.households[county.households["round"] == 2]
    own = households.loc[households["village_id"] == "V0001", "household_id"].iloc[0]
    other = households.loc[households["village_id"] != "V0001", "household_id"].iloc[0]
    assert _by_reference(client, api_keys["cadre"], county_id="C1", household_id=own).status_code == 200
    refused = _by_reference(client, api_keys["cadre"], county_id="C1", household_id=other)
    assert refused.status_code == 403
    # sending the facts with her own village does not move the household into it
    body = client.post(
        "/score",
        json={
            "request": {
                "county_id": "C1",
                "household": {"household_id": other, "village_id": "V0001", "round": 2},
            }
        },
        headers=_headers(api_keys, "cadre"),
    )
    assert body.status_code == 403


def test_facts_with_a_county_are_scored_on_the_households_history(
    client: TestClient, api_keys: dict, registered_county: str, county: Any
) -> None:
    from serving.schemas import household_from_survey

    facts = household_from_survey(county, "H000002", 2).model_dump(exclude_none=True)
    with_history = client.post(
        "/score",
        json={"request": {"county_id": "C1", "household": facts, "lang": "en"}},
        headers=_headers(api_keys, "monitor"),
    ).json()
    by_reference = _by_reference(client, api_keys["monitor"], county_id="C1", household_id="H000002").json()
    alone = _score(client, facts, api_keys["monitor"]).json()
    assert with_history["basis"] == "submitted, with register history" and alone["basis"] == "no history"
    assert abs(with_history["poverty_risk"] - by_reference["poverty_risk"]) <= 1e-9
    assert with_history["reasons"] == by_reference["reasons"]
    unknown = client.post(
        "/score",
        json={"request": {"county_id": "C1", "household": {**facts, "household_id": "H-new"}}},
        headers=_headers(api_keys, "monitor"),
    ).json()
    assert unknown["basis"] == "no history"
