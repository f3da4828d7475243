"""Drift measures on synthetic columns whose answer is known: the same distribution, a shifted one,
missing values, discrete columns; and the summary and verdict against the policy's thresholds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from features.policy import DriftThresholds, PolicyError, load_policy, policy_from_mapping
from monitoring.drift import (
    DRIFT_COLUMNS,
    EMPTY_BIN_SHARE,
    bin_shares,
    drift_report,
    drift_summary,
    feature_drift_table,
    ks_test,
    missing_share,
    population_stability_index,
    psi_from_shares,
    quantile_edges,
    score_drift,
)

THRESHOLDS = DriftThresholds(psi_threshold=0.2, max_drifted_share=0.25, bins=10)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_psi_is_near_zero_for_the_same_distribution(rng: np.random.Generator) -> None:
    reference, current = rng.normal(size=20_000), rng.normal(size=20_000)
    assert population_stability_index(reference, current) < 0.01
    assert population_stability_index(reference, reference) == pytest.approx(0.0, abs=1e-12)


def test_psi_is_above_the_threshold_for_a_shifted_distribution(rng: np.random.Generator) -> None:
    reference = rng.normal(size=20_000)
    assert population_stability_index(reference, rng.normal(0.6, 1.0, size=20_000)) > 0.2
    slightly = population_stability_index(reference, rng.normal(0.1, 1.0, size=20_000))
    assert 0.0 < slightly < 0.1, "a small shift is a small PSI"


def test_psi_matches_the_formula_on_hand_counted_bins() -> None:
    reference = np.array([1.0, 2.0, 3.0, 4.0])
    current = np.array([1.0, 1.0, 1.0, 4.0])
    edges = quantile_edges(np.sort(reference), bins=2)
    assert edges.tolist() == [2.0]  # an observed value: bins (-inf, 2] and (2, inf)
    reference_shares, current_shares = (
        bin_shares(np.sort(reference), edges),
        bin_shares(np.sort(current), edges),
    )
    assert reference_shares.tolist() == [0.5, 0.5] and current_shares.tolist() == [0.75, 0.25]
    expected = (0.75 - 0.5) * np.log(0.75 / 0.5) + (0.25 - 0.5) * np.log(0.25 / 0.5)
    assert population_stability_index(reference, current, bins=2) == pytest.approx(expected)


def test_an_empty_bin_is_floored_not_infinite() -> None:
    psi = psi_from_shares(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    expected = 0.5 * np.log(1.0 / 0.5) + (EMPTY_BIN_SHARE - 0.5) * np.log(EMPTY_BIN_SHARE / 0.5)
    assert np.isfinite(psi) and psi == pytest.approx(expected)


def test_a_discrete_column_gets_one_bin_per_value_and_a_changed_rate_drifts() -> None:
    reference = np.array([0.0] * 70 + [1.0] * 30)
    edges = quantile_edges(np.sort(reference), bins=10)
    assert edges.tolist() == [0.0, 1.0], "repeated deciles collapse"
    assert population_stability_index(reference, reference[::-1]) == pytest.approx(0.0)
    flipped = 1.0 - reference  # 30 % -> 70 % ones
    assert population_stability_index(reference, flipped) > 0.2


def test_missing_values_are_left_out_of_psi_and_ks_and_reported_as_shares(rng: np.random.Generator) -> None:
    reference = rng.normal(size=5_000)
    current = rng.normal(size=5_000)
    current[:1_000] = np.nan
    assert missing_share(current) == pytest.approx(0.2)
    assert missing_share(reference) == 0.0
    observed = current[~np.isnan(current)]
    assert population_stability_index(reference, current) == pytest.approx(
        population_stability_index(reference, observed)
    )
    assert ks_test(reference, current) == pytest.approx(ks_test(reference, observed))
    assert np.isnan(population_stability_index(reference, np.full(10, np.nan)))
    assert all(np.isnan(ks_test(np.full(10, np.nan), reference)))


def test_ks_p_value_is_large_for_the_same_distribution_and_tiny_for_a_shift(rng: np.random.Generator) -> None:
    same_statistic, same_p = ks_test(rng.normal(size=800), rng.normal(size=900))
    shifted_statistic, shifted_p = ks_test(rng.normal(size=800), rng.normal(0.5, 1.0, size=900))
    assert same_p > 0.01 and shifted_p < 1e-6
    assert shifted_statistic > same_statistic


def test_ks_agrees_with_scipy_small_samples_exact_and_large_ones_asymptotic(rng: np.random.Generator) -> None:
    small_a, small_b = rng.normal(size=300), rng.normal(0.2, 1.0, size=310)
    expected = ks_2samp(small_a, small_b, method="exact")
    assert ks_test(small_a, small_b) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-12)
    for large_a, large_b in (
        (rng.normal(size=30_000), rng.normal(0.02, 1.0, size=25_000)),
        (rng.integers(0, 6, 30_000).astype(float), rng.integers(0, 6, 25_001).astype(float)),  # ties
    ):
        statistic, pvalue = ks_test(large_a, large_b)
        expected = ks_2samp(large_a, large_b, method="asymp")
        assert statistic == pytest.approx(expected.statistic, rel=1e-12)
        assert pvalue == pytest.approx(expected.pvalue, rel=0.02, abs=1e-12)


def test_drift_table_lists_every_feature_and_flags_the_shifted_ones(rng: np.random.Generator) -> None:
    n = 4_000
    reference = pd.DataFrame(
        {
            "stable": rng.normal(size=n),
            "shifted": rng.normal(size=n),
            "rate": (rng.random(n) < 0.2).astype(float),
            "gaps": rng.normal(size=n),
        }
    )
    current = pd.DataFrame(
        {
            "stable": rng.normal(size=n),
            "shifted": rng.normal(1.0, 1.0, size=n),
            "rate": (rng.random(n) < 0.6).astype(float),
            "gaps": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        }
    )
    table = feature_drift_table(reference, current, psi_threshold=0.2)
    assert list(table.columns) == list(DRIFT_COLUMNS)
    assert table["feature"].tolist() == ["stable", "shifted", "rate", "gaps"]
    by_feature = table.set_index("feature")
    assert by_feature["drifted"].to_dict() == {"stable": False, "shifted": True, "rate": True, "gaps": False}
    assert by_feature.loc["gaps", "missing_current"] == pytest.approx(0.1, abs=0.02)
    assert by_feature.loc["gaps", "missing_reference"] == 0.0
    assert by_feature.loc["shifted", "ks_pvalue"] < 1e-6 < by_feature.loc["stable", "ks_pvalue"]

    summary = drift_summary(table)
    assert summary.drifted_features[0] in {"shifted", "rate"} and set(summary.drifted_features) == {
        "shifted",
        "rate",
    }
    assert summary.share_drifted == 0.5
    assert summary.max_psi == pytest.approx(table["psi"].max())
    assert summary.max_psi_feature == summary.drifted_features[0]


def test_drift_table_names_absent_and_non_numeric_columns() -> None:
    reference = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    with pytest.raises(ValueError, match=r"lacks the feature columns \['a'\]"):
        feature_drift_table(reference, pd.DataFrame({"b": ["x", "y"]}), features=["a"])
    with pytest.raises(ValueError, match=r"non-numeric feature columns \['b'\]"):
        feature_drift_table(reference, reference)
    with pytest.raises(ValueError, match="0 current rows"):
        feature_drift_table(reference[["a"]], reference[["a"]].iloc[:0])


def test_score_drift_reports_psi_ks_and_the_mean_shift(rng: np.random.Generator) -> None:
    reference = rng.beta(2, 8, size=5_000)
    same = score_drift(reference, rng.beta(2, 8, size=5_000))
    riskier = score_drift(reference, rng.beta(4, 6, size=5_000))
    assert same.psi < 0.02 and riskier.psi > 0.2
    assert riskier.mean_shift == pytest.approx(0.4 - 0.2, abs=0.01)
    assert riskier.ks_pvalue < 1e-6 < same.ks_pvalue
    with pytest.raises(ValueError, match="non-missing score"):
        score_drift(reference, np.full(3, np.nan))


def test_report_verdict_follows_the_policy_share_and_is_valid_json(rng: np.random.Generator) -> None:
    n = 2_000
    columns = {f"x{i}": rng.normal(size=n) for i in range(4)}
    reference = pd.DataFrame(columns)
    current = reference.copy()
    current["x0"] = current["x0"] + 1.5  # one of four drifts: share 0.25
    current.loc[:10, "x1"] = np.nan
    at_limit = drift_report(reference, current, THRESHOLDS, rng.random(n), rng.random(n))
    assert at_limit.summary.share_drifted == 0.25 and not at_limit.exceeds_policy
    assert "1 of 4 features drifted" in at_limit.reason and "x0" in at_limit.reason
    stricter = DriftThresholds(psi_threshold=0.2, max_drifted_share=0.2, bins=10)
    beyond = drift_report(reference, current, stricter)
    assert beyond.exceeds_policy and "above" in beyond.reason
    assert beyond.score is None and "drift_score_psi" not in beyond.metrics()

    metrics = at_limit.metrics()
    assert metrics["drift_share_drifted"] == 0.25 and metrics["drift_n_drifted"] == 1.0
    assert metrics["drift_max_psi"] == pytest.approx(at_limit.summary.max_psi)
    assert "drift_score_mean_shift" in metrics
    document = json.loads(json.dumps(at_limit.as_dict(), allow_nan=False))
    assert document["exceeds_policy"] is False
    assert [row["feature"] for row in document["features"]] == ["x0", "x1", "x2", "x3"]
    assert document["thresholds"] == {"psi_threshold": 0.2, "max_drifted_share": 0.25, "bins": 10}


def test_an_all_missing_feature_has_no_psi_and_is_not_counted_drifted() -> None:
    reference = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [np.nan] * 3})
    table = feature_drift_table(reference, reference)
    row = table.set_index("feature").loc["b"]
    assert np.isnan(row["psi"]) and not row["drifted"] and row["missing_current"] == 1.0
    report = drift_report(reference, reference, THRESHOLDS)
    assert report.summary.max_psi_feature == "a"
    assert json.loads(json.dumps(report.as_dict(), allow_nan=False))["features"][1]["psi"] is None


def test_policy_carries_drift_thresholds_and_rejects_bad_ones() -> None:
    policy = load_policy()
    assert (policy.drift.psi_threshold, policy.drift.max_drifted_share, policy.drift.bins) == (0.2, 0.25, 10)
    settings = policy.model_dump()
    settings["drift"] = {"psi_threshold": 0.2, "max_drifted_share": 1.5, "bins": 10}
    with pytest.raises(PolicyError, match=r"drift\.max_drifted_share"):
        policy_from_mapping(settings)
    settings["drift"] = {"psi_threshold": 0.2, "max_drifted_share": 0.2, "bins": 1}
    with pytest.raises(PolicyError, match=r"drift\.bins"):
        policy_from_mapping(settings)
    del settings["drift"]
    with pytest.raises(PolicyError, match="drift"):
        policy_from_mapping(settings)


def test_ks_statistic_equals_scipys_on_many_small_tied_and_untied_samples() -> None:
    from monitoring.drift import _ks_statistic_sorted

    rng = np.random.default_rng(11)
    for trial in range(500):
        n, m, levels = rng.integers(1, 40), rng.integers(1, 40), rng.integers(1, 8)
        a = rng.integers(0, levels, n) + (rng.random(n) if trial % 3 == 0 else 0.0)
        b = rng.integers(0, levels, m) + (rng.random(m) if trial % 5 == 0 else 0.0) + 0.5 * (trial % 7 == 0)
        a, b = np.sort(a.astype(float)), np.sort(b.astype(float))
        expected = ks_2samp(a, b, method="asymp").statistic
        assert _ks_statistic_sorted(a, b) == pytest.approx(expected, abs=1e-12), (a, b)
