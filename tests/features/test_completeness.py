"""Data completeness: which features a household's known inputs reach, weighed by a model's explanatory
weight, judged as features/frame.py resolves the inputs (an optional input the survey lacks is left out)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from features.completeness import (
    BLOCK_ORDER,
    COMPLETENESS,
    MISSING_BLOCKS,
    SUFFICIENT,
    ModelWeights,
    block_labels,
    completeness,
    data_completeness,
    known_features,
    missing_text,
)
from features.frame import build_feature_frames
from features.policy import load_policy
from models.predictor import TaskModel
from models.spec import LightGBMSpec

NAN = float("nan")
INCOME = {
    "income_wages": [3_000.0, NAN, 3_000.0],
    "income_agriculture_net": [1_000.0, 1_000.0, 1_000.0],
    "income_business": [0.0, 0.0, 0.0],
    "income_transfers": [500.0, 500.0, 500.0],
}


def _households(**columns: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "household_id": ["H1", "H2", "H3"],
            "village_id": ["V1"] * 3,
            "round": [1, 1, 1],
            "household_size": [3.0, 3.0, 3.0],
            **columns,
        }
    )


def _known(households: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    frames = build_feature_frames(households, None, load_policy())
    return known_features(frames.known_inputs, features, len(households))


def test_an_unknown_income_component_makes_the_income_features_unknown() -> None:
    known = _known(_households(**INCOME), ("net_income", "income_to_line_ratio", "income_share_wages"))
    assert known.tolist() == [[True] * 3, [False] * 3, [True] * 3]


def test_a_component_the_survey_does_not_record_is_left_out_as_the_indicator_leaves_it_out() -> None:
    # no income_property column at all: net income is the sum of the others, and known
    frames = build_feature_frames(_households(**INCOME), None, load_policy())
    assert np.isfinite(frames.features["net_income"].iloc[0])
    assert known_features(frames.known_inputs, ("net_income",), 3)[:, 0].tolist() == [True, False, True]


def test_a_required_input_the_survey_lacks_is_unknown_for_everyone() -> None:
    known = _known(_households(**INCOME), ("housing_area_per_capita", "dangerous_house"))
    assert not known.any()


def test_the_share_is_the_weight_on_known_features() -> None:
    known = np.array([[True, False], [True, True], [False, False]])
    np.testing.assert_allclose(completeness(known, np.array([3.0, 1.0])), [0.75, 1.0, 0.0])
    assert np.isnan(completeness(known, np.zeros(2))).all()  # nothing measured


def test_below_the_minimum_the_data_is_insufficient_and_the_missing_blocks_are_named() -> None:
    frames = build_feature_frames(_households(**INCOME), None, load_policy())
    model = ModelWeights(("net_income", "income_share_wages"), {"net_income": 0.7, "income_share_wages": 0.3})
    result = data_completeness(frames.known_inputs, frames.features.index, [model], minimum=0.6)
    assert result[COMPLETENESS].tolist() == [1.0, 0.0, 1.0]
    assert result[SUFFICIENT].tolist() == [True, False, True]
    assert result[MISSING_BLOCKS].tolist() == [(), ("income",), ()]
    assert missing_text(("income", "housing"), "zh") == "收入、住房"
    assert missing_text(("income", "housing"), "en") == "income, housing"


def test_the_smallest_completeness_over_the_models_counts() -> None:
    frames = build_feature_frames(_households(**INCOME, arable_land_mu=[2.0, 2.0, NAN]), None, load_policy())
    income = ModelWeights(("net_income",), {"net_income": 1.0})
    land = ModelWeights(
        ("arable_land_per_capita", "net_income"), {"arable_land_per_capita": 0.5, "net_income": 0.5}
    )
    result = data_completeness(frames.known_inputs, frames.features.index, [income, land], minimum=0.6)
    assert result[COMPLETENESS].tolist() == [1.0, 0.0, 0.5]
    assert result[MISSING_BLOCKS].tolist() == [(), ("income",), ("land",)]


def test_a_model_without_weights_holds_nothing_back() -> None:
    frames = build_feature_frames(_households(**INCOME), None, load_policy())
    result = data_completeness(
        frames.known_inputs, frames.features.index, [ModelWeights(("net_income",), {})], minimum=0.6
    )
    assert result[COMPLETENESS].isna().all()
    assert result[SUFFICIENT].all()


def test_every_block_has_a_label_in_both_languages() -> None:
    labels = block_labels()
    for block in BLOCK_ORDER:
        assert labels[block]["zh"] and labels[block]["en"]


def test_a_model_pickled_before_the_weights_existed_loads_without_them() -> None:
    model = TaskModel(
        task="poverty",
        booster=None,
        calibrator=None,  # type: ignore[arg-type]  # not used here
        feature_names=("net_income",),
        metrics={},
        trained_rounds=(1,),
        data_hash="x",
        spec=LightGBMSpec(),
        explanatory_weight={"net_income": 1.0},
    )
    state = dict(vars(model))
    del state["explanatory_weight"]
    old = object.__new__(TaskModel)
    old.__setstate__(state)
    assert old.explanatory_weight == {}
    assert pickle.loads(pickle.dumps(model)).explanatory_weight == {"net_income": 1.0}


@pytest.mark.parametrize(("column", "without"), [("income_wages", "H2"), ("arable_land_mu", "H3")])
def test_the_frame_says_which_base_columns_each_household_has(column: str, without: str) -> None:
    frames = build_feature_frames(_households(**INCOME, arable_land_mu=[2.0, 2.0, NAN]), None, load_policy())
    households = frames.features.index.get_level_values("household_id")
    assert frames.known_inputs[column].tolist() == [household != without for household in households]
