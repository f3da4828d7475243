"""The BentoML scoring service: one household in, its risks, category and reasons out.

Run it with `bentoml serve serving.service:PovertyRiskService` (or `povrisk serve`). At start-up the
service loads the champion model of both tasks from the MLflow registry (`MLFLOW_TRACKING_URI`, see
`training.tracking`) and the policy, once; it refuses to start, naming what is missing, when a task has
no champion. A request then costs one feature build, two booster predictions and one TreeSHAP pass on a
single row, all with one thread; no MLflow call is made per request.

Endpoints: `POST /score` (below) and BentoML's built-in `/livez`, `/healthz`, `/readyz` (ready only
once the models are loaded), `/metrics` (Prometheus) and `/docs.json` (OpenAPI).
Errors: a body that does not match `ScoreRequest` gets 400 with pydantic's list of every bad field
(BentoML's default); a household the policy cannot score (e.g. a year before the first poverty line)
gets 400 with the reason; anything else is a 500 whose message says scoring failed and is logged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import bentoml
import numpy as np
import pandas as pd
from bentoml.exceptions import InternalServerError, InvalidArgument

from features.frame import FeatureInputError, build_features, survey_years
from features.policy import Policy, PolicyError, load_policy
from models.explain import Language
from models.predictor import RiskPredictor, TaskModel
from monitoring.categories import monitoring_category
from serving.batch import model_reference
from serving.schemas import HouseholdIn, ModelRef, ReasonOut, ScoreRequest, ScoreResponse, to_frames
from training.tracking import CHAMPION, load_champion, registered_name, tracking_uri

logger = logging.getLogger(__name__)

TASKS = ("poverty", "relapse")


class ServiceStartError(RuntimeError):
    """The service cannot start: a champion model is missing or does not fit the policy."""


@dataclass(frozen=True)
class LoadedModels:
    """What the service scores with: both champions, their registry versions, and the policy."""

    predictor: RiskPredictor
    model_refs: tuple[ModelRef, ...]


def load_models(policy: Policy) -> LoadedModels:
    """Load each task's champion from the MLflow registry; `ServiceStartError` when one is missing."""
    uri = tracking_uri()
    task_models: dict[str, TaskModel] = {}
    refs: list[ModelRef] = []
    for task in TASKS:
        try:
            task_model = load_champion(task)
        except Exception as error:  # MLflow raises several types for "no such model/alias"
            raise ServiceStartError(
                f"no usable champion for task {task!r} (models:/{registered_name(task)}@{CHAMPION}) "
                f"in the MLflow registry at {uri}: {error}. Train and promote a model first "
                f"(povrisk train --task {task}; povrisk promote --task {task})."
            ) from error
        _check_policy(task_model, policy)
        task_models[task] = task_model
        name, version = model_reference(task_model)
        refs.append(ModelRef(name=name, version=version))
    predictor = RiskPredictor(policy, poverty=task_models["poverty"], relapse=task_models["relapse"])
    return LoadedModels(predictor=predictor, model_refs=tuple(refs))


def _check_policy(task_model: TaskModel, policy: Policy) -> None:
    if task_model.policy_version and task_model.policy_version != policy.version:
        raise ServiceStartError(
            f"the {task_model.task} champion was trained under policy {task_model.policy_version!r} but the "
            f"service loaded policy {policy.version!r}; retrain or serve with the matching policy"
        )


def score_household(
    models: LoadedModels, household: HouseholdIn, lang: Language = "zh", top_k: int = 3
) -> ScoreResponse:
    """Score one household (pure: no I/O). Raises `PolicyError`/`FeatureInputError` for unscorable input."""
    households, members = to_frames(household)
    policy = models.predictor.policy
    features = build_features(households, members if len(members) else None, policy)
    scores = models.predictor.score_features(features, lang=lang, top_k=top_k)
    years = survey_years(households, households["round"].to_numpy(dtype=np.int64), policy)
    category = monitoring_category(features, scores, policy, years)
    row = scores.iloc[0]
    return ScoreResponse(
        household_id=household.household_id,
        poverty_risk=_optional(row["poverty_risk"]),
        relapse_risk=_optional(row["relapse_risk"]),
        risk_tier=str(row["risk_tier"]),
        category=str(category["category"].iloc[0]),
        category_rule=str(category["rule"].iloc[0]),
        reasons=[_reason(reason) for reason in row["reasons"]],
        models=list(models.model_refs),
    )


def _reason(reason: dict[str, Any]) -> ReasonOut:
    return ReasonOut(
        indicator=str(reason["indicator"]),
        value=_optional(reason["value"]),
        contribution=float(reason["contribution"]),
        sentence=str(reason["sentence"]),
    )


def _optional(value: Any) -> float | None:
    return None if value is None or pd.isna(value) or math.isinf(float(value)) else float(value)


@bentoml.service(name="povrisk", workers=1, traffic={"timeout": 30})
class PovertyRiskService:
    """Scores one household with the champion poverty and relapse models."""

    def __init__(self) -> None:
        self._models: LoadedModels | None = None
        self._models = load_models(load_policy())
        logger.info(
            "povrisk service ready: %s", ", ".join(f"{r.name} v{r.version}" for r in self._models.model_refs)
        )

    def __is_ready__(self) -> bool:
        return self._models is not None

    @bentoml.api(route="/score")
    def score(self, request: ScoreRequest) -> ScoreResponse:
        """Risk of being poor now and of falling (back) into poverty, tier, monitoring category, reasons."""
        if self._models is None:  # cannot happen after __init__, kept for a clear message
            raise InternalServerError("models are not loaded")
        try:
            return score_household(self._models, request.household, lang=request.lang)
        except (PolicyError, FeatureInputError) as error:
            raise InvalidArgument(
                f"household {request.household.household_id} cannot be scored: {error}"
            ) from error
        except Exception as error:
            logger.exception("scoring failed for household %s", request.household.household_id)
            household_id = request.household.household_id
            raise InternalServerError(
                f"scoring failed for household {household_id}: {type(error).__name__}: {error}"
            ) from error
