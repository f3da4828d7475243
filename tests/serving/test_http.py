"""The scoring service, tier 3: a real `bentoml serve` subprocess on a free loopback port.

It loads the champions from the temporary registry of conftest.py (MLFLOW_TRACKING_URI) and keeps its
BentoML home in a temporary folder. The server is always stopped, even when a check fails.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 120.0
LATENCY_REQUESTS = 40


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_ready(server: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"bentoml serve exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"service not ready after {START_TIMEOUT_S:.0f} s:\n{log.read_text()[-4000:]}")


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)  # the server's own process group: it and its workers only
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def base_url(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("bentoml-home")
    log = home / "serve.log"
    port = _free_port()
    environment = {**os.environ, "MLFLOW_TRACKING_URI": registry, "BENTOML_HOME": str(home)}
    bentoml = Path(sys.executable).with_name("bentoml")
    command = [
        str(bentoml),
        "serve",
        "serving.service:PovertyRiskService",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("wb") as output:
        server = subprocess.Popen(
            command,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=home,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(server, url, log)
        yield url
    finally:
        _stop(server)


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


def test_sequential_latency(base_url: str, household_body: dict[str, Any]) -> None:
    body = {"request": {"household": household_body, "lang": "zh"}}
    with httpx.Client(timeout=30.0) as client:
        client.post(f"{base_url}/score", json=body)  # warm-up
        latencies_ms = []
        for _ in range(LATENCY_REQUESTS):
            started = time.perf_counter()
            assert client.post(f"{base_url}/score", json=body).status_code == 200
            latencies_ms.append((time.perf_counter() - started) * 1000)
    p50 = statistics.median(latencies_ms)
    print(f'{{"benchmark": "score_http_sequential", "requests": {LATENCY_REQUESTS}, "p50_ms": {p50:.1f}}}')
    assert p50 < 1000, latencies_ms
