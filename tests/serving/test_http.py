"""The scoring service, tier 3: a real `bentoml serve` subprocess on a free loopback port.

It loads the champions from the temporary registry of conftest.py, the keys of the `api_keys` key file,
and keeps its BentoML home, audit database and local model copy in temporary folders. Every server is
stopped, even when a check fails.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from serving.launch import ServiceFailedToStart, running_service
from serving.schemas import MODEL_SOURCES

pytestmark = pytest.mark.integration


def _environment(api_keys: dict[str, Any], folder: Path) -> dict[str, str]:
    return {
        "POVRISK_API_KEYS_FILE": str(api_keys["path"]),
        "POVRISK_DB_URL": f"sqlite:///{folder / 'povrisk.db'}",
        "POVRISK_MODEL_CACHE": str(folder / "cache"),
        "POVRISK_LOG_SALT": "test-salt",
        "BENTOML_HOME": str(folder / "bentoml-home"),
    }


@pytest.fixture(scope="module")
def served(
    registry: str, api_keys: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("served")
    environment = _environment(api_keys, folder)
    with running_service(tracking_uri=registry, log=folder / "serve.log", environment=environment) as url:
        yield {"url": url, "folder": folder, "environment": environment}


def _post_score(served: dict, body: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    return httpx.post(f"{served['url']}/score", json=body, headers=headers, timeout=30.0)


def test_health_endpoints_need_no_key(served: dict) -> None:
    for path in ("/livez", "/healthz", "/readyz"):
        assert httpx.get(served["url"] + path, timeout=5.0).status_code == 200, path
    metrics = httpx.get(f"{served['url']}/metrics", timeout=5.0)
    assert metrics.status_code == 200 and "bentoml" in metrics.text
    assert httpx.get(f"{served['url']}/docs.json", timeout=5.0).status_code == 200


def test_score_over_http(served: dict, api_keys: dict, household_body: dict[str, Any]) -> None:
    body = {"request": {"household": household_body, "lang": "en"}}
    assert _post_score(served, body, None).status_code == 401
    response = _post_score(served, body, api_keys["cadre"])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["household_id"] == household_body["household_id"]
    assert 0.0 <= answer["poverty_risk"] <= 1.0 and answer["measures"] and answer["reasons"]
    assert [model["name"] for model in answer["models"]] == ["povrisk-poverty", "povrisk-relapse"]
    card = httpx.get(f"{served['url']}/model", headers={"X-API-Key": api_keys["analyst"]}, timeout=30.0)
    assert card.status_code == 200 and card.json()["source"] == "registry"
    log = (served["folder"] / "serve.log").read_text()  # the server's own log names the household by hash
    assert re.search(r"/score by key cadre-li: hh-\w+ poverty 0\.\d{3} relapse", log), log[-2000:]
    assert household_body["household_id"] not in log


def test_malformed_household_gets_400_naming_every_bad_field(
    served: dict, api_keys: dict, household_body: dict[str, Any]
) -> None:
    bad = {
        **{key: value for key, value in household_body.items() if key != "household_id"},
        "favourite_colour": "red",
        "members": [{"member_id": "1", "age": -4, "sex": "unknown"}],
    }
    response = _post_score(served, {"request": {"household": bad}}, api_keys["cadre"])
    assert response.status_code == 400, response.text
    for field in ("household_id", "favourite_colour", "age", "sex"):
        assert field in response.text, field


def test_unscorable_household_gets_400_not_500(
    served: dict, api_keys: dict, household_body: dict[str, Any]
) -> None:
    response = _post_score(
        served, {"request": {"household": {**household_body, "survey_year": 1995}}}, api_keys["cadre"]
    )
    assert response.status_code == 400, response.text
    assert "1995" in response.text


def test_a_body_that_is_not_json_gets_a_4xx(served: dict, api_keys: dict) -> None:
    response = httpx.post(
        f"{served['url']}/score",
        content=b"{not json",
        headers={"content-type": "application/json", "X-API-Key": api_keys["cadre"]},
        timeout=30.0,
    )
    assert 400 <= response.status_code < 500, response.text


def test_without_a_champion_the_service_serves_its_local_copy_or_refuses(
    served: dict, api_keys: dict, tmp_path: Path
) -> None:
    """The first server saved its champions; a server whose registry is empty serves that copy and says
    so, and one without the copy either refuses to start with the reason."""
    empty_registry = f"sqlite:///{tmp_path / 'empty.db'}"
    environment = {
        **served["environment"],
        "BENTOML_HOME": str(tmp_path / "home"),
        "POVRISK_DB_URL": f"sqlite:///{tmp_path / 'a.db'}",
    }
    with running_service(
        tracking_uri=empty_registry, log=tmp_path / "cache.log", environment=environment
    ) as url:
        card = httpx.get(f"{url}/model", headers={"X-API-Key": api_keys["analyst"]}, timeout=30.0).json()
        assert card["source"] == "cache"
        assert [model["version"] for model in card["models"]] == ["1", "1"]
    assert "serving the local copy" in (tmp_path / "cache.log").read_text()
    without_copy = {**environment, "POVRISK_MODEL_CACHE": str(tmp_path / "no-copy")}
    with (
        pytest.raises(ServiceFailedToStart, match=r"refused to start(?s:.*)no usable champion"),
        running_service(tracking_uri=empty_registry, log=tmp_path / "refused.log", environment=without_copy),
    ):
        pass


def test_without_keys_the_service_refuses_to_start(registry: str, served: dict, tmp_path: Path) -> None:
    environment = {
        **served["environment"],
        "POVRISK_API_KEYS_FILE": "",
        "BENTOML_HOME": str(tmp_path / "home"),
    }
    with (
        pytest.raises(ServiceFailedToStart, match=r"refused to start(?s:.*)no API keys"),
        running_service(tracking_uri=registry, log=tmp_path / "nokeys.log", environment=environment),
    ):
        pass


def test_schemathesis_finds_no_server_error_and_no_schema_violation(served: dict, api_keys: dict) -> None:
    """Generated requests against the service's own OpenAPI document: no 5xx, every answer as the
    document says (`serving.fuzz`; `make fuzz` runs 100 examples per operation, over 1,000 requests)."""
    from serving.fuzz import run_schemathesis

    result = run_schemathesis(served["url"], api_keys["cadre"], examples=8, seed=0)
    assert result["generated"] >= 50 and result["failures"] == 0, result["output"]


def test_a_reload_reaches_every_worker(
    registry: str, served: dict, api_keys: dict, household_body: dict[str, Any], tmp_path: Path
) -> None:
    """With two worker processes, /admin/reload lands on one; the other follows through the signal file,
    and requests keep being answered meanwhile."""
    environment = {
        **served["environment"],
        "POVRISK_WORKERS": "2",
        "BENTOML_HOME": str(tmp_path / "home"),
        "POVRISK_DB_URL": f"sqlite:///{tmp_path / 'two.db'}",
        "POVRISK_MODEL_CACHE": str(tmp_path / "cache"),
    }
    log = tmp_path / "two-workers.log"
    analyst = {"X-API-Key": api_keys["analyst"]}
    body = {"request": {"household": household_body}}
    with running_service(tracking_uri=registry, log=log, environment=environment) as url:
        _wait_for_lines(log, f"ready ({MODEL_SOURCES['registry']})", count=2)  # /readyz: the first worker
        before = datetime.now(UTC)
        assert httpx.post(f"{url}/admin/reload", json={}, headers=analyst, timeout=60.0).status_code == 200
        deadline = time.monotonic() + 30
        while "after another worker's /admin/reload" not in log.read_text() and time.monotonic() < deadline:
            scored = httpx.post(f"{url}/score", json=body, headers=analyst, timeout=30.0)
            assert scored.status_code == 200, scored.text
        lines = [line for line in log.read_text().splitlines() if " reloaded " in line]
        assert len(lines) == 2, lines
        pids = {re.search(r"worker (\d+) reloaded", line).group(1) for line in lines}  # type: ignore[union-attr]
        assert len(pids) == 2, lines
        for _ in range(10):  # new connections, to either worker: every card is of the reloaded models
            card = httpx.get(f"{url}/model", headers=analyst, timeout=30.0).json()
            assert datetime.fromisoformat(card["loaded_at"]) > before


def _wait_for_lines(log: Path, text: str, count: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while log.read_text().count(text) < count:
        assert time.monotonic() < deadline, f"fewer than {count} lines with {text!r} in {log}"
        time.sleep(0.2)


def test_every_flagged_household_by_reference_over_http_equals_its_flag_list_row(
    served: dict, api_keys: dict, county: Any, loaded: Any
) -> None:
    """One answer everywhere: the register behind the service and behind batch scoring; every household
    the round's flag list holds, asked for by reference through the real service, gets its row."""
    from monitoring.causes import SECONDARY_SEPARATOR
    from serving.batch import score_round
    from store.database import create_schema, make_engine
    from store.register import ingest_survey, read_register
    from survey.validate import conform

    engine = make_engine(served["environment"]["POVRISK_DB_URL"])
    create_schema(engine)
    ingest_survey(engine, county, "C1", source="test", by="test")
    flags = score_round(loaded.predictor, conform(read_register(engine, "C1")), 2, lang="en")
    engine.dispose()
    assert len(flags) > 50
    with httpx.Client(
        base_url=served["url"], headers={"X-API-Key": api_keys["monitor"]}, timeout=30.0
    ) as client:
        for flag in flags.itertuples(index=False):
            body = {
                "request": {"county_id": "C1", "household_id": flag.household_id, "round": 2, "lang": "en"}
            }
            response = client.post("/score", json=body)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["basis"] == "register"
            assert abs(answer["poverty_risk"] - flag.poverty_risk) <= 1e-9, flag.household_id
            assert abs(answer["relapse_risk"] - flag.relapse_risk) <= 1e-9, flag.household_id
            got = (
                answer["risk_tier"],
                answer["category"],
                answer["category_rule"],
                answer["main_cause"]["code"],
            )
            tier = None if pd.isna(flag.risk_tier) else flag.risk_tier  # no tier: insufficient data
            assert got == (tier, flag.category, flag.category_rule, flag.main_cause), flag.household_id
            secondary = SECONDARY_SEPARATOR.join(cause["code"] for cause in answer["secondary_causes"])
            assert secondary == flag.secondary_causes, flag.household_id
            assert "; ".join(reason["sentence"] for reason in answer["reasons"]) == flag.reasons, (
                flag.household_id
            )
            assert abs(answer["data_completeness"] - flag.data_completeness) <= 1e-9, flag.household_id
            missing = ", ".join(block["label"] for block in answer["missing_blocks"])
            assert missing == flag.missing_data, flag.household_id
