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


def run_demo(out: Path, *, households: int, console: Console) -> None:
    from cli.output import write_frame
    from features.policy import load_policy
    from monitoring.store import create_schema, db_url, make_engine, upsert_flags
    from serving.batch import score_round
    from serving.schemas import household_from_survey
    from survey.io import write_survey
    from survey.simulate import CountySettings, simulate_county
    from survey.validate import conform
    from training.tracking import load_champion_predictor, log_and_register, promote, tracking_uri
    from training.train import train_task

    policy = load_policy()
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
    flags = score_round(load_champion_predictor(), county, latest_round, lang="en")
    for suffix in (".csv", ".parquet"):
        write_frame(flags, out / f"flags-round-{latest_round}{suffix}")
    engine = make_engine(db_url())
    create_schema(engine)
    stored = upsert_flags(engine, flags)
    console.print(
        f"{len(flags):,} households flagged -> {out}/flags-round-{latest_round}.csv; flag store: {stored}"
    )

    console.rule("4. serve one household over HTTP")
    household_id = (
        str(flags.iloc[0]["household_id"]) if len(flags) else str(county.households.iloc[0]["household_id"])
    )
    household = household_from_survey(county, household_id, latest_round)
    payload = {"request": {"household": household.model_dump(mode="json", exclude_none=True), "lang": "en"}}
    keys_file = out / "api-keys.yaml"
    keys_file.unlink(missing_ok=True)
    key = add_key(keys_file, "demo-monitor", "monitor")
    console.print(f"API key file {keys_file}; its monitor key (make more: `povrisk keys add`): {key}")
    response = score_over_http(
        payload, tracking=tracking_uri(), log=out / "service.log", console=console, keys=(keys_file, key)
    )
    console.print_json(json.dumps(response, ensure_ascii=False))

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
    payload: dict[str, Any], *, tracking: str, log: Path, console: Console, keys: tuple[Path, str]
) -> dict[str, Any]:
    """POST one household to a real `bentoml serve` of the champions, started and stopped here, with the
    key `keys[1]` of the key file `keys[0]`."""
    environment = {KEYS_FILE_VARIABLE: str(keys[0])}
    with running_service(tracking_uri=tracking, log=log, environment=environment) as base_url:
        household_id = payload["request"]["household"]["household_id"]
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
            console.print(
                f"  {flag['village_id']} {flag['household_id']}  poverty risk {flag['poverty_risk']:.2f}, "
                f"relapse risk {flag['relapse_risk']:.2f}, tier {flag['risk_tier']}; {flag['category_rule']}"
            )
            for reason in filter(None, str(flag["reasons"]).split("; ")):
                console.print(f"      - {reason}")
