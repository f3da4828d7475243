"""Batch scoring of a round of the small simulated county into a flag list, and into the flag store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.frame import build_feature_frames
from features.policy import Policy
from models.predictor import RiskPredictor
from monitoring.categories import CATEGORIES, monitoring_category
from serving.batch import FLAG_COLUMNS, model_reference, reasons_json, reasons_text, score_round
from store.cases import UpsertResult, list_flags, upsert_flags
from store.database import create_schema, make_engine
from survey.io import Survey
from training.tracking import load_champion_predictor

LAST_ROUND = 2


@pytest.fixture(scope="module")
def flags(predictor: RiskPredictor, county: Survey) -> pd.DataFrame:
    return score_round(predictor, county, LAST_ROUND, lang="en", model_versions={"poverty": "7"})


def test_flag_list_has_the_documented_columns(flags: pd.DataFrame) -> None:
    assert tuple(flags.columns) == FLAG_COLUMNS
    assert not flags.empty
    assert set(flags["round"]) == {LAST_ROUND}
    assert flags["household_id"].is_unique


def test_not_monitored_households_are_left_out(
    flags: pd.DataFrame, predictor: RiskPredictor, county: Survey
) -> None:
    households = county.households
    assert set(flags["category"]) <= set(CATEGORIES) - {"not_monitored"}
    frames = build_feature_frames(
        households[households["round"] == LAST_ROUND],
        county.members,
        predictor.policy,
        households[households["round"] < LAST_ROUND],
    )
    features = frames.features
    scores = predictor.score_features(features, known_inputs=frames.known_inputs)
    categories = monitoring_category(features, scores, predictor.policy)
    monitored = categories.index[categories["category"] != "not_monitored"].get_level_values("household_id")
    assert 0 < len(monitored) < len(categories)
    assert set(flags["household_id"]) == set(monitored)


def test_sorted_by_village_then_risk_descending(flags: pd.DataFrame) -> None:
    assert flags["village_id"].is_monotonic_increasing
    larger_risk = np.fmax(flags["poverty_risk"], flags["relapse_risk"])
    for _, risks in larger_risk.groupby(flags["village_id"]):
        assert risks.is_monotonic_decreasing


def test_villages_match_the_survey(flags: pd.DataFrame, county: Survey) -> None:
    households = county.households
    truth = households[households["round"] == LAST_ROUND].set_index("household_id")["village_id"]
    assert (flags["village_id"].to_numpy() == truth.loc[flags["household_id"]].to_numpy()).all()


def test_reasons_as_text_and_json_agree(flags: pd.DataFrame) -> None:
    for text, as_json in zip(flags["reasons"], flags["reasons_json"], strict=True):
        reasons = json.loads(as_json)
        assert text == "; ".join(reason["sentence"] for reason in reasons)
        assert all(
            set(reason) == {"indicator", "value", "contribution", "sentence", "effect_pp"}
            for reason in reasons
        )
        assert all(reason["effect_pp"] >= 0.1 for reason in reasons)
    # most monitored households have reasons; the others sit on a flat step of an isotonic calibrator,
    # where no single indicator moves the probability shown (a reason must, models/explain.py)
    assert (flags["reasons"].str.len() > 0).mean() > 0.8


def test_model_identity_names_both_tasks(flags: pd.DataFrame, predictor: RiskPredictor) -> None:
    assert set(flags["model_name"]) == {"povrisk-poverty;povrisk-relapse"}
    relapse_hash = predictor.relapse.data_hash if predictor.relapse else ""
    assert set(flags["model_version"]) == {f"7;data-{relapse_hash}"}


def test_model_reference_prefers_the_registry_identity(predictor: RiskPredictor) -> None:
    assert predictor.poverty is not None
    in_memory = predictor.poverty
    registered = in_memory.registered_as("povrisk-poverty", "4")
    assert model_reference(in_memory) == ("povrisk-poverty", f"data-{in_memory.data_hash}")
    assert model_reference(registered) == ("povrisk-poverty", "4")
    assert model_reference(registered, "9") == ("povrisk-poverty", "9")


def test_champions_from_the_registry_report_their_versions(
    registry: str, county: Survey, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    champions = load_champion_predictor(policy)
    flags = score_round(champions, county, LAST_ROUND, lang="en")
    assert set(flags["model_name"]) == {"povrisk-poverty;povrisk-relapse"}
    assert set(flags["model_version"]) == {"1;1"}


def test_inputs_are_not_changed(predictor: RiskPredictor, county: Survey) -> None:
    households_before = county.households.copy()
    score_round(predictor, county, 1)
    pd.testing.assert_frame_equal(county.households, households_before)


def test_round_without_households_raises(predictor: RiskPredictor, county: Survey) -> None:
    with pytest.raises(ValueError, match="round 9"):
        score_round(predictor, county, 9)


def test_flag_list_goes_into_the_store_idempotently(flags: pd.DataFrame, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'flags.db'}")
    create_schema(engine)
    assert upsert_flags(engine, flags) == UpsertResult(inserted=len(flags), updated=0, unchanged=0)
    assert upsert_flags(engine, flags) == UpsertResult(inserted=0, updated=0, unchanged=len(flags))
    stored = list_flags(engine, round=LAST_ROUND)
    assert set(stored["household_id"]) == set(flags["household_id"])
    assert "not_monitored" not in set(stored["category"])
    by_household = stored.set_index("household_id")["data_completeness"]
    np.testing.assert_allclose(
        by_household.loc[flags["household_id"]].to_numpy(dtype=float), flags["data_completeness"].to_numpy()
    )


def test_households_with_too_little_data_are_listed_without_a_tier_and_with_what_is_missing(
    flags: pd.DataFrame, predictor: RiskPredictor
) -> None:
    minimum = predictor.policy.data_completeness_minimum
    short = flags["data_completeness"] < minimum
    assert short.any(), "the simulated county's missing answers leave some households short of data"
    assert flags.loc[short, "risk_tier"].isna().all()
    assert flags.loc[~short, "risk_tier"].isin(["high", "medium", "low"]).all()
    assert (flags.loc[short, "missing_data"] != "").all()
    assert (flags.loc[~short, "missing_data"] == "").all()
    insufficient = flags["category"] == "insufficient_data"
    assert insufficient.any() and short[insufficient].all()
    assert flags.loc[insufficient, "category_rule"].str.startswith("too little data to judge").all()


def test_a_household_whose_income_is_unknown_is_never_placed_on_a_models_word(
    predictor: RiskPredictor, county: Survey
) -> None:
    households = county.households.copy()
    current = households["round"] == LAST_ROUND
    never_poor = current & (households["poverty_status"] == "never_poor")
    blanked = households.index[never_poor][:20]
    households.loc[blanked, "income_wages"] = np.nan
    flags = score_round(predictor, Survey(households, county.members), LAST_ROUND, lang="zh")
    chosen = set(households.loc[blanked, "household_id"])
    rows = flags[flags["household_id"].isin(chosen)]
    assert len(rows) == len(chosen)  # every one listed: nobody drops out of sight for lack of data
    assert set(rows["category"]) <= {"insufficient_data", "unstable_after_exit", "sudden_hardship"}
    assert rows["risk_tier"].isna().all()
    assert rows["missing_data"].str.contains("收入").all()


def test_reason_helpers_handle_missing_values() -> None:
    reasons = [
        {"indicator": "a", "value": float("nan"), "contribution": 0.5, "sentence": "甲"},
        {"indicator": "b", "value": 1.0, "contribution": 0.2, "sentence": "b is high"},
    ]
    assert reasons_text(reasons) == "甲; b is high"
    assert json.loads(reasons_json(reasons))[0]["value"] is None
    assert "甲" in reasons_json(reasons)


def test_every_flag_has_a_main_cause_from_the_archive_card(flags: pd.DataFrame) -> None:
    from monitoring.causes import load_cause_settings

    causes = set(load_cause_settings().causes)
    assert set(flags["main_cause"]) <= causes
    assert (flags["main_cause"] != "other").any()  # the simulated county's reasons point to real causes
    for secondary, main in zip(flags["secondary_causes"], flags["main_cause"], strict=True):
        listed = [cause for cause in secondary.split(";") if cause]
        assert len(listed) <= 2 and main not in listed and set(listed) <= causes
