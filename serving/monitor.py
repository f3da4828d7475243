"""`povrisk monitor`: two rounds scored with the same models, their transitions, drift and the report.

Both rounds are scored by the same predictor (the champions), so movements between categories reflect
the households, not a change of model. Drift compares the current round's model features and scores with
the previous round's (`monitoring.drift`; thresholds in the policy's `drift` settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.explain import Language
from models.predictor import RiskPredictor
from monitoring.drift import feature_drift_table, score_drift
from monitoring.report import monitoring_report_html
from monitoring.transitions import TRANSITIONS, category_movements, household_transitions, transition_counts
from serving.batch import flag_list, larger_risk, round_facts, scored_round
from survey.io import Survey


@dataclass(frozen=True)
class MonitorResult:
    """Everything `povrisk monitor` writes: per-household transitions, counts by village (+ county),
    category movements, the current round's flag list, the drift table and score drift, the summary."""

    transitions: pd.DataFrame
    counts: pd.DataFrame
    movements: pd.DataFrame
    flags: pd.DataFrame
    drift: pd.DataFrame
    score_drift: dict[str, Any]
    summary: dict[str, Any]

    def report_html(self, lang: Language = "zh", cases: pd.DataFrame | None = None) -> str:
        """The report in `lang`; `cases`: the flag store's cases of the county, by village and status."""
        return monitoring_report_html(
            lang=lang,
            cases=cases,
            summary=self.summary,
            counts=self.counts,
            movements=self.movements,
            flags=self.flags,
            drift=self.drift,
            score_drift=self.score_drift,
        )


def model_features(predictor: RiskPredictor) -> list[str]:
    """The features of both models, each once, in model order (those drift is measured on)."""
    names: list[str] = []
    for model in (predictor.poverty, predictor.relapse):
        if model is not None:
            names += [name for name in model.feature_names if name not in names]
    return names


def monitor_rounds(
    predictor: RiskPredictor, survey: Survey, previous: int, current: int, lang: Language = "zh"
) -> MonitorResult:
    """Score both rounds and compare them (module docstring)."""
    if previous >= current:
        raise ValueError(f"--previous ({previous}) must be an earlier round than --current ({current})")
    policy = predictor.policy
    before = scored_round(predictor, survey, previous, lang, explain=False)  # categories and risks only
    now = scored_round(predictor, survey, current, lang)
    transitions = household_transitions(round_facts(before, survey, policy), round_facts(now, survey, policy))
    counts = transition_counts(transitions)
    features = model_features(predictor)
    drift = feature_drift_table(
        before.features,
        now.features,
        psi_threshold=policy.drift.psi_threshold,
        bins=policy.drift.bins,
        features=features,
    )
    scores = score_drift(larger_risk(before.scores), larger_risk(now.scores), bins=policy.drift.bins)
    flags = flag_list(predictor, now)
    county_row = counts.loc["county"].to_numpy(dtype=np.int64)
    county = {str(name): int(value) for name, value in zip(counts.columns, county_row, strict=True)}
    summary: dict[str, Any] = {
        "previous_round": int(previous),
        "current_round": int(current),
        "households": county["households"],
        "flagged_now": len(flags),
        **{name: county[name] for name in TRANSITIONS},
        "drifted_features": int(drift["drifted"].sum()),
        "policy_version": policy.version,
    }
    return MonitorResult(
        transitions, counts, category_movements(transitions), flags, drift, scores.as_dict(), summary
    )
