import math

import numpy as np
import pandas as pd
import pytest

from models.explain import BASE_VALUE, contributions, load_phrases, phrase, top_reasons


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
    assert "3,100 yuan" in reasons[2].sentence
    assert all(r.contribution > 0 for r in reasons)


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


def test_fallback_for_unknown_indicator_and_missing_value():
    contrib, values = _row()
    reasons = top_reasons(contrib, values, k=10, lang="en")
    mystery = next(r for r in reasons if r.indicator == "mystery_indicator")
    assert mystery.sentence == "mystery_indicator: 7.50"
    assert phrase("dangerous_house", math.nan, "zh") == "危房未填报"
    assert phrase("dangerous_house", math.nan, "en") == "dangerous house not recorded"


def test_high_and_low_wording_follows_the_reference():
    low = phrase("household_size", 2.0, "en", reference=4.0)
    high = phrase("household_size", 7.0, "en", reference=4.0)
    assert low == "a small household of 2"
    assert high == "a large household of 7 people"


def test_every_phrase_formats_in_both_languages():
    book = load_phrases()
    for indicator, entry in book["indicators"].items():
        for side in ("high", "low"):
            for lang in ("zh", "en"):
                assert entry[side][lang].format(label="x", value=0.5), (indicator, side, lang)


def test_unknown_language_and_bad_k_raise():
    contrib, values = _row()
    with pytest.raises(ValueError, match="language"):
        phrase("dangerous_house", 1.0, "fr")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be"):
        top_reasons(contrib, values, k=-1)
