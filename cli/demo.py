"""`povrisk demo`: simulate a county, train and promote both models, score the latest round, serve one
household over HTTP, and print the households to visit first."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from rich.console import Console
from rich.table import Table

SERVICE = "serving.service:PovertyRiskService"


def run_demo(out: Path, *, households: int, port: int, console: Console) -> None:
    from cli.output import write_frame
    from features.policy import load_policy
    from monitoring.store import create_schema, db_url, make_engine, upsert_flags
    from serving.batch import score_round
    from survey.io import write_survey
    from survey.simulate import CountySettings, simulate_county
    from survey.validate import conform
    from training.tracking import load_champion_predictor, log_and_register, promote, tracking_uri
    from training.train import train_task

    policy = load_policy()
    console.rule("1. simulate a county")
    county = conform(simulate_county(CountySettings(households=households, villages=max(households // 250, 10),
                                                    rounds=5, seed=0, monte_carlo_draws=100)))
    write_survey(county, out / "county")
    latest_round = int(county.households["round"].max())
    console.print(f"{households:,} households, 5 rounds -> {out / 'county'}")

    for task in ("poverty", "relapse"):
        console.rule(f"2. train and promote the {task} model")
        trained = train_task(county, task, policy, seed=0)
        registered = log_and_register(trained, policy)
        decision = promote(task, policy)
        console.print(f"{task}: version {registered.get('version')} "
                      f"roc_auc={trained.metrics['roc_auc']:.3f} pr_auc={trained.metrics['pr_auc']:.3f}; "
                      f"{decision.get('reason', '')}")

    console.rule(f"3. score round {latest_round}")
    flags = score_round(load_champion_predictor(), county, latest_round, lang="en")
    for suffix in (".csv", ".parquet"):
        write_frame(flags, out / f"flags-round-{latest_round}{suffix}")
    engine = make_engine(db_url())
    create_schema(engine)
    stored = upsert_flags(engine, flags)
    console.print(f"{len(flags):,} households flagged -> {out}/flags-round-{latest_round}.csv; flag store: {stored}")

    console.rule("4. serve one household over HTTP")
    household_id = str(flags.iloc[0]["household_id"]) if len(flags) else str(county.households.iloc[0]["household_id"])
    payload = {"request": {"household": household_payload(county, household_id, latest_round), "lang": "en"}}
    response = score_over_http(payload, port=port or free_port(), tracking=tracking_uri(),
                               log=out / "service.log", console=console)
    console.print_json(json.dumps(response, ensure_ascii=False))

    console.rule("5. households to visit first")
    console.print(top_flags_table(flags, limit=10))
    console.rule("where to look")
    console.print(f"flag lists: {out}/flags-round-{latest_round}.csv (and .parquet)\n"
                  f"MLflow runs, plots and registered models: `make mlflow-ui`, then http://127.0.0.1:5000\n"
                  f"the service: `.venv/bin/povrisk serve`, then POST http://127.0.0.1:3000/score (README)\n"
                  f"flags: `.venv/bin/povrisk flags list --status flagged`")


def household_payload(county: Any, household_id: str, round_: int) -> dict[str, Any]:
    """One household of a survey as the JSON body the service takes (members nested, no NaN)."""
    households: pd.DataFrame = county.households
    row = households[(households["household_id"] == household_id) & (households["round"] == round_)].iloc[0]
    household = {key: _plain(value) for key, value in row.items() if not pd.isna(value)}
    members = county.members[(county.members["household_id"] == household_id) & (county.members["round"] == round_)]
    household["members"] = [
        {key: _plain(value) for key, value in member.items() if key not in ("household_id", "round") and not pd.isna(value)}
        for _, member in members.iterrows()
    ]
    return household


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def score_over_http(
    payload: dict[str, Any], *, port: int, tracking: str, log: Path, console: Console
) -> dict[str, Any]:
    """Start `bentoml serve` on loopback, wait until ready, POST /score, and always stop the server."""
    environment = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)],
            env=environment, stdout=log_file, stderr=subprocess.STDOUT, text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, server, log, timeout_s=120)
        console.print(f"service ready at {base}; POST /score for household {payload['request']['household']['household_id']}")
        response = httpx.post(f"{base}/score", json=payload, timeout=30)
        response.raise_for_status()
        return dict(response.json())
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def wait_until_ready(base: str, server: subprocess.Popen[str], log: Path, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = "\n".join(log.read_text().splitlines()[-20:])
            raise RuntimeError(f"the service exited with code {server.returncode}; last lines of {log}:\n{tail}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the service at {base} was not ready after {timeout_s:.0f} s")


def top_flags_table(flags: pd.DataFrame, *, limit: int) -> Table:
    table = Table("village", "household", "category", "poverty risk", "relapse risk", "reasons")
    ranked = flags.assign(top_risk=flags[["poverty_risk", "relapse_risk"]].max(axis=1)).nlargest(limit, "top_risk")
    for _, flag in ranked.iterrows():
        table.add_row(str(flag["village_id"]), str(flag["household_id"]), str(flag["category"]),
                      f"{flag['poverty_risk']:.2f}", f"{flag['relapse_risk']:.2f}", str(flag["reasons"]))
    return table
