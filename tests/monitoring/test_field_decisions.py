"""Field decisions read back from the flag store (what `povrisk train` uses to correct labels)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from store.cases import FIELD_DECISION_COLUMNS, field_decisions, list_flags, set_status, upsert_flags
from store.database import create_schema, make_engine


def _flags(households: list[str], categories: list[str], round_: int = 2) -> pd.DataFrame:
    count = len(households)
    return pd.DataFrame(
        {
            "household_id": households,
            "village_id": ["v1"] * count,
            "round": [round_] * count,
            "category": categories,
            "category_rule": ["rule"] * count,
            "poverty_risk": [0.8] * count,
            "relapse_risk": [0.3] * count,
            "risk_tier": ["high"] * count,
            "reasons_json": [json.dumps([])] * count,
            "model_name": ["povrisk-poverty;povrisk-relapse"] * count,
            "model_version": ["1;1"] * count,
        }
    )


def _id(engine: Engine, household_id: str, round_: int = 2) -> int:
    flags = list_flags(engine)
    chosen = (flags["household_id"] == household_id) & (flags["round"] == round_)
    return int(flags.loc[chosen, "id"].item())


def test_decisions_carry_the_first_decision_and_leave_open_flags_out(engine: Engine) -> None:
    upsert_flags(engine, _flags(["h1", "h2", "h3", "h4", "h5"], ["poor", "poor", "marginal", "poor", "poor"]))
    upsert_flags(engine, _flags(["h1"], ["poor"], round_=1))
    set_status(engine, _id(engine, "h1"), "verified", by="cadre Wang")
    set_status(engine, _id(engine, "h2"), "rejected", by="cadre Li", note="income above the line")
    set_status(engine, _id(engine, "h3"), "verified", by="cadre Wang")
    for status in ("verified", "village_reviewed", "notice_running", "township_reviewed", "monitored"):
        set_status(engine, _id(engine, "h4"), status, by="cadre Zhao")
    # h5 (round 2) and h1 (round 1) are still "flagged": no decision
    decisions = field_decisions(engine)
    assert tuple(decisions.columns) == FIELD_DECISION_COLUMNS
    assert decisions[["household_id", "round", "category", "decision", "decided_by"]].to_dict("records") == [
        {
            "household_id": "h1",
            "round": 2,
            "category": "poor",
            "decision": "verified",
            "decided_by": "cadre Wang",
        },
        {
            "household_id": "h2",
            "round": 2,
            "category": "poor",
            "decision": "rejected",
            "decided_by": "cadre Li",
        },
        {
            "household_id": "h3",
            "round": 2,
            "category": "marginal",
            "decision": "verified",
            "decided_by": "cadre Wang",
        },
        {
            "household_id": "h4",
            "round": 2,
            "category": "poor",
            "decision": "verified",
            "decided_by": "cadre Zhao",
        },
    ]
    assert decisions["decided_at"].notna().all()


def test_no_store_or_no_decision_gives_an_empty_frame(tmp_path: Path) -> None:
    bare = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    assert field_decisions(bare).empty
    assert tuple(field_decisions(bare).columns) == FIELD_DECISION_COLUMNS
    create_schema(bare)
    upsert_flags(bare, _flags(["h1"], ["poor"]))
    assert field_decisions(bare).empty
