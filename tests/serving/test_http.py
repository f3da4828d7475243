"""The scoring service, tier 3: a real `bentoml serve` subprocess on a free loopback port.

It loads the champions from the temporary registry of conftest.py (MLFLOW_TRACKING_URI) and keeps its
BentoML home in a temporary folder. The server is always stopped, even when a check fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from serving.launch import running_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def base_url(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("bentoml-home")
    with running_service(tracking_uri=registry, log=home / "serve.log", bentoml_home=home) as url:
        yield url


def _post_score(base_url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{base_url}/score", json=body, timeout=30.0)


def test_health_endpoints(base_url: str) -> None:
    for path in ("/livez", "/healthz", "/readyz"):
        assert httpx.get(base_url + path, timeout=5.0).status_code == 200, path
    metrics = httpx.get(f"{base_url}/metrics", timeout=5.0)
    assert metrics.status_code == 200
    assert "bentoml" in metrics.text
    assert httpx.get(f"{base_url}/docs.json", timeout=5.0).status_code == 200


def test_score_over_http(base_url: str, household_body: dict[str, Any]) -> None:
    response = _post_score(base_url, {"request": {"household": household_body, "lang": "en"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["household_id"] == household_body["household_id"]
    assert 0.0 <= body["poverty_risk"] <= 1.0
    assert body["risk_tier"] in {"high", "medium", "low"}
    assert body["reasons"] and all(reason["sentence"] for reason in body["reasons"])
    assert [model["name"] for model in body["models"]] == ["povrisk-poverty", "povrisk-relapse"]


def test_malformed_household_gets_400_naming_every_bad_field(
    base_url: str, household_body: dict[str, Any]
) -> None:
    bad = {
        **{key: value for key, value in household_body.items() if key != "household_id"},
        "favourite_colour": "red",
        "members": [{"member_id": "1", "age": -4, "sex": "unknown"}],
    }
    response = _post_score(base_url, {"request": {"household": bad}})
    assert response.status_code == 400, response.text
    for field in ("household_id", "favourite_colour", "age", "sex"):
        assert field in response.text, field


def test_unscorable_household_gets_400_not_500(base_url: str, household_body: dict[str, Any]) -> None:
    response = _post_score(base_url, {"request": {"household": {**household_body, "survey_year": 1995}}})
    assert response.status_code == 400, response.text
    assert "1995" in response.text


def test_a_body_that_is_not_json_gets_a_4xx(base_url: str) -> None:
    response = httpx.post(
        f"{base_url}/score", content=b"{not json", headers={"content-type": "application/json"}, timeout=30.0
    )
    assert 400 <= response.status_code < 500, response.text
