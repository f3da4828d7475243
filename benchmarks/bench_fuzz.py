"""Contract fuzzing of the real service (issue 5): schemathesis generates requests from the service's own
OpenAPI document against a `bentoml serve` of two champions trained on a small county, with an analyst
key (every operation, /model and /admin/reload included). JSON line: requests generated, failures (any
5xx or an answer the document does not allow). `make fuzz` runs this alone.

Run: .venv/bin/python benchmarks/bench_fuzz.py [--examples N] [--seed S]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import county_with_champions, emit, service_environment

from serving.fuzz import run_schemathesis
from serving.launch import running_service


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=100, help="generated examples per operation")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="povrisk-fuzz-"))
    tracking, _, _ = county_with_champions(workdir, households=1_000)
    key, environment = service_environment(workdir, "fuzz", "analyst")
    with running_service(tracking_uri=tracking, log=workdir / "serve.log", environment=environment) as url:
        started = time.perf_counter()
        result = run_schemathesis(url, key, examples=arguments.examples, seed=arguments.seed)
        elapsed = time.perf_counter() - started
    emit(
        "schemathesis_service",
        generated=result["generated"],
        failures=result["failures"],
        exit_code=result["exit_code"],
        examples_per_operation=arguments.examples,
        seconds=round(elapsed, 1),
    )
    if result["failures"] != 0 or result["generated"] < 1_000:
        print(result["output"])
        raise SystemExit(1)


if __name__ == "__main__":
    main()
