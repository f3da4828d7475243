"""Drift between the data two training runs saw: the check `povrisk promote` runs before it moves `champion`.

What is compared: each training run logs its held-out rows (`training.tracking.HELD_OUT_ARTIFACT`: the
model's feature columns and `held_out_risk`, the risk from a model that did not see the row). For the
`poverty` task these are all the training rows (the survey's latest round, scored by cross-validation);
for `relapse` the latest usable round (the round-to-round test round). So the comparison is between the
latest round each model learned from, feature by feature (PSI, KS, missing shares), and between the two
models' held-out risk distributions. Features only one of the two models uses are listed, not compared.

The comparison is logged to MLflow as its own run tagged with the champion's training run
(`training.tracking.log_drift`) and judged against the policy's drift thresholds.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.policy import DriftThresholds, Policy
from monitoring.drift import DriftReport, drift_report
from training.tracking import held_out_rows, log_drift
from training.train import HELD_OUT_RISK, LABEL, OUTCOME_VERIFIED

NOT_FEATURES = (LABEL, HELD_OUT_RISK, OUTCOME_VERIFIED)


def shared_features(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(feature columns both frames hold, in the reference's order; columns only one of them holds)."""
    reference_features = [c for c in reference.columns if c not in NOT_FEATURES]
    current_features = [c for c in current.columns if c not in NOT_FEATURES]
    shared = [c for c in reference_features if c in set(current_features)]
    only_one = sorted(set(reference_features) ^ set(current_features))
    return shared, only_one


def held_out_drift(
    reference: pd.DataFrame, current: pd.DataFrame, thresholds: DriftThresholds
) -> tuple[DriftReport, list[str]]:
    """Drift of the current run's held-out rows from the reference run's: the report over the shared
    feature columns with the score drift of `held_out_risk`, and the features not compared."""
    features, not_compared = shared_features(reference, current)
    if not features:
        raise ValueError("the two training runs share no feature column: nothing to compare")
    report = drift_report(
        reference, current, thresholds, reference[HELD_OUT_RISK], current[HELD_OUT_RISK], features
    )
    return report, not_compared


def training_data_drift(
    task: str, champion_run_id: str, challenger_run_id: str, policy: Policy
) -> dict[str, Any]:
    """Compare the challenger's training data with the champion's, log the comparison to MLflow (tagged
    with the champion's training run) and return the verdict `training.tracking.promote` reads:
    `exceeds_policy`, `reason`, the summary, the score drift and the id of the drift run."""
    report, not_compared = held_out_drift(
        held_out_rows(champion_run_id), held_out_rows(challenger_run_id), policy.drift
    )
    document = report.as_dict() | {"features_not_compared": not_compared, "policy_version": policy.version}
    drift_run_id = log_drift(
        task, document, report.metrics(), reference_run_id=champion_run_id, current_run_id=challenger_run_id
    )
    return {
        "exceeds_policy": report.exceeds_policy,
        "reason": report.reason,
        "summary": document["summary"],
        "score": document["score"],
        "thresholds": document["thresholds"],
        "features_not_compared": not_compared,
        "drift_run_id": drift_run_id,
        "reference_run_id": champion_run_id,
    }
