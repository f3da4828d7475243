"""What a probe of the running service found, each checked against a real `bentoml serve`: the audit
trail through a PostgreSQL outage, personal data in the log at every level, a worker orphaned by kill -9
of its server, refusals that happen once, and credentials in URIs."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, make_url, select

from serving.launch import (
    ServiceFailedToStart,
    free_port,
    running_service,
    start_service,
    stop_server,
    wait_until_ready,
)
from store.cases import ScoreAudit
from tests.store.postgres import isolated_postgres_url

from .conftest import service_variables
from .tcp_proxy import CuttableProxy

pytestmark = pytest.mark.integration

SECRETS = {"name": "李秀英", "id_card_number": "530102198203154321", "phone": "13912345678"}


def _environment(registry: str, api_keys: dict[str, Any], folder: Path, **extra: str) -> dict[str, str]:
    return {**service_variables(registry, api_keys, folder), "BENTOML_HOME": str(folder / "home"), **extra}


def _score(url: str, household: dict[str, Any], key: str, timeout: float = 15.0) -> httpx.Response:
    return httpx.post(
        f"{url}/score",
        json={"request": {"household": household}},
        headers={"X-API-Key": key},
        timeout=timeout,
    )


def _audit_rows(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(ScoreAudit)).scalar_one())
    finally:
        engine.dispose()


def _until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f} s: {check}")


@pytest.fixture
def postgres_behind_a_proxy() -> Iterator[tuple[str, str, CuttableProxy]]:
    """(direct URL, URL through a proxy the test can cut, the proxy) of a fresh PostgreSQL schema."""
    with isolated_postgres_url() as direct:
        parsed = make_url(direct)
        proxy = CuttableProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
        try:
            proxied = parsed.set(port=proxy.port).render_as_string(hide_password=False)
            yield direct, proxied, proxy
        finally:
            proxy.close()


def test_the_audit_trail_survives_a_database_outage(
    registry: str,
    api_keys: dict,
    household_body: dict,
    tmp_path: Path,
    postgres_behind_a_proxy: tuple[str, str, CuttableProxy],
) -> None:
    """The probe: a refused audit batch was retried forever, the queue grew without bound, the worker
    blocked (no /livez) and SIGTERM could not stop it. Now: while the database is away, requests are
    answered until the bounded queue is full, then get 503; health stays answerable and says why; when
    the database is back every answered score is written; SIGTERM reports what it could not write."""
    direct, proxied, proxy = postgres_behind_a_proxy
    environment = _environment(registry, api_keys, tmp_path, POVRISK_DB_URL=proxied, POVRISK_AUDIT_QUEUE="20")
    log = tmp_path / "serve.log"
    key = api_keys["monitor"]
    with running_service(tracking_uri=registry, log=log, environment=environment) as url:
        nul = _score(url, {**household_body, "household_id": "H\u0000X"}, key)
        assert nul.status_code == 400 and "household_id" in nul.text
        assert _score(url, household_body, key).status_code == 200
        _until(lambda: _audit_rows(direct) == 1)

        proxy.cut()
        answered = 0
        for number in range(40):
            response = _score(url, {**household_body, "household_id": f"H-out-{number}"}, key)
            if response.status_code == 503:
                assert response.headers["retry-after"] and "nothing was scored" in response.text
                break
            assert response.status_code == 200, response.text
            answered += 1
        else:
            raise AssertionError("no 503 while the audit database was away")
        assert answered <= 20
        assert httpx.get(f"{url}/livez", timeout=5).status_code == 200
        ready = _until(
            lambda: (
                (r := httpx.get(f"{url}/readyz", timeout=5)).json()["audit"]["database"] == "unreachable"
                and r
            )
        )
        assert ready.status_code == 503 and ready.json()["audit"]["accepting"] is False

        proxy.restore()
        _until(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200, timeout=60)
        _until(lambda: _audit_rows(direct) == 1 + answered, timeout=60)
        assert _score(url, household_body, key).status_code == 200
        _until(lambda: _audit_rows(direct) == 2 + answered)

        proxy.cut()
        assert _score(url, {**household_body, "household_id": "H-last"}, key).status_code == 200
    text = log.read_text(errors="replace")
    assert "stopping with 1 record(s) unwritten" in text and "households hh-" in text
    assert "H-out-" not in text and "H-last" not in text and "H-test" not in text
    assert text.count("the database does not answer") <= 3  # said when it happens, not every second


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR"])
def test_no_personal_data_reaches_the_log_at_any_level(
    registry: str, api_keys: dict, household_body: dict, tmp_path: Path, level: str
) -> None:
    household = copy.deepcopy(household_body) | {"household_id": "H-private", "head_name": SECRETS["name"]}
    household["members"][0] |= {"id_card_number": SECRETS["id_card_number"]}
    invalid = household | {"phone": SECRETS["phone"], "round": -1}
    environment = _environment(registry, api_keys, tmp_path, POVRISK_LOG_LEVEL=level)
    log = tmp_path / "serve.log"
    key = api_keys["cadre"]
    with running_service(tracking_uri=registry, log=log, environment=environment) as url:
        assert _score(url, invalid, key).status_code == 400
        assert _score(url, household, key).status_code == 200
        batch = httpx.post(
            f"{url}/score_batch",
            json={"request": {"households": [household, invalid]}},
            headers={"X-API-Key": key},
            timeout=15,
        )
        assert batch.status_code == 200
        not_json = httpx.post(
            f"{url}/score",
            content=f'{{"request": {{"household": {{"head_name": "{SECRETS["name"]}"'.encode(),
            headers={"X-API-Key": key, "content-type": "application/json"},
            timeout=15,
        )
        assert not_json.status_code == 400
    text = log.read_text(errors="replace")
    for secret in [*SECRETS.values(), "H-private"]:
        assert secret not in text, (secret, text[-3000:])
    assert "input_value" not in text and "Traceback" not in text
    if level in ("DEBUG", "INFO", "WARNING"):
        assert "400 /score by key cadre-li household hh-" in text and "phone extra_forbidden" in text


def test_a_worker_stops_when_its_server_is_killed(registry: str, api_keys: dict, tmp_path: Path) -> None:
    """kill -9 of `bentoml serve` left its worker serving as an orphan; a restart then failed with
    "Address already in use"."""
    port = free_port()
    environment = _environment(registry, api_keys, tmp_path)
    server, url = start_service(
        tracking_uri=registry, log=tmp_path / "first.log", port=port, environment=environment
    )
    try:
        wait_until_ready(server, f"{url}/readyz", tmp_path / "first.log", 120)
        workers = _children(server.pid)
        assert workers
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        _until(lambda: not any(_alive(pid) for pid in workers), timeout=30)
    finally:
        stop_server(server)
        for pid in _children(server.pid):
            os.kill(pid, signal.SIGKILL)
    log = tmp_path / "second.log"
    with running_service(tracking_uri=registry, log=log, port=port, environment=environment) as again:
        assert httpx.get(f"{again}/livez", timeout=5).status_code == 200
    assert "is gone; stopping this worker" in (tmp_path / "first.log").read_text(errors="replace")


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in found.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_plain_bentoml_serve_without_a_champion_refuses_once(api_keys: dict, tmp_path: Path) -> None:
    """It used to restart the refusing worker forever."""
    empty_registry = f"sqlite:///{tmp_path / 'empty.db'}"
    log = tmp_path / "refused.log"
    environment = _environment("unused", api_keys, tmp_path)
    server, url = start_service(tracking_uri=empty_registry, log=log, environment=environment)
    try:
        with pytest.raises(ServiceFailedToStart, match="exited with 1"):
            wait_until_ready(server, f"{url}/readyz", log, 120)
    finally:
        stop_server(server)
    text = log.read_text(errors="replace")
    assert text.count("povrisk cannot serve: no usable champion") == 1
    assert "Application startup failed" not in text


def _povrisk(
    *arguments: str, environment: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "povrisk"), *arguments],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_povrisk_serve_refuses_an_unreachable_flag_store_once(
    registry: str, api_keys: dict, tmp_path: Path
) -> None:
    environment = _environment(
        registry,
        api_keys,
        tmp_path,
        MLFLOW_TRACKING_URI=registry,
        POVRISK_DB_URL=f"postgresql+psycopg://povrisk:db-s3cret@127.0.0.1:{free_port()}/nowhere",
    )
    result = _povrisk("serve", "--port", str(free_port()), environment=environment)
    assert result.returncode == 1
    assert "does not answer" in result.stderr and "db-s3cret" not in result.stderr + result.stdout
    assert result.stderr.count("\n") <= 2, result.stderr  # one line, no traceback


def test_a_password_in_the_tracking_uri_is_never_shown(api_keys: dict, tmp_path: Path) -> None:
    environment = _environment(
        "unused", api_keys, tmp_path, MLFLOW_TRACKING_URI=f"http://svc:tr4ck-s3cret@127.0.0.1:{free_port()}"
    )
    environment["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    environment["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "3"
    result = _povrisk("serve", environment=environment)
    assert result.returncode == 1 and "cannot serve" in result.stderr
    assert "tr4ck-s3cret" not in result.stderr + result.stdout and "svc:***@" in result.stderr
