"""The scoring service against the same work in process, and against `mlflow models serve`.

Trains both models on a small county, registers and promotes them in a temporary MLflow store, then
measures (issue 5's speed section; JSON lines):
- `score_one_household_in_process`: the exact function behind /score (`serving.scoring.score_household`:
  canonical household -> features -> both models -> TreeSHAP reasons -> category -> causes -> measures),
  sequential;
- `score_batch_in_process`: the same for 200 households at a time (`score_households`), households/s;
- `score_one_household_http`: POST /score to a real `bentoml serve` over loopback, one at a time, with
  the ratio of its p50 to the in-process p50;
- `score_concurrent_http`: 32 clients POSTing /score for `--seconds`, and `score_batch_http`: 4 clients
  POSTing /score_batch of 50 households: households/s, share of the in-process batch throughput, errors,
  and the server's resident memory before and after;
- `mlflow_models_serve`: the packaged poverty model through MLflow's own server (`mlflow models serve`,
  probabilities only, no explanation), one feature row at a time, as a reference.

Run: .venv/bin/python benchmarks/bench_scoring.py [--requests N] [--seconds S]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
from _common import emit, latencies_ms, latency_figures

from features.frame import build_features
from features.policy import load_policy
from serving.keys import add_key
from serving.launch import free_port, running_service
from serving.schemas import household_from_survey
from serving.scoring import load_models, score_household, score_households
from survey.simulate import CountySettings, simulate_county
from survey.validate import conform
from training.tracking import load_champion, log_and_register, promote
from training.train import train_task

BATCH_IN_PROCESS = 200
BATCH_OVER_HTTP = 50
CONCURRENT_CLIENTS = 32
BATCH_CLIENTS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--households", type=int, default=3_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    arguments = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="povrisk-bench-"))
    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    os.environ |= {
        "MLFLOW_TRACKING_URI": tracking,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "POVRISK_MODEL_CACHE": str(workdir / "cache"),
    }
    policy = load_policy()
    county = conform(
        simulate_county(
            CountySettings(
                households=arguments.households, villages=12, rounds=4, seed=0, monte_carlo_draws=20
            )
        )
    )
    for task in ("poverty", "relapse"):
        log_and_register(train_task(county, task, policy, seed=0), policy)
        promote(task, policy)

    latest = int(county.households["round"].max())
    ids = county.households.loc[county.households["round"] == latest, "household_id"].head(BATCH_IN_PROCESS)
    households = [household_from_survey(county, str(h), latest) for h in ids]
    models = load_models(policy)
    trees = {
        ref.name: load_champion(task).booster.num_trees()
        for task, ref in zip(("poverty", "relapse"), models.model_refs, strict=True)
    }  # type: ignore[union-attr]
    cycle = iter(range(10**9))

    def in_process() -> None:
        score_household(models, households[next(cycle) % len(households)], lang="zh")

    single = latency_figures(latencies_ms(in_process, repeats=arguments.requests))
    emit("score_one_household_in_process", **single, trees=trees)
    batch_rate = _rate(lambda: score_households(models, households, lang="zh"), len(households), repeats=5)
    emit("score_batch_in_process", households_per_s=round(batch_rate, 1), batch=len(households))

    keys = workdir / "keys.yaml"
    key = add_key(keys, "bench", "monitor")
    environment = {
        "POVRISK_API_KEYS_FILE": str(keys),
        "POVRISK_DB_URL": f"sqlite:///{workdir / 'povrisk.db'}",
        "BENTOML_HOME": str(workdir / "bentoml"),
    }
    bodies = [
        {"request": {"household": h.model_dump(mode="json", exclude_none=True), "lang": "zh"}}
        for h in households
    ]
    headers = {"X-API-Key": key}
    with running_service(
        tracking_uri=tracking, log=workdir / "serve.log", environment=environment
    ) as base_url:
        server = _server_process(base_url)
        with httpx.Client(headers=headers) as client:

            def over_http() -> None:
                response = client.post(
                    f"{base_url}/score", json=bodies[next(cycle) % len(bodies)], timeout=30
                )
                response.raise_for_status()

            for _ in range(50):  # warm the dispatcher's latency model
                over_http()
            http = latency_figures(latencies_ms(over_http, repeats=arguments.requests))
        emit(
            "score_one_household_http",
            **http,
            p50_ratio_to_in_process=round(http["p50_ms"] / single["p50_ms"], 2),
        )
        for name, clients, body_of in (
            ("score_concurrent_http", CONCURRENT_CLIENTS, lambda i: ("/score", bodies[i % len(bodies)], 1)),
            (
                "score_batch_http",
                BATCH_CLIENTS,
                lambda i: (
                    "/score_batch",
                    {
                        "request": {
                            "households": [b["request"]["household"] for b in bodies[:BATCH_OVER_HTTP]]
                        }
                    },
                    BATCH_OVER_HTTP,
                ),
            ),
        ):
            figures = _load(base_url, headers, clients, body_of, arguments.seconds, server)
            figures["share_of_in_process_batch"] = round(figures["households_per_s"] / batch_rate, 2)
            emit(name, clients=clients, **figures)

    emit(
        "mlflow_models_serve", **_mlflow_serve(county, policy, latest, arguments.requests, workdir, tracking)
    )


def _rate(work: Callable[[], Any], rows: int, repeats: int) -> float:
    work()
    start = time.perf_counter()
    for _ in range(repeats):
        work()
    return rows * repeats / (time.perf_counter() - start)


def _server_process(base_url: str) -> psutil.Process:
    port = int(base_url.rsplit(":", 1)[1])
    for connection in psutil.net_connections(kind="tcp"):
        if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
            return psutil.Process(connection.pid)
    raise RuntimeError(f"no process listens on port {port}")


def _rss_mb(process: psutil.Process) -> float:
    tree = [process, *process.children(recursive=True)]
    return sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20


def _load(
    base_url: str,
    headers: dict[str, str],
    clients: int,
    body_of: Callable[[int], tuple[str, dict[str, Any], int]],
    seconds: float,
    server: psutil.Process,
) -> dict[str, Any]:
    """`clients` threads POSTing for `seconds`: households/s, requests, errors, server memory."""
    rss_before = _rss_mb(server)
    stop = time.perf_counter() + seconds
    counts = {"requests": 0, "households": 0, "errors": 0}
    lock = threading.Lock()

    def client_loop(offset: int) -> None:
        with httpx.Client(headers=headers, timeout=60) as client:
            number = offset
            while time.perf_counter() < stop:
                path, body, rows = body_of(number)
                number += clients
                ok = client.post(base_url + path, json=body).status_code == 200
                with lock:
                    counts["requests"] += 1
                    counts["households"] += rows if ok else 0
                    counts["errors"] += 0 if ok else 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    rss_after = _rss_mb(server)
    return {
        "seconds": round(elapsed, 1),
        "requests": counts["requests"],
        "errors": counts["errors"],
        "households_per_s": round(counts["households"] / elapsed, 1),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_after, 1),
        "rss_growth_pct": round(100 * (rss_after - rss_before) / rss_before, 1),
    }


def _mlflow_serve(
    county: Any, policy: Any, latest: int, requests: int, workdir: Path, tracking: str
) -> dict[str, Any]:
    """The packaged poverty champion served by `mlflow models serve`, one feature row per request."""
    households, members = county.households, county.members
    rows = households.loc[households["round"] == latest].head(50)
    features = build_features(rows, members.loc[members["round"] == latest], policy)
    model = load_champion("poverty")
    frame = features.reindex(columns=list(model.feature_names)).astype("float64")
    payloads = [{"dataframe_split": frame.iloc[[i]].to_dict(orient="split")} for i in range(len(frame))]
    for payload in payloads:
        payload["dataframe_split"].pop("index", None)
        payload["dataframe_split"]["data"] = [
            [None if v != v else v for v in row] for row in payload["dataframe_split"]["data"]
        ]
    port = free_port()
    log = (workdir / "mlflow-serve.log").open("wb")
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "models",
        "serve",
        "-m",
        "models:/povrisk-poverty@champion",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    bin_dir = str(Path(sys.executable).parent)  # MLflow execs `uvicorn` from PATH
    server = subprocess.Popen(
        command,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(240):
            if server.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited; see {log.name}")
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        cycle = iter(range(10**9))
        with httpx.Client() as client:

            def one() -> None:
                response = client.post(
                    f"{url}/invocations", json=payloads[next(cycle) % len(payloads)], timeout=30
                )
                response.raise_for_status()

            for _ in range(20):
                one()
            return latency_figures(latencies_ms(one, repeats=requests)) | {
                "work": "probability only, no reasons"
            }
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
