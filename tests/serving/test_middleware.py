"""The service's ASGI middleware on a stand-in app: API-key authentication and the body-size bound."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.keys import hash_key, parse_key_ring
from serving.middleware import STATE_KEY, ApiKeyAuth, BodyLimit


async def _echo(request: Request) -> JSONResponse:
    key = getattr(request.state, STATE_KEY, None)
    body = await request.body()
    return JSONResponse({"key": None if key is None else key.key_id, "bytes": len(body)})


def _client(app: Any) -> TestClient:
    return TestClient(app)


@pytest.fixture
def app() -> Any:
    inner = Starlette(
        routes=[Route(path, _echo, methods=["GET", "POST"]) for path in ("/score", "/model", "/livez")]
    )
    ring = parse_key_ring(
        {
            "keys": [
                {"id": "li", "role": "cadre", "villages": ["V1"], "sha256": hash_key("cadre-key")},
                {"id": "wang", "role": "analyst", "sha256": hash_key("analyst-key")},
            ]
        },
        "test",
    )
    return BodyLimit(ApiKeyAuth(inner, ring), max_bytes=1_000)


def test_no_key_or_a_wrong_key_gets_401_and_is_logged(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = _client(app)
    with caplog.at_level(logging.WARNING, logger="serving.middleware"):
        missing = client.post("/score", json={})
        wrong = client.post("/score", json={}, headers={"X-API-Key": "guess"})
    assert missing.status_code == 401 and "missing API key" in missing.json()["error"]
    assert wrong.status_code == 401 and "unknown API key" in wrong.json()["error"]
    assert "guess" not in caplog.text and "refused /score" in caplog.text


def test_a_known_key_reaches_the_endpoint_with_its_identity(app: Any) -> None:
    client = _client(app)
    assert client.post("/score", json={}, headers={"X-API-Key": "cadre-key"}).json()["key"] == "li"
    bearer = client.post("/score", json={}, headers={"Authorization": "Bearer analyst-key"})
    assert bearer.json()["key"] == "wang"


def test_a_role_that_may_not_call_an_endpoint_gets_403(app: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = _client(app)
    with caplog.at_level(logging.WARNING, logger="serving.middleware"):
        refused = client.get("/model", headers={"X-API-Key": "cadre-key"})
    assert refused.status_code == 403 and "analyst" in refused.json()["error"]
    assert "key li (role cadre)" in caplog.text
    assert client.get("/model", headers={"X-API-Key": "analyst-key"}).status_code == 200


def test_health_and_other_open_paths_need_no_key(app: Any) -> None:
    assert _client(app).get("/livez").status_code == 200


def test_oversized_bodies_get_413_before_any_handler(app: Any) -> None:
    client = _client(app)
    declared = client.post("/score", content=b"x" * 1_001, headers={"X-API-Key": "cadre-key"})
    assert declared.status_code == 413 and "exceeds the limit of 1,000" in declared.json()["error"]

    def chunks():  # no Content-Length: counted while reading
        for _ in range(5):
            yield b"y" * 300

    streamed = client.post("/score", content=chunks(), headers={"X-API-Key": "cadre-key"})
    assert streamed.status_code == 413
    fits = client.post("/score", content=b"z" * 1_000, headers={"X-API-Key": "cadre-key"})
    assert fits.status_code == 200 and fits.json()["bytes"] == 1_000
