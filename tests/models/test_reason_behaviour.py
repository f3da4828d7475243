"""Behavioural tests of the reasons (Made-With-ML style) on a small simulated county trained once:

- invariance: a field that feeds no model feature moves nothing shown; a non-eligible demographic never
  becomes a reason, however it changes;
- directional expectation: giving a household basic medical insurance does not raise its risk;
- truth: every reason shown is true of its household, checked against the survey's own columns (a
  guarantee's named test holds; an amount's stated value and median are the data's).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.frame import build_features
from features.lineage import raw_columns, registry_lineage
from features.policy import Policy, load_policy
from models.explain import GUARANTEE_TESTS, ReasonRules, load_phrases, phrase
from models.predictor import RiskPredictor
from survey.io import Survey
from survey.simulate import CountySettings, simulate_county
from training.train import task_data, train_task

COUNTY = CountySettings(households=1_000, villages=10, rounds=3, seed=0, monte_carlo_draws=5)
SCORED_ROUND = 2
RISK_NOISE = 0.01
"""How far a risk may move the wrong way before a directional expectation counts as broken (1 point)."""
SNAKE_CASE = re.compile(r"[a-z]+_[a-z]+")
MEDIAN_WORDS = {"above": "above the median", "below": "below the median", "near": "about the median"}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def county() -> Survey:
    return simulate_county(COUNTY)


@pytest.fixture(scope="module")
def predictor(county: Survey, policy: Policy) -> RiskPredictor:
    models = {task: train_task(county, task, policy, seed=0).model for task in ("poverty", "relapse")}
    return RiskPredictor(policy, poverty=models["poverty"], relapse=models["relapse"])


@pytest.fixture(scope="module")
def scored_round(county: Survey) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The round scored (households, members) and its history (the earlier rounds)."""
    rounds = county.households["round"]
    assert county.members is not None
    return (
        county.households[rounds == SCORED_ROUND].reset_index(drop=True),
        county.members,
        county.households[rounds < SCORED_ROUND].reset_index(drop=True),
    )


def _score(predictor: RiskPredictor, households, members, history, lang: str = "en") -> pd.DataFrame:
    return predictor.score(households, members, history=history, lang=lang)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def scores(predictor, scored_round) -> pd.DataFrame:
    return _score(predictor, *scored_round)


def _shown(scores: pd.DataFrame) -> list[tuple[tuple[str, int], str, dict[str, Any]]]:
    """(household key, explaining task, reason) of every reason shown."""
    return [
        (key, str(task), reason)
        for key, task, reasons in zip(scores.index, scores["reason_model"], scores["reasons"], strict=True)
        for reason in reasons
    ]


def test_the_county_shows_reasons(scores):
    assert len(_shown(scores)) > 500  # the checks below have something to check


# --------------------------------------------------------------------------------------------- invariance


def test_a_field_no_model_reads_moves_nothing_shown(predictor, scored_round, scores):
    households, members, history = scored_round
    used = set().union(
        *(registry_lineage()[name] for _, model in predictor._models() for name in model.feature_names)
    )
    unread = raw_columns() - used - {"member_id"}
    assert "sex" in unread  # the members' sex feeds no indicator
    swapped = members.assign(sex=members["sex"].map({"male": "female", "female": "male"}))
    again = _score(predictor, households, swapped, history)
    pd.testing.assert_frame_equal(again, scores)


def test_the_household_id_moves_nothing_shown(predictor, scored_round, scores):
    households, members, history = scored_round
    rename = {key: f"other-{key}" for key in households["household_id"]}
    again = _score(
        predictor,
        households.assign(household_id=households["household_id"].map(rename)),
        members.assign(household_id=members["household_id"].map(rename)),
        history.assign(household_id=history["household_id"].map(rename)),
    )
    assert again["reasons"].tolist() == scores["reasons"].tolist()
    np.testing.assert_array_equal(again["poverty_risk"].to_numpy(), scores["poverty_risk"].to_numpy())


def test_a_demographic_change_never_makes_a_demographic_reason(predictor, policy, scored_round):
    households, members, history = scored_round
    eligible = set(policy.reasons.eligible)
    demographic = {"head_age", "mean_member_age", "youngest_member_age", "share_elderly", "household_size"}
    assert demographic.isdisjoint(eligible)
    for years in (-10, 0, 15):
        older = members.assign(age=(members["age"] + years).clip(0, 110))
        for _, _, reason in _shown(_score(predictor, households, older, history)):
            assert reason["indicator"] in eligible, reason
            assert "years old" not in reason["sentence"], reason


# ------------------------------------------------------------------------------------------- direction


def _with_insurance(predictor, scored_round, insured: bool) -> pd.DataFrame:
    households, members, history = scored_round
    return predictor.risks(
        build_features(
            households.assign(medical_insurance=float(insured)), members, predictor.policy, history
        )
    )


def test_medical_insurance_never_raises_the_poverty_risk(predictor, scored_round):
    insured = _with_insurance(predictor, scored_round, True)["poverty_risk"].to_numpy()
    uninsured = _with_insurance(predictor, scored_round, False)["poverty_risk"].to_numpy()
    assert len(insured) == 1_000
    assert np.all(insured <= uninsured + RISK_NOISE)


def test_medical_insurance_never_raises_the_relapse_risk(predictor, scored_round):
    insured = _with_insurance(predictor, scored_round, True)["relapse_risk"].to_numpy()
    uninsured = _with_insurance(predictor, scored_round, False)["relapse_risk"].to_numpy()
    assert np.all(insured <= uninsured + RISK_NOISE)


# ----------------------------------------------------------------------------------------------- truth


@pytest.fixture(scope="module")
def raw(scored_round, policy) -> pd.DataFrame:
    """The survey's own answers for the scored households, by (household_id, round), and the totals a
    cadre would compute from them by hand."""
    households, members, _ = scored_round
    key = ["household_id", "round"]
    this_round = members[members["round"] == SCORED_ROUND]
    by_household = this_round.groupby(key)
    school_age = policy.ages.compulsory_school_age
    out_of_school = this_round["age"].between(school_age.at_least, school_age.below, inclusive="left") & (
        this_round["in_school"] == False  # noqa: E712 (a nullable column: missing is not "out of school")
    )
    members_count = pd.DataFrame(
        {
            "size": by_household.size(),
            "seriously_ill": (this_round["health_status"] == "serious_illness")
            .groupby([this_round[name] for name in key])
            .sum(),
            "out_of_school": out_of_school.groupby([this_round[name] for name in key]).sum(),
        }
    )
    incomes = [
        "income_wages",
        "income_agriculture_net",
        "income_business",
        "income_transfers",
        "income_property",
    ]
    frame = households.set_index(key)
    net_income = frame[incomes].sum(axis=1, min_count=len(incomes))
    return frame.join(members_count).assign(
        net_income=net_income,
        poverty_line=[policy.poverty_line(year) for year in frame["survey_year"]],
        share_agriculture=frame["income_agriculture_net"] / net_income.where(net_income > 0),
        medical_share=frame["medical_expenses"] / net_income.where(net_income > 0),
    )


def _guarantee_is_true(indicator: str, sentence: str, household: pd.Series, policy: Policy) -> None:
    """Each test a guarantee sentence names holds on the survey's answers."""
    book = load_phrases()["indicators"][indicator]["tests"]
    if indicator == "deprived_basic_medical":
        named = 0
        if book["uninsured"]["en"] in sentence:
            named += 1
            assert household["medical_insurance"] == 0
        share = re.search(r"medical costs (\d+)% of income", sentence)
        if share:
            named += 1
            assert household["seriously_ill"] > 0
            assert household["medical_share"] > policy.catastrophic_medical_share
            assert f"{household['medical_share']:.0%}" == f"{share.group(1)}%"
        if book["catastrophic_without_income"]["en"] in sentence:
            named += 1
            assert household["seriously_ill"] > 0 and household["net_income"] <= 0
            assert household["medical_expenses"] > 0
        assert named >= 1, sentence  # every answer is known here: the failed test is always named
    elif indicator == "deprived_food_clothing":
        per_capita = household["net_income"] / household["size"]
        assert per_capita < household["poverty_line"]
        assert f"{per_capita:,.0f} yuan" in sentence and f"{household['poverty_line']:,.0f} yuan" in sentence
    elif indicator == "deprived_compulsory_education":
        assert household["out_of_school"] > 0
        assert sentence.endswith(
            f"{household['out_of_school']:.0f} child(ren) of compulsory-school age out of school"
        )
    elif indicator == "deprived_safe_housing":
        assert household["dangerous_house"] == 1
    elif indicator == "deprived_safe_water":
        assert household["safe_drinking_water"] == 0


def test_every_guarantee_sentence_names_a_test_that_failed(predictor, policy, scored_round, raw):
    """Over the whole round, not only the reasons shown: every household failing a guarantee gets the
    sentence a reason would carry, and what it names is checked against the survey's answers."""
    households, members, history = scored_round
    features = build_features(households, members, policy, history)
    rules = ReasonRules.of(policy)
    checked: dict[str, int] = dict.fromkeys(GUARANTEE_TESTS, 0)
    for key, row in features.iterrows():
        values = {str(name): float(value) for name, value in row.items()}
        for indicator in GUARANTEE_TESTS:
            if values.get(indicator) != 1.0:
                continue
            for lang in ("en", "zh"):
                sentence = phrase(indicator, 1.0, lang, row=values, rules=rules)  # type: ignore[arg-type]
                assert not SNAKE_CASE.search(sentence), sentence
            _guarantee_is_true(
                indicator, phrase(indicator, 1.0, "en", row=values, rules=rules), raw.loc[key], policy
            )
            checked[indicator] += 1
    assert checked["deprived_basic_medical"] > 0 and checked["deprived_food_clothing"] > 0, checked


def test_every_reason_shown_is_true_of_its_household(predictor, policy, county, scored_round, scores, raw):
    households, members, history = scored_round
    features = build_features(households, members, policy, history)
    medians = {task: task_data(county, task, policy).X.median() for task in ("poverty", "relapse")}
    book = load_phrases()["indicators"]
    eligible = set(policy.reasons.eligible)
    for key, task, reason in _shown(scores):
        indicator, sentence = reason["indicator"], reason["sentence"]
        value = features.loc[key, indicator]
        assert indicator in eligible
        assert reason["value"] == pytest.approx(value)
        assert reason["contribution"] > 0 and reason["effect_pp"] >= 0.1
        entry = book[indicator]
        if indicator in GUARANTEE_TESTS:
            _guarantee_is_true(indicator, sentence, raw.loc[key], policy)
        elif "when_yes" in entry:
            assert sentence == entry["when_yes" if value == 1.0 else "when_no"]["en"]
        else:  # an amount: the value stated is the data's, and so is the median and the side of it
            amount = entry["amount"]["en"]
            median = float(medians[task][indicator])
            if indicator == "income_share_agriculture":
                value = raw.loc[key, "share_agriculture"]
            if indicator == "medical_expense_share":
                value = raw.loc[key, "medical_share"]
            stated, typical = amount.format(value=value), amount.format(value=median)
            assert stated in sentence or (value == 0 and "zero" in entry), (sentence, stated)
            side = "near" if stated == typical else "above" if value > median else "below"
            assert f"{MEDIAN_WORDS[side]} of the households the model was trained on ({typical})" in sentence
        assert not SNAKE_CASE.search(sentence), sentence


def test_reasons_in_chinese_are_the_same_reasons_without_codes(predictor, scored_round, scores):
    chinese = _score(predictor, *scored_round, lang="zh")
    for english, zh in zip(scores["reasons"], chinese["reasons"], strict=True):
        assert [r["indicator"] for r in zh] == [r["indicator"] for r in english]
        assert [r["effect_pp"] for r in zh] == [r["effect_pp"] for r in english]
        for reason in zh:
            assert not SNAKE_CASE.search(reason["sentence"]) and not math.isnan(reason["effect_pp"])
            assert re.search(r"[\u4e00-\u9fff]", reason["sentence"]), reason
