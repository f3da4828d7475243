"""The poverty evaluation on the real Costa Rica survey (skipped when the shared file is absent)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from training.evaluate import evaluate_task

from ..shared_data import costa_rica_train_csv

COSTA_RICA = costa_rica_train_csv()
pytestmark = [
    pytest.mark.realdata,
    pytest.mark.integration,
    pytest.mark.skipif(not COSTA_RICA.exists(), reason=f"{COSTA_RICA} is absent"),
]


def test_costa_rica_evaluation_shape_and_sane_values(policy):
    from survey.adapters.costa_rica import import_costa_rica
    from training.settings import load_training_settings

    survey = import_costa_rica(COSTA_RICA).survey
    settings = load_training_settings()
    settings = replace(settings, tuning=replace(settings.tuning, n_trials=2, inner_folds=2))
    report = evaluate_task(survey, "poverty", policy, seeds=(0,), settings=settings, track=True)
    assert report["levels"] == [1.0, 2.0, 3.0, 4.0]
    assert report["n_test"] == len(survey.households)
    assert set(report["baselines"]) == {
        "traditional_three",
        "proxy_means_test",
        "alkire_foster",
        "logistic_regression",
    }
    model = report["model"]
    assert 0.3 < model["macro_f1"] < 0.7
    assert 0.7 < model["roc_auc"] < 0.95
    assert model["exclusion_error"] < report["baselines"]["alkire_foster"]["exclusion_error"]
    assert model["roc_auc"] > report["baselines"]["traditional_three"]["roc_auc"]
    regions = [name for name in report["slices"] if name.startswith("region=")]
    assert len(regions) == 6
    assert {"area=urban", "area=rural", "head_sex=male", "head_sex=female"} <= set(report["slices"])
    assert "mlflow_run_id" in report
