"""The workbench's pages on a full county (issue 13's budgets: a 250-household village's worklist p95
<= 150 ms, a household page with its scores from the register p95 <= 250 ms, the county dashboard
<= 1 s, an XLSX export of 50,000 cases <= 10 s).

A county of 155,000 households (631 villages, 3 rounds) is ingested into a SQLite register; round 2 is
scored with models trained on a small county and its flags written to the flag store; a cadre account
covers the village whose household count is nearest 250. Pages are asked in process through the ASGI
app (Starlette's test client: no network), each request reading the session, the register and the flag
store from the database, as in the service:
- `workbench_worklist`: the cadre's worklist, 100 requests;
- `workbench_dashboard`: the county dashboard of a monitor (every case of the county), 20 requests;
- `workbench_export_xlsx`: the monitor's XLSX export of every open case of the county, 3 times;
- `workbench_household_page`: the household page of 100 households of her village (every round scored
  from the register, the case and its steps, the access log), each asked once after 5 warm-up pages.

Run: .venv/bin/python benchmarks/bench_workbench.py [--households N]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import emit, peak_rss_mb, seconds


def loaded_models(policy: Any) -> Any:
    """Both tasks trained on a small county, held as the service holds them."""
    from models.predictor import RiskPredictor
    from monitoring.causes import load_cause_settings
    from serving.schemas import ModelRef
    from serving.scoring import LoadedModels, model_card
    from survey.simulate import CountySettings, simulate_county
    from survey.validate import conform
    from training.train import train_task

    small = conform(simulate_county(CountySettings(households=5_000, villages=20, rounds=4, seed=1)))
    models = {
        task: train_task(small, task, policy, seed=0).model.registered_as(f"povrisk-{task}", "1")
        for task in ("poverty", "relapse")
    }
    return LoadedModels(
        predictor=RiskPredictor(policy, poverty=models["poverty"], relapse=models["relapse"]),
        model_refs=tuple(ModelRef(name=f"povrisk-{task}", version="1") for task in models),
        card=model_card(
            models, {task: ["champion"] for task in models}, policy, "registry", "sqlite:///bench"
        ),
        causes=load_cause_settings(),
    )


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.array(samples)
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "p99_ms": float(np.percentile(values, 99)),
        "requests": len(values),
    }


def timed_get(client: Any, path: str) -> float:
    start = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{path}: {response.status_code}")
    return elapsed


PASSWORD = "a long enough password"


def log_in(client: Any, user: str) -> None:
    form = client.get("/app/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    client.post("/app/login", data={"username": user, "password": PASSWORD, "csrf_token": token})


def county_in_store(folder: Path, households: int, villages: int, models: Any) -> tuple[Any, Any, Any, float]:
    """A simulated county (3 rounds) ingested into a SQLite register in `folder`, its round 2 scored with
    `models` and the flags written to the flag store: the engine, the county, the flags and the ingest's
    seconds."""
    from serving.batch import score_round
    from store.cases import upsert_flags
    from store.database import create_schema, make_engine
    from store.register import ingest_survey, read_register
    from survey.simulate import CountySettings, simulate_county
    from survey.validate import conform

    settings = CountySettings(
        households=households, villages=villages, rounds=3, seed=0, monte_carlo_draws=10
    )
    county = conform(simulate_county(settings))
    engine = make_engine(f"sqlite:///{folder / 'povrisk.db'}")
    create_schema(engine)
    ingest_s, _ = seconds(lambda: ingest_survey(engine, county, "bench", source="bench", by="bench"))
    flags = score_round(models.predictor, conform(read_register(engine, "bench")), 2, lang="zh")
    upsert_flags(engine, flags.assign(county_id="bench"))
    return engine, county, flags, ingest_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=155_000)
    parser.add_argument("--villages", type=int, default=631)
    arguments = parser.parse_args()

    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from features.policy import load_policy
    from store.accounts import add_user
    from workbench.app import WorkbenchSettings, build_workbench

    models = loaded_models(load_policy())
    with tempfile.TemporaryDirectory(prefix="povrisk-bench-") as folder:
        engine, county, flags, ingest_s = county_in_store(
            Path(folder), arguments.households, arguments.villages, models
        )
        latest = county.households[county.households["round"] == 2]
        sizes = latest["village_id"].value_counts()
        village = str((sizes - 250).abs().idxmin())
        add_user(engine, "bench.cadre", "cadre", PASSWORD, county_id="bench", villages=[village])
        add_user(engine, "bench.monitor", "monitor", PASSWORD, county_id="bench")
        app = Starlette(
            routes=[Mount("/app", app=build_workbench(WorkbenchSettings(engine, lambda: models)))]
        )
        with TestClient(app, follow_redirects=False) as client:
            log_in(client, "bench.monitor")
            timed_get(client, "/app/dashboard")
            dashboard = [timed_get(client, "/app/dashboard") for _ in range(20)]
            export_ms = [timed_get(client, "/app/exports/cases.xlsx") for _ in range(3)]
            client.cookies.clear()
            log_in(client, "bench.cadre")
            for _ in range(5):
                timed_get(client, "/app/")
            worklist = [timed_get(client, "/app/") for _ in range(100)]
            households = latest.loc[latest["village_id"] == village, "household_id"].astype(str).tolist()
            for household in households[:5]:
                timed_get(client, f"/app/households/bench/{household}")
            pages = [
                timed_get(client, f"/app/households/bench/{household}") for household in households[5:105]
            ]
        village_flags = int((flags["village_id"] == village).sum())
        emit(
            "workbench_worklist",
            county_households=arguments.households,
            village_households=int(sizes[village]),
            open_cases=village_flags,
            register_ingest_seconds=ingest_s,
            **percentiles(worklist),
            peak_rss_mb=peak_rss_mb(),
        )
        emit(
            "workbench_dashboard",
            county_households=arguments.households,
            cases=len(flags),
            **percentiles(dashboard),
            peak_rss_mb=peak_rss_mb(),
        )
        emit(
            "workbench_export_xlsx",
            county_households=arguments.households,
            cases=len(flags),
            seconds=[round(ms / 1000, 3) for ms in export_ms],
            peak_rss_mb=peak_rss_mb(),
        )
        emit(
            "workbench_household_page",
            county_households=arguments.households,
            rounds=3,
            **percentiles(pages),
            peak_rss_mb=peak_rss_mb(),
        )


if __name__ == "__main__":
    main()
