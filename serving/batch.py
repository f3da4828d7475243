"""Batch scoring: one survey round in, the monitoring flag list out.

The flag list holds every household of the round that falls into a monitoring category (see
`monitoring.categories`); households that are "not_monitored" are left out. Each row carries both risks,
the tier (none where the data is insufficient), the category and the rule that set it, the data completeness
and the missing blocks (features/completeness.py), the main and secondary causes of poverty
(`monitoring.causes`), the top reasons (as text and as JSON) and the models that scored it, sorted by
village and then by risk (the larger of the two, highest first).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.completeness import COMPLETENESS, MISSING_BLOCKS, missing_text
from features.frame import FeatureFrames, build_feature_frames, survey_years
from features.labels import poor_now, survey_label
from features.policy import Policy
from models.explain import Language
from models.predictor import RiskPredictor, TaskModel
from monitoring.categories import NOT_MONITORED, monitoring_category
from monitoring.causes import assign_causes
from survey.io import Survey

MODEL_NAME_PREFIX = "povrisk-"
REASON_SEPARATOR = "; "
FLAG_COLUMNS = (
    "household_id",
    "village_id",
    "round",
    "poverty_risk",
    "relapse_risk",
    "risk_tier",
    "category",
    "category_rule",
    "data_completeness",
    "missing_data",
    "main_cause",
    "secondary_causes",
    "reasons",
    "reasons_json",
    "model_name",
    "model_version",
)


@dataclass(frozen=True)
class ScoredRound:
    """Every household of one round: features, scores with reasons, monitoring category, village."""

    features: pd.DataFrame
    scores: pd.DataFrame
    categories: pd.DataFrame
    villages: pd.Series
    lang: Language = "zh"


def score_round(
    predictor: RiskPredictor,
    survey: Survey,
    round: int,
    lang: Language = "zh",
    model_versions: Mapping[str, str] | None = None,
    top_k: int = 3,
) -> pd.DataFrame:
    """The flag list of one round (columns FLAG_COLUMNS; one row per monitored household).

    Earlier rounds of `survey` feed the trend indicators. Models loaded from the MLflow registry are
    identified by their registered name and version; `model_versions` (e.g. {"poverty": "3"}) overrides
    a task's version; an unregistered model without one is identified by its training data hash.
    `model_name` and `model_version` list the tasks' models joined by ";" in the same order.
    """
    return flag_list(predictor, scored_round(predictor, survey, round, lang, top_k), model_versions)


def flag_list(
    predictor: RiskPredictor, scored: ScoredRound, model_versions: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The flag list (see `score_round`) of an already scored round."""
    features, scores, categories = scored.features, scored.scores, scored.categories
    model_name, model_version = model_identity(predictor, model_versions or {})
    flags = pd.DataFrame(
        {
            "household_id": features.index.get_level_values("household_id").astype(str),
            "round": features.index.get_level_values("round").astype("int64"),
            "poverty_risk": scores["poverty_risk"].to_numpy(),
            "relapse_risk": scores["relapse_risk"].to_numpy(),
            "risk_tier": tier_values(scores["risk_tier"]),
            "category": categories["category"].to_numpy(),
            "category_rule": categories["rule"].to_numpy(),
            "data_completeness": scores[COMPLETENESS].to_numpy(dtype=np.float64),
            "missing_data": [missing_text(blocks, scored.lang) for blocks in scores[MISSING_BLOCKS].tolist()],
            "model_name": model_name,
            "model_version": model_version,
        }
    )
    monitored = np.flatnonzero(flags["category"].to_numpy() != NOT_MONITORED)
    all_reasons = scores["reasons"].to_numpy()
    reasons = [all_reasons[position] for position in monitored]
    causes = assign_causes(features.iloc[monitored], reasons)
    flags = flags.iloc[monitored].assign(
        village_id=flags["household_id"].iloc[monitored].map(scored.villages).astype(str).to_numpy(),
        main_cause=causes["main_cause"].to_numpy(),
        secondary_causes=causes["secondary_causes"].to_numpy(),
        reasons=[reasons_text(household) for household in reasons],
        reasons_json=[reasons_json(household) for household in reasons],
    )
    return _sorted_flags(flags).loc[:, list(FLAG_COLUMNS)].reset_index(drop=True)


def scored_round(
    predictor: RiskPredictor,
    survey: Survey,
    round: int,
    lang: Language = "zh",
    top_k: int = 3,
    explain: bool = True,
) -> ScoredRound:
    """Features, scores and categories of every household of `round` (earlier rounds feed the trends);
    reasons for the monitored households only (none at all without `explain`)."""
    households = survey.households
    current = households.loc[households["round"] == round]
    if current.empty:
        raise ValueError(f"survey has no households in round {round}")
    frames = _round_frames(predictor, survey, current, round)
    features = frames.features
    risks = predictor.risks(features, frames.known_inputs)
    years = survey_years(current, current["round"].to_numpy(dtype=np.int64), predictor.policy)
    categories = monitoring_category(features, risks, predictor.policy, years, lang)
    monitored = categories["category"].to_numpy() != NOT_MONITORED
    reasons = predictor.reasons(features, risks["reason_model"].to_numpy(), monitored & explain, lang, top_k)
    scores = risks.assign(reasons=pd.Series(reasons, index=features.index, dtype=object))
    villages = (
        current[["household_id", "village_id"]]
        .drop_duplicates("household_id")
        .set_index("household_id")["village_id"]
    )
    return ScoredRound(features, scores, categories, villages, lang)


def round_facts(scored: ScoredRound, survey: Survey, policy: Policy) -> pd.DataFrame:
    """The round's facts for `monitoring.transitions` (index household_id): village, poverty label
    (the survey's own label where it has one, else the indicator rule), registered poor / exited,
    monitoring category."""
    features = scored.features
    poor = poor_now(features, policy, survey_label(survey.households))
    households = features.index.get_level_values("household_id").astype(str)
    return pd.DataFrame(
        {
            "village_id": scored.villages.reindex(households).astype(str).to_numpy(),
            "poor": poor.to_numpy(dtype=np.float64),
            "identified": features["registered_poor"].to_numpy(dtype=np.float64),
            "exited": features["exited_poverty"].to_numpy(dtype=np.float64),
            "category": scored.categories["category"].to_numpy(),
        },
        index=pd.Index(households, name="household_id"),
    )


def _round_frames(
    predictor: RiskPredictor, survey: Survey, current: pd.DataFrame, round: int
) -> FeatureFrames:
    """Feature frames of the round's households (`current`), with earlier rounds as history for the trend
    indicators."""
    households = survey.households
    history = households.loc[households["round"] < round]
    members = survey.members
    if members is not None:
        members = members.loc[members["round"] <= round]
    return build_feature_frames(current, members, predictor.policy, history if len(history) else None)


def tier_values(tiers: pd.Series) -> np.ndarray:
    """Risk tiers as strings, None kept (a household with insufficient data has no tier)."""
    return np.array([None if pd.isna(tier) else str(tier) for tier in tiers.tolist()], dtype=object)


def larger_risk(scores: pd.DataFrame) -> np.ndarray:
    """Per row the larger of `poverty_risk` and `relapse_risk` (the one the tier and the order follow)."""
    return np.fmax(scores["poverty_risk"].to_numpy(dtype=float), scores["relapse_risk"].to_numpy(dtype=float))


def _sorted_flags(flags: pd.DataFrame) -> pd.DataFrame:
    return (
        flags.assign(_risk=larger_risk(flags))
        .sort_values(
            ["village_id", "_risk", "household_id"], ascending=[True, False, True], na_position="last"
        )
        .drop(columns="_risk")
    )


def model_identity(predictor: RiskPredictor, model_versions: Mapping[str, str]) -> tuple[str, str]:
    """(names, versions) of the predictor's models, each joined by ";" in task order poverty, relapse."""
    models = [model for model in (predictor.poverty, predictor.relapse) if model is not None]
    identities = [model_reference(model, model_versions.get(model.task)) for model in models]
    return ";".join(name for name, _ in identities), ";".join(version for _, version in identities)


def model_reference(model: TaskModel, version_override: str | None = None) -> tuple[str, str]:
    """(name, version) that identify a task model in the flag list and the service response.

    A model loaded from the MLflow registry reports its registered name and version (`povrisk-poverty`,
    `"3"`); a model trained in memory `povrisk-<task>` and `data-<training data hash>`.
    `version_override` (a version given by the caller) takes precedence over both versions.
    """
    name = model.registered_name or MODEL_NAME_PREFIX + model.task
    if version_override is not None:
        return name, str(version_override)
    if model.registered_version is not None:
        return name, model.registered_version
    return name, f"data-{model.data_hash}"


def reasons_text(reasons: Sequence[Mapping[str, Any]]) -> str:
    """The reasons' sentences joined by "; "."""
    return REASON_SEPARATOR.join(str(reason["sentence"]) for reason in reasons)


def reasons_json(reasons: Sequence[Mapping[str, Any]]) -> str:
    """The reasons as a JSON list (missing values as null; Chinese kept readable)."""
    return json.dumps(
        [{key: _json_value(value) for key, value in reason.items()} for reason in reasons], ensure_ascii=False
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value
