"""Relapse evaluation: every round-to-round split of a 4-round simulated county, the oracle beside it."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluate import NAIVE_BASELINE, evaluate_task, versus_oracle

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report(policy):
    from survey.simulate import CountySettings, simulate_county

    county = simulate_county(CountySettings(households=800, villages=30, rounds=4, monte_carlo_draws=20))
    return evaluate_task(county, "relapse", policy, seeds=(0,), track=False)


def test_every_split_trains_on_the_past_and_tests_on_the_next_round(report):
    # relapse labels exist for rounds 0-2 (round 3 has no next round): two splits
    assert [(split["train_rounds"], split["test_round"]) for split in report["splits"]] == [
        ([0], 1),
        ([0, 1], 2),
    ]
    assert report["n_test"] == sum(split["n_test"] for split in report["splits"])


def test_the_headline_is_the_mean_over_splits(report):
    for scorer in ("model", "oracle"):
        per_split = [split[scorer]["roc_auc"] for split in report["splits"]]
        assert report[scorer]["roc_auc"] == pytest.approx(np.mean(per_split))
    per_split = [split["baselines"][NAIVE_BASELINE]["pr_auc"] for split in report["splits"]]
    assert report["baselines"][NAIVE_BASELINE]["pr_auc"] == pytest.approx(np.mean(per_split))


def test_the_model_is_set_against_the_oracle_and_the_naive_rule(report):
    gap = report["vs_oracle"]
    assert gap["roc_auc_gap"] == pytest.approx(report["oracle"]["roc_auc"] - report["model"]["roc_auc"])
    assert gap["pr_auc_gap"] == pytest.approx(report["oracle"]["pr_auc"] - report["model"]["pr_auc"])
    assert all("vs_oracle" in split for split in report["splits"])
    assert report["oracle"]["roc_auc"] > report["baselines"][NAIVE_BASELINE]["roc_auc"]


def test_gap_closed_is_the_share_of_the_naive_rule_s_distance_to_the_oracle():
    made_up = {
        "model": {"roc_auc": 0.80, "pr_auc": 0.30},
        "oracle": {"roc_auc": 0.85, "pr_auc": 0.40},
        "baselines": {NAIVE_BASELINE: {"roc_auc": 0.75, "pr_auc": 0.20}},
    }
    assert versus_oracle(made_up) == pytest.approx(
        {"roc_auc_gap": 0.05, "pr_auc_gap": 0.10, "roc_auc_gap_closed": 0.5}
    )
    made_up["baselines"][NAIVE_BASELINE]["roc_auc"] = 0.85  # no gap to close
    assert versus_oracle(made_up)["roc_auc_gap_closed"] is None
