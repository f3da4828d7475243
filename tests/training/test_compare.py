"""Challenger against champion with bootstrap intervals, the promotion's interval rule, and what each
registered version says about itself (a real MLflow SQLite store)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from models.spec import LightGBMSpec
from training.bootstrap import (
    SortedScores,
    bootstrap_differences,
    household_weights,
    paired_bootstrap,
    weighted_metrics,
)
from training.compare import better_of, compare_models
from training.metrics import METRIC_KEYS, binary_metrics
from training.settings import ComparisonSettings, PromotionRule, load_training_settings
from training.tracking import AREAS_ARTIFACT, HELD_OUT_ARTIFACT, log_and_register, promote, tracking_uri
from training.train import train_task


def test_a_resample_draws_whole_households_as_many_as_there_are() -> None:
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    weights = household_weights(groups, 200, np.random.default_rng(0))
    assert weights.shape == (200, 6)
    # the rows of a household are drawn together, as often as the household is
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 3] == weights[:, 5]).all()
    assert (weights[:, [0, 2, 3]].sum(axis=1) == 3).all(), "three households drawn each time"


def test_weighted_metrics_are_binary_metrics_of_the_resample_written_out() -> None:
    rng = np.random.default_rng(3)
    for trial in range(60):
        n = int(rng.integers(2, 40))
        y = (rng.random(n) < 0.4).astype(float)
        tied = np.round(rng.random(n), 1)  # many ties, as an isotonic calibrator gives
        coverage = None if trial % 2 else 0.3
        every_row_once = weighted_metrics(SortedScores.of(y, tied), np.ones((1, n)), coverage)
        _assert_same(every_row_once, binary_metrics(y, tied, coverage))
        distinct = rng.random(n)
        counts = rng.integers(0, 3, size=n)
        if counts.sum() == 0:
            continue
        resample = np.repeat(np.arange(n), counts)
        weighted = weighted_metrics(SortedScores.of(y, distinct), counts[None, :].astype(float), coverage)
        _assert_same(weighted, binary_metrics(y[resample], distinct[resample], coverage))


def _assert_same(weighted: dict[str, np.ndarray], expected: dict[str, float]) -> None:
    for key in METRIC_KEYS:
        assert weighted[key][0] == pytest.approx(expected[key], abs=1e-12, nan_ok=True), key


def test_identical_models_differ_by_exactly_nothing() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(float)
    p = np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.15, 400), 0, 1)
    intervals = paired_bootstrap(y, p, p, np.repeat(np.arange(200), 2), replicates=200)
    assert set(intervals) == set(METRIC_KEYS)
    assert all(interval == (0.0, 0.0) for interval in intervals.values())


def test_the_bootstrap_is_seeded() -> None:
    rng = np.random.default_rng(2)
    households = np.repeat(np.arange(300), 3)
    y = (rng.random(900) < 0.25).astype(float)
    a, b = rng.random(900), rng.random(900)
    first = bootstrap_differences(y, a, b, households, 0.2, replicates=50, seed=5)
    assert all(len(values) == 50 for values in first.values())
    again = bootstrap_differences(y, a, b, households, 0.2, replicates=50, seed=5)
    other = bootstrap_differences(y, a, b, households, 0.2, replicates=50, seed=6)
    assert np.array_equal(first["roc_auc"], again["roc_auc"])
    assert not np.array_equal(first["roc_auc"], other["roc_auc"])


def test_a_clearly_better_model_has_an_interval_that_excludes_zero() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.3).astype(float)
    good = np.clip(0.3 + 0.5 * (y - 0.3) + rng.normal(0, 0.15, 2000), 0, 1)
    noise = rng.random(2000)
    low, high = paired_bootstrap(y, good, noise, np.arange(2000), replicates=200)["roc_auc"]
    assert 0 < low < high
    point = binary_metrics(y, good)["roc_auc"] - binary_metrics(y, noise)["roc_auc"]
    assert low < point < high
    assert better_of("roc_auc", low, high) == "challenger"
    assert better_of("brier", -0.02, -0.01) == "challenger" and better_of("brier", -0.01, 0.01) == "neither"


def test_the_interval_rule_needs_the_worse_end_above_the_floor() -> None:
    rule = PromotionRule(metric="roc_auc", min_improvement=0.0, interval_floor=-0.005)
    assert rule.challenger_wins(0.80, 0.79, (-0.004, 0.024))
    assert not rule.challenger_wins(0.80, 0.79, (-0.012, 0.032)), "could as well be a loss"
    assert not rule.challenger_wins(0.79, 0.79, (0.0, 0.0)), "no gain"
    assert rule.challenger_wins(0.80, 0.79, None), "without paired rows: the point rule alone"
    brier = PromotionRule(metric="brier", higher_is_better=False, interval_floor=-0.001)
    assert brier.challenger_wins(0.090, 0.092, (-0.004, 0.0005))
    assert not brier.challenger_wins(0.090, 0.092, (-0.004, 0.002))
    with pytest.raises(ValueError, match="replicates"):
        PromotionRule(replicates=0)


@pytest.mark.integration
def test_compare_changes_nothing_and_promote_applies_the_interval(
    monkeypatch, tmp_path, county, policy, trained
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(LookupError, match="no 'challenger'"):
        compare_models("poverty", policy=policy)
    log_and_register(trained["poverty"], policy, source="county:示范县")
    promote("poverty", policy)
    with pytest.raises(LookupError, match="already is the champion"):
        compare_models("poverty", policy=policy)
    stumps = replace(LightGBMSpec(), num_leaves=2, n_estimators=2, feature_fraction=0.1)
    worse = train_task(county, "poverty", policy, spec=stumps, settings=_lightgbm_only())
    registered = log_and_register(worse, policy, source="county:示范县", survey=county)
    client = MlflowClient(tracking_uri())
    logged = {item.path for item in client.list_artifacts(registered["run_id"], "held_out")}
    assert logged == {HELD_OUT_ARTIFACT, AREAS_ARTIFACT}
    small_areas = replace(load_training_settings(), comparison=ComparisonSettings(min_area_households=40))

    # the areas come with the challenger's logged rows: no survey needed
    comparison = compare_models("poverty", policy=policy, replicates=200, settings=small_areas)
    assert str(client.get_model_version_by_alias("povrisk-poverty", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("povrisk-poverty", "challenger").version) == "2"
    assert (comparison.challenger_version, comparison.champion_version) == (2, 1)
    assert "same rows" in comparison.how and comparison.rows == len(trained["poverty"].held_out)
    auc = comparison.metrics.loc["roc_auc"]
    assert auc["difference"] < 0 and auc["low"] <= auc["difference"] <= auc["high"]
    assert auc["better"] == "champion"
    assert set(comparison.calibration["model"]) == {"challenger", "champion"}
    assert "survey labels" in set(comparison.calibration["labels"])
    assert set(comparison.calibration["calibrated_against"]) <= {"survey", "verified"}
    by_area = comparison.by_area
    assert not by_area.empty and set(by_area["level"]) <= {"township", "village"}
    assert (by_area["households"] >= 40).all() and set(by_area["metric"]) == set(comparison.metrics.index)
    intervals = by_area.dropna(subset=["low", "high"])  # NaN where too few resamples hold both classes
    assert not intervals.empty and (intervals["low"] <= intervals["high"]).all()
    assert comparison.decision["promoted"] is False
    assert set(comparison.figures()) == {"differences.png", "calibration.png"}
    document = comparison.to_dict()
    assert document["metrics"][0]["metric"] == "roc_auc" and document["decision"]["promoted"] is False

    refused = promote("poverty", policy)
    assert not refused["promoted"] and "95% interval of the difference" in refused["reason"]
    assert refused["difference_interval"][0] < 0

    # a challenger logged without its rows' areas: the survey given finds them by the hashed household ids
    log_and_register(worse, policy, source="county:示范县")
    assert compare_models("poverty", policy=policy, replicates=50, settings=small_areas).by_area.empty
    from_survey = compare_models("poverty", policy=policy, replicates=50, settings=small_areas, survey=county)
    columns = ["level", "area", "households", "metric"]
    assert from_survey.by_area[columns].equals(by_area[columns])

    # a survey folder's name does not say which county it holds: another folder is no other county
    log_and_register(worse, policy, source="round-2025-folder")
    assert "another county" not in promote("poverty", policy)["reason"]
    # a champion trained on another county's data gives way
    log_and_register(trained["poverty"], policy, source="county:东乡")
    moved = promote("poverty", policy)
    assert moved["promoted"] and "another county's data" in moved["reason"]


@pytest.mark.integration
def test_every_registered_version_describes_itself(monkeypatch, tmp_path, policy, trained):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    registered = log_and_register(trained["relapse"], policy, source="county:示范县")
    version = MlflowClient(tracking_uri()).get_model_version("povrisk-relapse", str(registered["version"]))
    model = trained["relapse"].model
    assert version.tags["source"] == "county:示范县"
    assert version.tags["data_hash"] == model.data_hash
    assert version.tags["trained_rounds"] == str(list(model.trained_rounds))
    assert version.tags["candidate"] == model.candidate
    assert float(version.tags["metric.roc_auc"]) == pytest.approx(
        trained["relapse"].metrics["roc_auc"], abs=1e-5
    )
    description = version.description
    assert description.startswith(f"relapse model: {model.candidate}")
    assert "county:示范县" in description and model.data_hash in description and "roc_auc" in description
    assert "kept: lowest cross-fitted out-of-fold Brier" in description


def _lightgbm_only():  # type: ignore[no-untyped-def]
    from training.settings import ModelCandidates, load_training_settings

    return replace(load_training_settings(), candidates=ModelCandidates(blend_weights=(0.0,)))
