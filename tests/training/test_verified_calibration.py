"""Calibration on field-verified rows, and the rule that decides when a task uses it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from models.spec import LightGBMSpec
from training.settings import TrainingSettings, VerifiedCalibration
from training.train import TaskData, calibration_rows, fit_calibrated

FAST = LightGBMSpec(num_leaves=4, n_estimators=30, early_stopping_rounds=5, min_child_samples=10)


def _synthetic(n: int = 1_500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * x - 1)))).astype(float)
    return pd.DataFrame({"x": x, "noise": rng.normal(size=n)}), y, np.arange(n).astype(str)


def test_the_calibrator_learns_the_verified_rows_rate_not_everyone_s() -> None:
    X, y, groups = _synthetic()
    rng = np.random.default_rng(1)
    # a sample that over-represents positives: calibrated on it, the mean risk must follow it
    biased = (y == 1) | (rng.random(len(y)) < 0.2)
    everyone = fit_calibrated(X, y, groups, [FAST], seed=0, folds=3)
    on_sample = fit_calibrated(X, y, groups, [FAST], seed=0, folds=3, calibrate_on=biased)
    assert everyone.calibrated_on == len(y) and on_sample.calibrated_on == int(biased.sum())
    margin = everyone.oof_margin
    assert everyone.calibrator.transform(margin).mean() == pytest.approx(y.mean(), abs=0.03)
    assert on_sample.calibrator.transform(on_sample.oof_margin).mean() > y.mean() + 0.1
    # the booster itself is the same: calibration rows never change what the model is trained on
    np.testing.assert_allclose(everyone.oof_margin, on_sample.oof_margin)


def _task_data(task: str, verified: np.ndarray | None, y: np.ndarray) -> TaskData:
    index = pd.MultiIndex.from_arrays([np.arange(len(y)).astype(str), np.zeros(len(y), dtype=int)])
    return TaskData(
        task, pd.DataFrame({"x": y}, index=index), pd.Series(y, index=index), ("x",), None, verified
    )  # type: ignore[arg-type]


def test_verified_rows_are_used_only_for_the_listed_tasks_and_with_enough_of_each_class() -> None:
    y = np.array([1.0] * 40 + [0.0] * 160)
    verified = np.zeros(len(y), dtype=bool)
    verified[:35] = True  # 35 positives
    verified[40:80] = True  # 40 negatives
    settings = TrainingSettings(
        verified_calibration=VerifiedCalibration(tasks=("relapse",), min_per_class=30)
    )
    everyone = np.arange(len(y))
    np.testing.assert_array_equal(
        calibration_rows(_task_data("relapse", verified, y), everyone, settings), verified
    )
    assert calibration_rows(_task_data("poverty", verified, y), everyone, settings) is None
    assert calibration_rows(_task_data("relapse", None, y), everyone, settings) is None
    stricter = replace(
        settings, verified_calibration=VerifiedCalibration(tasks=("relapse",), min_per_class=36)
    )
    assert calibration_rows(_task_data("relapse", verified, y), everyone, stricter) is None
    # only the rows at the given positions count (e.g. a round-to-round split's training rounds)
    first_half = np.arange(100)
    assert calibration_rows(_task_data("relapse", verified, y), first_half, settings) is not None
    assert calibration_rows(_task_data("relapse", verified, y), np.arange(30, 200), settings) is None


def test_default_settings_calibrate_relapse_on_verified_rows() -> None:
    from training.settings import load_training_settings

    rule = load_training_settings().verified_calibration
    assert rule.tasks == ("relapse",) and rule.min_per_class >= 10
    with pytest.raises(ValueError, match="min_per_class"):
        VerifiedCalibration(min_per_class=0)
