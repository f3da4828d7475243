"""One answer everywhere: a household scored by reference from the register (its earlier rounds, its
village's context) gets what batch scoring of the whole round gives it, for every household of a round;
facts sent for a registered household are scored on top of its history; an unknown one has none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from features.frame import build_features
from monitoring.causes import SECONDARY_SEPARATOR
from serving.batch import score_round
from serving.schemas import SUBMITTED_WITH_HISTORY
from serving.scoring import (
    register_context,
    registered_input,
    score_household,
    score_registered,
    score_registered_together,
)
from store.database import create_schema, make_engine
from store.register import ingest_survey, read_register, registered_history, registered_household
from survey.io import Survey
from survey.validate import conform

COUNTY = "县甲"
ROUND = 2
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def register(county: Survey, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('register') / 'povrisk.db'}")
    create_schema(engine)
    ingest_survey(engine, county, COUNTY, source="test", by="test")
    return engine


@pytest.fixture(scope="module")
def batch_flags(register: Engine, loaded: Any) -> pd.DataFrame:
    survey = conform(read_register(register, COUNTY))
    return score_round(loaded.predictor, survey, ROUND, lang="en").set_index("household_id")


def assert_same_answer(answer: Any, flag: pd.Series) -> None:
    """Risks to 1e-9, the same tier, category, rule, causes and reasons as the flag list's row."""
    assert abs(answer.poverty_risk - flag["poverty_risk"]) <= TOLERANCE, answer.household_id
    assert abs(answer.relapse_risk - flag["relapse_risk"]) <= TOLERANCE, answer.household_id
    assert (answer.risk_tier, answer.category, answer.category_rule) == (
        None if pd.isna(flag["risk_tier"]) else flag["risk_tier"],  # no tier: insufficient data
        flag["category"],
        flag["category_rule"],
    ), answer.household_id
    assert answer.main_cause.code == flag["main_cause"], answer.household_id
    assert (
        SECONDARY_SEPARATOR.join(cause.code for cause in answer.secondary_causes) == flag["secondary_causes"]
    ), answer.household_id
    assert "; ".join(reason.sentence for reason in answer.reasons) == flag["reasons"], answer.household_id
    assert abs(answer.data_completeness - flag["data_completeness"]) <= TOLERANCE, answer.household_id
    assert ", ".join(block.label for block in answer.missing_blocks) == flag["missing_data"], (
        answer.household_id
    )


def test_every_flagged_household_by_reference_equals_its_flag_list_row(
    register: Engine, loaded: Any, batch_flags: pd.DataFrame
) -> None:
    assert len(batch_flags) > 50
    assert (batch_flags["category"] == "insufficient_data").any()  # the rule with no tier is compared too
    for household_id, flag in batch_flags.iterrows():
        registered = registered_household(register, COUNTY, str(household_id), ROUND)
        assert registered is not None
        answer = score_registered(loaded, registered, lang="en")
        assert (answer.basis, answer.county_id, answer.round) == ("register", COUNTY, ROUND)
        assert_same_answer(answer, flag)


def test_the_village_indicator_and_the_trends_come_from_the_register(
    register: Engine, loaded: Any, batch_flags: pd.DataFrame
) -> None:
    """Without the register the same row loses its history and village context: some answers differ
    (the skew the register removes)."""
    differing = 0
    for household_id, flag in batch_flags.head(40).iterrows():
        registered = registered_household(register, COUNTY, str(household_id), ROUND)
        assert registered is not None
        alone = score_household(loaded, registered_input(registered), lang="en")
        assert alone.basis == "no history" and alone.county_id is None
        differing += abs(alone.poverty_risk - flag["poverty_risk"]) > TOLERANCE
    assert differing > 0


def test_facts_sent_for_a_registered_household_are_scored_on_its_history(
    register: Engine, loaded: Any, batch_flags: pd.DataFrame
) -> None:
    household_id = str(batch_flags.index[0])
    registered = registered_household(register, COUNTY, household_id, ROUND)
    assert registered is not None
    sent = registered_input(registered)
    context = register_context(registered, sent, SUBMITTED_WITH_HISTORY)
    answer = score_household(loaded, sent, "en", context)
    assert answer.basis == "submitted, with register history"
    assert_same_answer(answer, batch_flags.loc[household_id])  # the same facts: the same answer

    richer = sent.model_copy(update={"income_wages": (sent.income_wages or 0) + 50_000})
    changed = score_household(
        loaded, richer, "en", register_context(registered, richer, SUBMITTED_WITH_HISTORY)
    )
    assert changed.relapse_risk != answer.relapse_risk


def test_a_household_the_register_does_not_hold_is_none(register: Engine) -> None:
    assert registered_household(register, COUNTY, "H-nowhere", ROUND) is None
    assert registered_household(register, "another county", "H000001") is None
    latest = registered_household(register, COUNTY, "H000001")
    assert latest is not None and latest.round == 2 and list(latest.households["round"]) == [0, 1, 2]


def test_the_register_keeps_each_villages_counts(register: Engine, county: Survey, tmp_path: Path) -> None:
    from survey.village_context import village_round_context

    registered = registered_household(register, COUNTY, "H000001", ROUND)
    assert registered is not None
    expected = village_round_context(county.households).set_index(["village_id", "round"])
    counts = expected.loc[(registered.village_id, ROUND)]
    assert registered.village_counts == {name: int(counts[name]) for name in counts.index}


def test_a_households_rounds_scored_together_equal_each_round_by_reference(
    register: Engine, loaded: Any
) -> None:
    household_id = str(read_register(register, COUNTY, [ROUND]).households["household_id"].iloc[3])
    history = registered_history(register, COUNTY, household_id)
    assert [registered.round for registered in history] == [0, 1, 2]
    together = score_registered_together(loaded, history, "en")
    for registered, answer in zip(history, together, strict=True):
        alone = score_registered(
            loaded, registered_household(register, COUNTY, household_id, registered.round), "en"
        )
        assert answer.model_dump() == alone.model_dump()
    survey = read_register(register, COUNTY)
    features = build_features(survey.households, survey.members, loaded.predictor.policy)
    expected = features.xs(household_id, level="household_id")["income_to_line_ratio"]
    ratios = pd.Series([answer.income_to_line_ratio for answer in together], dtype=float)
    np.testing.assert_allclose(ratios.to_numpy(), expected.to_numpy(), rtol=1e-12)  # NaN where unknown
