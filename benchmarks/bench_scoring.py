"""The scoring service against the same work in process, and against `mlflow models serve`.

Trains both models on a small county, registers and promotes them in a temporary MLflow store, then
measures (issue 5's speed section; JSON lines):
- `score_one_household_in_process`: the exact function behind /score (`serving.scoring.score_household`:
  canonical household -> features -> both models -> TreeSHAP reasons -> category -> causes -> measures),
  sequential;
- `score_batch_in_process`: the same for 200 households at a time (`score_households`), households/s;
- `score_one_household_http`: POST /score to a real `bentoml serve` over loopback (`--workers` worker
  processes, default one per core), one at a time, each request right after the same household scored in
  process, with the ratio of the two p50s measured in that same window;
- `score_concurrent_http`: 32 clients POSTing /score for `--seconds`, and `score_batch_http`: 4 clients
  POSTing /score_batch of 200 households (the in-process batch), each after a 30 s warm-up under the
  same load: households/s, share of the in-process batch throughput (one process, one thread), errors,
  and the server's resident memory at the start, after the warm-up and at the end (growth: over the
  measured window); `score_batch_http` again with one worker, for comparison;
- `bentoml_floor_http`: requests/s of an echo endpoint (`floor_service.py`, as many workers) under the
  same 32 clients, the ceiling of BentoML's HTTP stack on this machine for one household per request,
  and its latency for one client: what any BentoML endpoint adds to the work it does;
- `mlflow_models_serve`: the packaged poverty model through MLflow's own server (`mlflow models serve`,
  probabilities only, no explanation), one feature row at a time, as a reference.

Run: .venv/bin/python benchmarks/bench_scoring.py [--requests N] [--seconds S] [--workers W]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from _common import county_with_champions, emit, latencies_ms, latency_figures, service_environment

from features.frame import build_features
from models.predictor import TaskModel
from serving.launch import free_port, running_service, stop_server, wait_until_ready
from serving.runtime import WORKERS_VARIABLE
from serving.schemas import household_from_survey
from serving.scoring import load_models, score_household, score_households

BATCH_IN_PROCESS = 200
BATCH_OVER_HTTP = BATCH_IN_PROCESS  # the same batch size as the in-process reference
CONCURRENT_CLIENTS = 32
BATCH_CLIENTS = 4
WARM_UP_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--households", type=int, default=3_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes of the service (default: cores)",
    )
    arguments = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="povrisk-bench-"))
    tracking, county, policy = county_with_champions(workdir, arguments.households)

    latest = int(county.households["round"].max())
    ids = county.households.loc[county.households["round"] == latest, "household_id"].head(BATCH_IN_PROCESS)
    households = [household_from_survey(county, str(h), latest) for h in ids]
    models = load_models(policy)
    task_models = {"poverty": models.predictor.poverty, "relapse": models.predictor.relapse}
    trees = {
        ref.name: model._ready_booster().num_trees()  # type: ignore[union-attr]
        for model, ref in zip(task_models.values(), models.model_refs, strict=True)
    }
    cycle = iter(range(10**9))

    def in_process() -> None:
        score_household(models, households[next(cycle) % len(households)], lang="zh")

    single = latency_figures(latencies_ms(in_process, repeats=arguments.requests))
    emit("score_one_household_in_process", **single, trees=trees)
    batch_rate = _rate(lambda: score_households(models, households, lang="zh"), len(households), repeats=5)
    emit("score_batch_in_process", households_per_s=round(batch_rate, 1), batch=len(households))

    key, environment = service_environment(workdir, "bench", "monitor")
    bodies = [
        {"request": {"household": h.model_dump(mode="json", exclude_none=True), "lang": "zh"}}
        for h in households
    ]
    single_bodies = [_json(body) for body in bodies]
    batch_body = _json(
        {"request": {"households": [b["request"]["household"] for b in bodies[:BATCH_OVER_HTTP]]}}
    )
    loads = (
        ("score_concurrent_http", CONCURRENT_CLIENTS, "/score", single_bodies, 1),
        ("score_batch_http", BATCH_CLIENTS, "/score_batch", [batch_body], BATCH_OVER_HTTP),
    )
    for workers in dict.fromkeys((arguments.workers, 1)):  # the chosen count, then one worker to compare
        with running_service(
            tracking_uri=tracking,
            log=workdir / f"serve-{workers}.log",
            environment={**environment, WORKERS_VARIABLE: str(workers)},
        ) as base_url:
            server = _server_process(base_url)
            port = int(base_url.rsplit(":", 1)[1])
            if workers == arguments.workers:
                with _Client(port, key) as client:
                    samples = _interleaved(
                        in_process=lambda position: score_household(models, households[position], lang="zh"),
                        over_http=lambda position: client.post("/score", single_bodies[position]),
                        rows=len(households),
                        repeats=arguments.requests,
                    )
                http = latency_figures(samples["over_http"])
                same_window = latency_figures(samples["in_process"])
                emit(
                    "score_one_household_http",
                    **http,
                    workers=workers,
                    in_process_p50_ms_same_window=round(same_window["p50_ms"], 3),
                    in_process_p99_ms_same_window=round(same_window["p99_ms"], 3),
                    p50_ratio_to_in_process=round(http["p50_ms"] / same_window["p50_ms"], 2),
                )
            for name, clients, path, request_bodies, rows in (
                loads if workers == arguments.workers else loads[1:]
            ):
                # a warm-up under the same load first: the server's pools, caches and BentoML's bounded
                # trace buffer (2,048 spans) fill up there, so that the measured growth is what stays
                warm_up = _load(port, key, clients, path, request_bodies, rows, WARM_UP_SECONDS, server)
                figures = _load(port, key, clients, path, request_bodies, rows, arguments.seconds, server)
                figures["share_of_in_process_batch"] = round(figures["households_per_s"] / batch_rate, 2)
                figures["rss_at_start_mb"] = warm_up["rss_before_mb"]
                figures["warm_up_errors"] = warm_up["errors"]
                emit(name, workers=workers, clients=clients, warm_up_s=WARM_UP_SECONDS, **figures)

    emit("bentoml_floor_http", **_bentoml_floor(workdir, arguments.seconds / 3, arguments.workers))
    emit(
        "mlflow_models_serve",
        **_mlflow_serve(
            county, task_models["poverty"], policy, latest, arguments.requests, workdir, tracking
        ),
    )


def _interleaved(
    *, in_process: Callable[[int], Any], over_http: Callable[[int], Any], rows: int, repeats: int
) -> dict[str, np.ndarray]:
    """Latencies (ms) of the same household scored in process and over HTTP, one after the other, so that
    both see the same state of a shared machine (its speed drifts by tens of percent within minutes)."""
    for position in range(50):  # warm-up: the server's caches, the client's connection
        in_process(position % rows)
        over_http(position % rows)
    samples = {"in_process": np.empty(repeats), "over_http": np.empty(repeats)}
    for number in range(repeats):
        for name, work in (("in_process", in_process), ("over_http", over_http)):
            start = time.perf_counter()
            work(number % rows)
            samples[name][number] = (time.perf_counter() - start) * 1000
    return samples


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
    port: int,
    key: str,
    clients: int,
    path: str,
    bodies: list[bytes],
    rows: int,
    seconds: float,
    server: psutil.Process,
) -> dict[str, Any]:
    """`clients` threads POSTing `bodies` in turn for `seconds`: households/s, requests, errors, and the
    server's resident memory before and after."""
    rss_before = _rss_mb(server)
    stop = time.perf_counter() + seconds
    counts = {"requests": 0, "households": 0, "errors": 0}
    lock = threading.Lock()

    def client_loop(offset: int) -> None:
        with _Client(port, key) as client:
            number = offset
            while time.perf_counter() < stop:
                ok = client.post(path, bodies[number % len(bodies)], check=False) == 200
                number += clients
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


class _Client:
    """A keep-alive HTTP/1.1 connection with the API key set: `http.client`, whose own cost per request
    is a fraction of httpx's, so that the figures are the server's and not the client's (both share
    the machine's two cores)."""

    def __init__(self, port: int, key: str | None = None) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self._headers = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {})}

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *_: object) -> None:
        self._connection.close()

    def post(self, path: str, body: bytes, *, check: bool = True) -> int:
        self._connection.request("POST", path, body=body, headers=self._headers)
        response = self._connection.getresponse()
        response.read()
        if check and response.status != 200:
            raise RuntimeError(f"POST {path} answered {response.status}")
        return response.status


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def _bentoml_floor(workdir: Path, seconds: float, workers: int) -> dict[str, Any]:
    """Requests/s of `floor_service.py` (an echo endpoint, as many workers as the service) under the same
    32 clients: the ceiling of any endpoint that takes one household per request, whatever its work."""
    with running_service(
        tracking_uri="",
        log=workdir / "floor.log",
        bentoml_home=workdir / "bentoml-floor",
        service="floor_service:Floor",
        working_dir=Path(__file__).parent,
        environment={WORKERS_VARIABLE: str(workers)},
    ) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        body = _json({"value": 1})
        with _Client(port) as client:
            for _ in range(200):
                client.post("/echo", body)
            one_client = latency_figures(latencies_ms(lambda: client.post("/echo", body), repeats=500))
        figures = _load(port, "", CONCURRENT_CLIENTS, "/echo", [body], 1, seconds, _server_process(base_url))
    return {
        "clients": CONCURRENT_CLIENTS,
        "workers": workers,
        "requests_per_s": figures["households_per_s"],
        "errors": figures["errors"],
        "one_client_p50_ms": one_client["p50_ms"],
        "one_client_p99_ms": one_client["p99_ms"],
        "work": "echo a small JSON body",
    }


def _mlflow_serve(
    county: Any, model: TaskModel, policy: Any, latest: int, requests: int, workdir: Path, tracking: str
) -> dict[str, Any]:
    """The packaged poverty champion (`model`, as loaded) served by `mlflow models serve`, one feature
    row per request."""
    households, members = county.households, county.members
    rows = households.loc[households["round"] == latest].head(50)
    frame = model.feature_matrix(build_features(rows, members.loc[members["round"] == latest], policy))
    payloads = [{"dataframe_split": frame.iloc[[i]].to_dict(orient="split")} for i in range(len(frame))]
    for payload in payloads:
        payload["dataframe_split"].pop("index", None)
        payload["dataframe_split"]["data"] = [
            [None if v != v else v for v in row] for row in payload["dataframe_split"]["data"]
        ]
    port = free_port()
    log = workdir / "mlflow-serve.log"
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
    with log.open("wb") as output:
        server = subprocess.Popen(
            command,
            env={**os.environ, "MLFLOW_TRACKING_URI": tracking, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_ready(server, f"http://127.0.0.1:{port}/ping", log, timeout_s=120)
        bodies = [_json(payload) for payload in payloads]
        cycle = iter(range(10**9))
        with _Client(port) as client:

            def one() -> None:
                client.post("/invocations", bodies[next(cycle) % len(bodies)])

            for _ in range(20):
                one()
            return latency_figures(latencies_ms(one, repeats=requests)) | {
                "work": "probability only, no reasons"
            }
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
