"""`povrisk demo`: simulate a county, train and promote both models, score the latest round, serve one
household over HTTP, and print the households to visit first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from rich.console import Console

from serving.keys import KEYS_FILE_VARIABLE, add_key
from serving.launch import running_service

DEMO_COUNTY = "示范县"
"""The demo county's id in the household register."""


def run_demo(out: Path, *, households: int, console: Console, policy_file: Path | None = None) -> None:
    """The demo under the policy in `policy_file` (default: POVRISK_POLICY, else the shipped one), the
    service it starts included."""
    from cli.output import write_frame
    from features.policy import POLICY_VARIABLE, load_policy, policy_path
    from serving.batch import score_round
    from store.cases import upsert_flags
    from store.database import create_schema, db_url, make_engine
    from store.register import ingest_survey, read_register
    from survey.io import write_survey
    from survey.simulate import CountySettings, simulate_county
    from survey.validate import conform
    from training.tracking import load_champion_predictor, log_and_register, promote, tracking_uri
    from training.train import train_task

    policy_file = policy_path(policy_file).resolve()
    policy = load_policy(policy_file)
    console.rule("1. simulate a county")
    county = conform(
        simulate_county(
            CountySettings(
                households=households,
                villages=max(households // 250, 10),
                rounds=5,
                seed=0,
                monte_carlo_draws=100,
            )
        )
    )
    write_survey(county, out / "county")
    latest_round = int(county.households["round"].max())
    console.print(f"{households:,} households, 5 rounds -> {out / 'county'}")
    engine = make_engine(db_url())
    create_schema(engine)
    ingested = ingest_survey(  # a rerun stores nothing new; an older demo county is kept as a version
        engine, county, DEMO_COUNTY, source=str((out / "county").resolve()), by="povrisk demo", replace=True
    )
    outcomes = ", ".join(f"round {summary.round} {summary.outcome}" for summary in ingested.rounds)
    where = engine.url.render_as_string(hide_password=True)
    console.print(f"household register {where}: county {DEMO_COUNTY}, {outcomes}")
    county = conform(read_register(engine, DEMO_COUNTY))  # everything below reads the register

    for task in ("poverty", "relapse"):
        console.rule(f"2. train and promote the {task} model")
        trained = train_task(county, task, policy, seed=0)
        registered = log_and_register(trained, policy)
        decision = promote(task, policy)
        console.print(
            f"{task}: version {registered.get('version')} "
            f"roc_auc={trained.metrics['roc_auc']:.3f} pr_auc={trained.metrics['pr_auc']:.3f}; "
            f"{decision.get('reason', '')}"
        )

    console.rule(f"3. score round {latest_round}")
    flags = score_round(load_champion_predictor(policy), county, latest_round, lang="en")
    for suffix in (".csv", ".parquet"):
        write_frame(flags, out / f"flags-round-{latest_round}{suffix}")
    stored = upsert_flags(engine, flags.assign(county_id=DEMO_COUNTY))
    console.print(
        f"{len(flags):,} households flagged -> {out}/flags-round-{latest_round}.csv; flag store: {stored}"
    )

    console.rule("4. one household by reference over HTTP, as the register holds it")
    household_id = (
        str(flags.iloc[0]["household_id"]) if len(flags) else str(county.households.iloc[0]["household_id"])
    )
    payload = {
        "request": {
            "county_id": DEMO_COUNTY,
            "household_id": household_id,
            "round": latest_round,
            "lang": "en",
        }
    }
    keys_file = out / "api-keys.yaml"
    keys_file.unlink(missing_ok=True)
    key = add_key(keys_file, "demo-monitor", "monitor")
    console.print(f"API key file {keys_file}; its monitor key (make more: `povrisk keys add`): {key}")
    response = score_over_http(
        payload,
        tracking=tracking_uri(),
        log=out / "service.log",
        console=console,
        keys=(keys_file, key),
        environment={POLICY_VARIABLE: str(policy_file)},
    )
    console.print_json(json.dumps(response, ensure_ascii=False))
    if len(flags):
        row = flags.iloc[0]
        console.print(
            f"the flag list's row of {household_id}: poverty risk {row['poverty_risk']:.12f}, relapse risk "
            f"{row['relapse_risk']:.12f}, {row['category']}; over HTTP: {response['poverty_risk']:.12f}, "
            f"{response['relapse_risk']:.12f}, {response['category']} (basis: {response['basis']})"
        )

    console.rule("5. households to visit first")
    print_top_flags(flags, per_category=3, console=console)
    console.rule("where to look")
    console.print(
        f"flag lists: {out}/flags-round-{latest_round}.csv (and .parquet)\n"
        f"MLflow runs, plots and registered models: `make mlflow-ui`, then http://127.0.0.1:5000\n"
        f"the service: `.venv/bin/povrisk serve --keys {out}/api-keys.yaml`, then POST "
        f"http://127.0.0.1:3000/score with header X-API-Key (README)\n"
        f"flags: `.venv/bin/povrisk flags list --status flagged`"
    )


def score_over_http(
    payload: dict[str, Any],
    *,
    tracking: str,
    log: Path,
    console: Console,
    keys: tuple[Path, str],
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST one household to a real `bentoml serve` of the champions, started and stopped here, with the
    key `keys[1]` of the key file `keys[0]` (and the variables of `environment`, e.g. POVRISK_POLICY)."""
    environment = {**(environment or {}), KEYS_FILE_VARIABLE: str(keys[0])}
    with running_service(tracking_uri=tracking, log=log, environment=environment) as base_url:
        household_id = (
            payload["request"].get("household_id") or payload["request"]["household"]["household_id"]
        )
        console.print(f"service ready at {base_url}; POST /score for household {household_id}")
        response = httpx.post(f"{base_url}/score", json=payload, headers={"X-API-Key": keys[1]}, timeout=30)
        response.raise_for_status()
        return dict(response.json())


def print_top_flags(flags: pd.DataFrame, *, per_category: int, console: Console) -> None:
    """The households to visit first in each monitoring category, with the rule and the reasons.

    Poor households are ranked by poverty risk, every other category by relapse risk."""
    for category, members in flags.groupby("category", sort=False):
        risk = "poverty_risk" if category == "poor" else "relapse_risk"
        console.print(
            f"[bold]{category}[/]: {len(members):,} households; highest {risk.replace('_', ' ')} first"
        )
        for _, flag in members.nlargest(per_category, risk).iterrows():
            tier = flag["risk_tier"] if pd.notna(flag["risk_tier"]) else "none (insufficient data)"
            console.print(
                f"  {flag['village_id']} {flag['household_id']}  poverty risk {flag['poverty_risk']:.2f}, "
                f"relapse risk {flag['relapse_risk']:.2f}, tier {tier}; {flag['category_rule']}"
            )
            for reason in filter(None, str(flag["reasons"]).split("; ")):
                console.print(f"      - {reason}")
