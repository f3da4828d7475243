import math

import numpy as np
import pytest

from training.metrics import (
    METRIC_KEYS,
    binary_metrics,
    expected_calibration_error,
    reliability_table,
    top_share_mask,
)

Y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1], dtype=float)
P = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])


def test_hand_computed_metrics():
    m = binary_metrics(Y, P)
    assert set(m) == set(METRIC_KEYS)
    assert m["roc_auc"] == pytest.approx(13 / 21)  # 7 + 6 + 0 of 3 x 7 pairs ranked right
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 10) / 3)
    assert m["brier"] == pytest.approx(2.5525 / 10)
    assert m["ece"] == pytest.approx(0.425)  # one row per bin: mean |y - p| over the rows
    # coverage = observed share 0.3 -> flag the top 3 rows, 2 of them poor
    assert m["exclusion_error"] == pytest.approx(1 / 3)
    assert m["inclusion_error"] == pytest.approx(1 / 3)
    assert m["macro_f1"] == pytest.approx((4 / 6 + 12 / 14) / 2)
    # 5 % and 10 % of 10 rows both round up to the top row, which is poor
    assert m["recall_at_5pct"] == pytest.approx(1 / 3)
    assert m["recall_at_10pct"] == pytest.approx(1 / 3)
    assert m["precision_at_10pct"] == pytest.approx(1.0)


def test_explicit_coverage_changes_flagging():
    m = binary_metrics(Y, P, coverage=0.5)  # top 5 rows: 2 poor
    assert m["exclusion_error"] == pytest.approx(1 / 3)
    assert m["inclusion_error"] == pytest.approx(3 / 5)


def test_single_class_gives_nan_where_undefined():
    m = binary_metrics(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]))
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"])
    assert math.isnan(m["exclusion_error"]) and math.isnan(m["recall_at_10pct"])
    assert m["brier"] == pytest.approx((0.01 + 0.04 + 0.09 + 0.16) / 4)


def test_empty_input_is_all_nan():
    m = binary_metrics(np.array([]), np.array([]))
    assert all(math.isnan(value) for value in m.values())


def test_perfect_calibration_has_zero_ece():
    y = np.array([0, 0, 1, 1], dtype=float)
    p = np.array([0.55, 0.55, 0.55, 0.55])
    assert expected_calibration_error(y, p) == pytest.approx(0.05)
    assert expected_calibration_error(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0


def test_top_share_rounds_up_and_breaks_ties_by_order():
    mask = top_share_mask(np.array([0.5, 0.5, 0.5, 0.1]), 0.3)
    assert mask.tolist() == [True, True, False, False]


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        (np.array([0.0, 1.0]), np.array([0.5]), "shape"),
        (np.array([0.0, 2.0]), np.array([0.5, 0.5]), "0/1"),
        (np.array([0.0, 1.0]), np.array([0.5, 1.5]), "probabilities"),
        (np.array([0.0, np.nan]), np.array([0.5, 0.5]), "NaN"),
    ],
)
def test_bad_inputs_raise(y, p, message):
    with pytest.raises(ValueError, match=message):
        binary_metrics(y, p)


def test_reliability_table_bins_the_probabilities() -> None:
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    p = np.array([0.05, 0.15, 0.12, 0.95, 1.0])
    table = reliability_table(y, p)
    assert [row["bin"] for row in table] == [0.0, 0.1, 0.9]  # empty bins are left out; 1.0 is in the last
    assert [row["n"] for row in table] == [1, 2, 2]
    assert table[1]["predicted"] == pytest.approx(0.135) and table[1]["observed"] == 1.0
    assert table[2]["observed"] == 0.5
