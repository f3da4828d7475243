import copy
import math
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from features.policy import DEFAULT_POLICY_PATH, PolicyError, load_policy, policy_from_mapping
from features.registry import INDICATORS
from models.calibration import PlattCalibrator
from models.explain import (
    BASE_VALUE,
    GUARANTEE_TESTS,
    ReasonRules,
    contributions,
    load_phrases,
    phrase,
    probability_effects,
    top_reasons,
    top_reasons_of_rows,
)

SNAKE_CASE = re.compile(r"[a-z]+_[a-z]+")
RULES = ReasonRules(catastrophic_medical_share=0.5)


def test_contributions_add_up_to_the_margin(synthetic, booster):
    X, _ = synthetic
    contribs = contributions(booster, X)
    assert list(contribs.columns) == [*X.columns, BASE_VALUE]
    assert contribs.index.equals(X.index)
    margin = booster.predict(X.to_numpy(), raw_score=True)
    np.testing.assert_allclose(contribs.sum(axis=1).to_numpy(), margin, atol=1e-9)


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier:UserWarning")
def test_contributions_agree_with_shap(synthetic, booster):
    shap = pytest.importorskip("shap")
    X, _ = synthetic
    ours = contributions(booster, X.iloc[:100]).drop(columns=BASE_VALUE).to_numpy()
    theirs = np.asarray(shap.TreeExplainer(booster).shap_values(X.iloc[:100]))
    if theirs.ndim == 3:  # older shap returns one array per class
        theirs = theirs[-1]
    assert np.max(np.abs(ours - theirs)) < 1e-6


def test_contributions_need_model_features(synthetic, booster):
    X, _ = synthetic
    with pytest.raises(KeyError, match="shock_serious_illness"):
        contributions(booster, X.drop(columns="shock_serious_illness"))


def _row() -> tuple[pd.Series, pd.Series]:
    contrib = pd.Series(
        {
            "shock_serious_illness": 0.9,
            "per_capita_net_income": 0.4,
            "no_labour_capacity": 0.6,
            "mystery_indicator": 0.2,
            "medical_insurance": -0.3,
            BASE_VALUE: -2.0,
        }
    )
    values = pd.Series(
        {
            "shock_serious_illness": 1.0,
            "per_capita_net_income": 3100.0,
            "no_labour_capacity": 1.0,
            "mystery_indicator": 7.5,
            "medical_insurance": 0.0,
        }
    )
    return contrib, values


# ------------------------------------------------------------------------------------------ ranking


def test_top_reasons_are_largest_positive_in_order_english():
    contrib, values = _row()
    reasons = top_reasons(contrib, values, k=3, lang="en", reference={"per_capita_net_income": 5000.0})
    assert [r.indicator for r in reasons] == [
        "shock_serious_illness",
        "no_labour_capacity",
        "per_capita_net_income",
    ]
    assert reasons[0].sentence == "serious illness in the household this year"
    assert reasons[1].sentence == "no member able to work"
    assert reasons[2].sentence == (
        "per-capita net income 3,100 yuan — below the median of the households the model was trained on "
        "(5,000 yuan)"
    )
    assert all(r.contribution > 0 and r.effect_pp is None for r in reasons)


def test_top_reasons_in_chinese():
    contrib, values = _row()
    reasons = top_reasons(contrib, values, k=2, lang="zh")
    assert [r.sentence for r in reasons] == ["家中今年有人患重大疾病", "家中无劳动力"]


def test_never_a_negative_contribution_as_reason():
    contrib, values = _row()
    reasons = top_reasons(contrib, values, k=10, lang="en")
    assert "medical_insurance" not in {r.indicator for r in reasons}
    assert len(reasons) == 4


def test_a_missing_value_is_never_a_reason():
    contrib, values = _row()
    unrecorded = contrib.copy()
    unrecorded["income_share_transfers"] = 2.8  # the largest contribution, but the value is missing
    with_nan = values.copy()
    with_nan["income_share_transfers"] = math.nan
    with_nan["shock_serious_illness"] = math.nan  # recorded in the contributions, unrecorded here
    reasons = top_reasons(unrecorded, with_nan.drop(labels=["no_labour_capacity"]), k=2, lang="en")
    assert [r.indicator for r in reasons] == ["per_capita_net_income", "mystery_indicator"]
    assert all(not math.isnan(r.value) for r in reasons)
    assert not any("not recorded" in r.sentence for r in reasons)


def test_no_reasons_when_every_raising_indicator_is_missing():
    contrib, values = _row()
    missing = values.copy()
    missing[["shock_serious_illness", "per_capita_net_income", "no_labour_capacity", "mystery_indicator"]] = (
        math.nan
    )
    assert top_reasons(contrib, missing, k=3, lang="en") == []


def test_only_eligible_indicators_are_reasons():
    contrib = pd.Series({"head_age": 3.0, "household_size": 2.0, "shock_disaster": 0.5, BASE_VALUE: -1.0})
    values = pd.Series({"head_age": 52.0, "household_size": 6.0, "shock_disaster": 1.0})
    rules = ReasonRules.of(load_policy())
    reasons = top_reasons(contrib, values, k=3, lang="en", rules=rules)
    assert [r.indicator for r in reasons] == ["shock_disaster"]
    assert not any("years old" in r.sentence for r in reasons)


def test_a_value_the_typical_household_shares_is_no_reason():
    contrib = pd.Series({"assistance_ends": 0.8, "shock_job_loss": 0.4, BASE_VALUE: -1.0})
    values = pd.Series({"assistance_ends": 0.0, "shock_job_loss": 1.0})
    reasons = top_reasons(
        contrib, values, lang="en", reference={"assistance_ends": 0.0, "shock_job_loss": 0.0}
    )
    assert [r.indicator for r in reasons] == ["shock_job_loss"]


def test_effects_are_percentage_points_of_the_calibrated_probability():
    calibrator = PlattCalibrator(slope=1.0, intercept=0.0)
    contribs = np.array([[1.0, 0.5, -0.2]])
    margin = np.array([0.3])
    effects = probability_effects(contribs, margin, calibrator.transform)
    expected = 100 * (calibrator.transform(margin)[0] - calibrator.transform(margin[0] - contribs[0]))
    np.testing.assert_allclose(effects[0], expected)
    assert effects[0, 0] > effects[0, 1] > 0 > effects[0, 2]


def test_reasons_carry_their_effect_rounded_and_a_negligible_one_is_dropped():
    calibrator = PlattCalibrator(slope=1.0, intercept=0.0)
    contrib = pd.Series({"shock_disaster": 1.2, "shock_job_loss": 1e-4, BASE_VALUE: -0.5})
    values = pd.Series({"shock_disaster": 1.0, "shock_job_loss": 1.0})
    reasons = top_reasons(contrib, values, lang="en", probability=calibrator.transform)
    assert [r.indicator for r in reasons] == ["shock_disaster"]
    margin = contrib.sum()
    effect = 100 * (calibrator.transform(np.array([margin])) - calibrator.transform(np.array([margin - 1.2])))
    assert reasons[0].effect_pp == round(float(effect[0]), 1)


def test_fallback_for_unknown_indicator_and_missing_value():
    contrib, values = _row()
    reasons = top_reasons(contrib, values, k=10, lang="en")
    mystery = next(r for r in reasons if r.indicator == "mystery_indicator")
    assert mystery.sentence == "mystery_indicator: 7.50"
    assert phrase("dangerous_house", math.nan, "zh") == "危房未填报"
    assert phrase("dangerous_house", math.nan, "en") == "dangerous house not recorded"


# ----------------------------------------------------------------------------------------- sentences


def test_a_share_says_what_it_is_relative_to():
    below = phrase("income_share_agriculture", 0.26, "en", reference=0.41)
    assert (
        below == "farming 26% of income — below the median of the households the model was trained on (41%)"
    )
    assert phrase("income_share_agriculture", 0.26, "zh", reference=0.41) == (
        "种养殖收入占收入26%，低于训练模型所用农户的中位数（41%）"
    )
    above = phrase("household_size", 7.0, "en", reference=4.0)
    assert (
        above == "a household of 7 people — above the median of the households the model was trained on (4)"
    )


def test_an_amount_equal_to_the_median_once_rounded_is_not_called_below_it():
    near = phrase("income_share_agriculture", 0.412, "en", reference=0.414)
    assert near == "farming 41% of income — about the median of the households the model was trained on (41%)"


def test_a_zero_count_is_worded_and_no_median_leaves_the_comparison_out():
    assert phrase("members_in_migrant_work", 0.0, "en") == "no member in migrant work"
    assert phrase("members_in_migrant_work", 2.0, "zh") == "外出务工2人"


def test_a_yes_no_indicator_names_its_side():
    assert phrase("medical_insurance", 0.0, "en", reference=1.0) == "not covered by basic medical insurance"
    assert phrase("medical_insurance", 1.0, "en", reference=1.0) == "covered by basic medical insurance"


def _medical(insured: float, ill: float, share: float, income: float = 10_000.0) -> dict[str, float]:
    return {
        "medical_insurance": insured,
        "serious_illness_members": ill,
        "medical_expense_share": share,
        "net_income": income,
    }


def test_basic_medical_names_the_spending_test_for_an_insured_household():
    row = _medical(insured=1.0, ill=1.0, share=0.62)
    assert phrase("deprived_basic_medical", 1.0, "en", row=row, rules=RULES) == (
        "basic medical care not secured: serious illness in the household and medical costs 62% of income"
    )
    assert phrase("deprived_basic_medical", 1.0, "zh", row=row, rules=RULES) == (
        "基本医疗未保障：家中有大病患者，医疗支出占收入62%"
    )


def test_basic_medical_names_the_missing_insurance():
    row = _medical(insured=0.0, ill=0.0, share=0.02)
    assert phrase("deprived_basic_medical", 1.0, "en", row=row, rules=RULES) == (
        "basic medical care not secured: no basic medical insurance"
    )
    # seriously ill but spending under the limit: only the insurance test failed
    row = _medical(insured=0.0, ill=1.0, share=0.3)
    assert (
        phrase("deprived_basic_medical", 1.0, "zh", row=row, rules=RULES)
        == "基本医疗未保障：未参加基本医疗保险"
    )


def test_basic_medical_names_both_tests_when_both_failed():
    row = _medical(insured=0.0, ill=2.0, share=0.8)
    assert phrase("deprived_basic_medical", 1.0, "en", row=row, rules=RULES) == (
        "basic medical care not secured: no basic medical insurance; and serious illness in the household "
        "and medical costs 80% of income"
    )


def test_basic_medical_without_positive_income_and_without_the_values():
    row = _medical(insured=1.0, ill=1.0, share=math.nan, income=-500.0)
    assert phrase("deprived_basic_medical", 1.0, "en", row=row, rules=RULES) == (
        "basic medical care not secured: serious illness in the household and medical costs with no "
        "positive net income"
    )
    # insured and ill, no limit known: the guarantee failing proves the spending test failed
    insured_ill = _medical(insured=1.0, ill=1.0, share=0.7)
    assert "70% of income" in phrase("deprived_basic_medical", 1.0, "en", row=insured_ill)
    assert phrase("deprived_basic_medical", 1.0, "en") == (
        "basic medical care not secured: no basic medical insurance, or serious illness with catastrophic "
        "medical costs"
    )


def test_food_clothing_names_income_and_the_line():
    row = {"per_capita_net_income": 2450.0, "income_to_line_ratio": 2450.0 / 4000.0}
    assert phrase("deprived_food_clothing", 1.0, "en", row=row) == (
        "food and clothing not secured: per-capita net income 2,450 yuan, "
        "below the poverty line of 4,000 yuan"
    )
    assert phrase("deprived_food_clothing", 1.0, "zh", row={"income_to_line_ratio": 0.5}) == (
        "吃穿不愁未保障：人均收入仅为贫困线的50%"
    )


def test_compulsory_education_names_the_children_out_of_school():
    row = {"school_age_not_in_school": 2.0}
    assert phrase("deprived_compulsory_education", 1.0, "zh", row=row) == (
        "义务教育未保障：2名义务教育阶段适龄儿童未上学"
    )


def test_every_guarantee_of_the_registry_has_its_tests():
    guarantees = {indicator.name for indicator in INDICATORS if indicator.name.startswith("deprived_")}
    assert guarantees == set(GUARANTEE_TESTS)
    book = load_phrases()["indicators"]
    for guarantee, tests_of in GUARANTEE_TESTS.items():
        for key, _ in tests_of({}, ReasonRules()):
            assert key in book[guarantee]["tests"], (guarantee, key)


def test_every_entry_is_one_kind_and_formats_in_both_languages_without_codes():
    book = load_phrases()
    samples = {"value": 0.5, "amount": "x", "income": 1.0, "line": 2.0, "ratio": 0.5, "children": 1.0}
    for indicator, entry in book["indicators"].items():
        kinds = [kind for kind in ("text", "when_yes", "tests") if kind in entry]
        assert len(kinds) == 1, indicator
        for lang in ("zh", "en"):
            texts = [
                entry[part][lang]
                for part in ("amount", "text", "zero", "when_yes", "when_no")
                if part in entry
            ]
            texts += [test[lang] for test in entry.get("tests", {}).values()]
            for text in texts:
                worded = text.format(**samples, share=0.6)
                assert worded and not SNAKE_CASE.search(worded), (indicator, lang, worded)
            for side in (0.0, 1.0, 3.0):
                sentence = phrase(indicator, side, lang, reference=2.0)
                assert sentence and not SNAKE_CASE.search(sentence), (indicator, lang, sentence)


def test_unknown_language_and_bad_k_raise():
    contrib, values = _row()
    with pytest.raises(ValueError, match="language"):
        phrase("dangerous_house", 1.0, "fr")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be"):
        top_reasons(contrib, values, k=-1)


def test_rows_are_phrased_from_their_own_values():
    names = [
        "deprived_basic_medical",
        "medical_insurance",
        "serious_illness_members",
        "medical_expense_share",
    ]
    contribs = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    values = np.array([[1.0, 1.0, 1.0, 0.9], [1.0, 0.0, 0.0, 0.0]])
    reasons = top_reasons_of_rows(contribs, values, names, k=1, lang="en", rules=RULES)
    assert reasons[0][0].sentence.endswith("medical costs 90% of income")
    assert reasons[1][0].sentence.endswith("no basic medical insurance")


# ------------------------------------------------------------------------------------ the policy list


def test_the_policy_lists_the_eligible_indicators_and_names_an_unknown_one():
    policy = load_policy()
    eligible = set(policy.reasons.eligible)
    assert {"head_age", "household_size", "share_elderly", "registered_poor"}.isdisjoint(eligible)
    assert {"deprived_basic_medical", "medical_insurance", "income_share_agriculture"} <= eligible
    settings = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    broken = copy.deepcopy(settings)
    broken["reasons"]["eligible"] = [*broken["reasons"]["eligible"], "age_of_the_moon"]
    with pytest.raises(PolicyError, match=r"reasons\.eligible.*age_of_the_moon"):
        policy_from_mapping(broken)
    broken["reasons"]["eligible"] = ["shock_disaster", "shock_disaster"]
    with pytest.raises(PolicyError, match="more than once"):
        policy_from_mapping(broken)
