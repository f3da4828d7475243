"""The scoring model as one object: booster + calibrator + the feature list and context it was trained on.

- `TaskModel`: one task's model (`poverty` = poor now, `relapse` = non-poor now, poor next round).
- `RiskPredictor`: both task models behind one `score` call (features built once, reasons attached).
- `PackagedPredictor`: the MLflow pyfunc wrapper; its input is the *feature frame* (one float64 column per
  indicator, as `features.frame.build_features` returns), its output a frame with the calibrated
  probability in column `risk`. The booster travels as a text artifact, never pickled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, load_model
from mlflow.tracking import MlflowClient

from features.completeness import SUFFICIENT, KnownInputs, ModelWeights, data_completeness
from features.frame import build_feature_frames
from features.policy import Policy
from models.calibration import Calibrator
from models.explain import Language, ReasonRules, probability_effects, top_reasons_of_rows
from models.linear import LinearModel
from models.spec import LightGBMSpec

BOOSTER_ARTIFACT = "booster"
TASKS = ("poverty", "relapse")

PARALLEL_ROWS = 1_000
"""From this many rows on, TreeSHAP runs on `BATCH_THREADS` threads (below, thread start-up dominates)."""
BATCH_THREADS = 2


@dataclass(frozen=True)
class TaskModel:
    """One task's trained model and what it was trained on.

    `reference_values` are training medians of the features (decide "high"/"low" wording of reasons);
    `explanatory_weight` is each feature's share of the mean |SHAP| over the training rows (what data
    completeness weighs known inputs by, features/completeness.py; empty for a model saved before it);
    `metrics` are held-out metrics; `data_hash` identifies the training survey. `registered_name` and
    `registered_version` identify the model in the MLflow registry (e.g. `povrisk-poverty`, `"3"`); they
    are filled when the model is loaded from the registry and None for a model trained in memory.

    The margin is the booster's log-odds, or, when training chose the logistic regression or a blend
    (`training.candidates`), `(1 - blend_weight) * booster + blend_weight * linear` log-odds; the
    contributions are blended the same way, so they still sum with their base value to the margin.
    """

    task: str
    booster: lgb.Booster | None
    calibrator: Calibrator
    feature_names: tuple[str, ...]
    metrics: Mapping[str, float]
    trained_rounds: tuple[int, ...]
    data_hash: str
    spec: LightGBMSpec
    reference_values: Mapping[str, float] = field(default_factory=dict)
    policy_version: str = ""
    registered_name: str | None = None
    registered_version: str | None = None
    explanatory_weight: Mapping[str, float] = field(default_factory=dict)
    linear: LinearModel | None = None
    blend_weight: float = 0.0
    candidate_brier: Mapping[str, float] = field(default_factory=dict)
    """Each candidate's cross-fitted out-of-fold Brier score in training (the kept one is the lowest):
    which model this is, and why (`training.candidates`)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.blend_weight <= 1.0:
            raise ValueError(f"blend_weight must lie in [0, 1], got {self.blend_weight}")
        if self.blend_weight > 0.0 and self.linear is None:
            raise ValueError(f"{self.task}: a blend weight of {self.blend_weight} needs the linear model")
        if self.linear is not None and self.linear.feature_names != tuple(self.feature_names):
            raise ValueError(f"{self.task}: the linear model's features differ from the model's")

    @property
    def candidate(self) -> Candidate:
        """Which candidate this is: `lightgbm`, `logistic` or `blend` (`training.candidates`)."""
        return candidate_name(self.blend_weight)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle, a model saved before a field existed getting its default."""
        state = {"explanatory_weight": {}, "linear": None, "blend_weight": 0.0, "candidate_brier": {}} | state
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def _ready_booster(self) -> lgb.Booster:
        if self.booster is None:
            raise RuntimeError(f"{self.task} model has no booster loaded")
        return self.booster

    def feature_values(self, features: pd.DataFrame) -> np.ndarray:
        """The model's columns of `features` in training order (the booster's), as a float64 array;
        absent columns are NaN (LightGBM's missing)."""
        names = list(self.feature_names)
        positions = features.columns.get_indexer(pd.Index(names))
        if (positions < 0).any():
            return features.reindex(columns=names).to_numpy(dtype=np.float64)
        # every column there (the usual case): one take from the float array instead of a reindex
        return features.to_numpy(dtype=np.float64)[:, positions]

    def feature_matrix(self, features: pd.DataFrame) -> pd.DataFrame:
        """`feature_values` as a frame on the index of `features`, columns named."""
        values = self.feature_values(features)
        return pd.DataFrame(values, index=features.index, columns=list(self.feature_names), copy=False)

    def predict_margin(self, features: pd.DataFrame) -> np.ndarray:
        """Raw booster output in log-odds, predicted with one thread (fast for a few rows)."""
        return self.margin_of(self.feature_values(features))

    def margin_of(self, values: np.ndarray) -> np.ndarray:
        """`predict_margin` of rows already in `feature_values` form."""
        weight = self.blend_weight
        if weight == 0.0 or self.linear is None:
            return np.asarray(self._ready_booster().predict(values, raw_score=True, num_threads=1))
        linear = self.linear.margin_of(values)
        if weight == 1.0:
            return linear
        tree = np.asarray(self._ready_booster().predict(values, raw_score=True, num_threads=1))
        return (1.0 - weight) * tree + weight * linear

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the task's positive class, one per row of `features`."""
        return self.proba_of(self.feature_values(features))

    def proba_of(self, values: np.ndarray) -> np.ndarray:
        """`predict_proba` of rows already in `feature_values` form."""
        if len(values) == 0:
            return np.empty(0, dtype=np.float64)
        return self.calibrator.transform(self.margin_of(values))

    def contribution_values(self, values: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions (log-odds) of rows in `feature_values` form: one column per feature in
        `feature_names` order, then the base value (`models.explain.contributions` is the frame form).
        One thread for a few rows (a service request), `BATCH_THREADS` from `PARALLEL_ROWS` rows on (a
        county round)."""
        weight = self.blend_weight
        if weight == 1.0 and self.linear is not None:
            return self.linear.contribution_values(values)
        threads = BATCH_THREADS if len(values) >= PARALLEL_ROWS else 1
        tree = np.asarray(self._ready_booster().predict(values, pred_contrib=True, num_threads=threads))
        if weight == 0.0 or self.linear is None:
            return tree
        return (1.0 - weight) * tree + weight * self.linear.contribution_values(values)

    def without_booster(self) -> TaskModel:
        return replace(self, booster=None)

    def registered_as(self, name: str, version: str) -> TaskModel:
        """This model identified as version `version` of registered model `name`."""
        return replace(self, registered_name=name, registered_version=str(version))


Candidate = Literal["lightgbm", "logistic", "blend"]


def candidate_name(blend_weight: float) -> Candidate:
    """`lightgbm`: the booster alone (weight 0); `logistic`: the linear model alone (1); else `blend`."""
    if blend_weight == 0.0:
        return "lightgbm"
    return "logistic" if blend_weight == 1.0 else "blend"


def risk_tier(risk: np.ndarray, policy: Policy) -> np.ndarray:
    """`high` at or above `policy.risk_tiers.high`, `medium` at or above `.medium`, else `low`.

    Missing risk (no model for either task) is `unknown`.
    """
    tiers = np.where(
        risk >= policy.risk_tiers.high, "high", np.where(risk >= policy.risk_tiers.medium, "medium", "low")
    )
    return np.where(np.isnan(risk), "unknown", tiers).astype(object)


@dataclass(frozen=True)
class RiskPredictor:
    """Scores households with the poverty and relapse models.

    Rules:
    - `risk_tier` is set by the larger of the two probabilities (`max(poverty_risk, relapse_risk)`): a
      household needs attention when either it is likely poor now or likely to fall into poverty.
    - `reasons` explain the model that set the tier (`reason_model`): the poverty model when
      poverty_risk >= relapse_risk, the relapse model otherwise. For a poor household this is the
      poverty model, for a secure-looking non-poor one usually the relapse model, and the reasons
      always explain the number the cadre acts on.
    - A missing model gives NaN for its risk and is never chosen to explain.
    """

    policy: Policy
    poverty: TaskModel | None = None
    relapse: TaskModel | None = None

    def __post_init__(self) -> None:
        if self.poverty is None and self.relapse is None:
            raise ValueError("RiskPredictor needs at least one of the poverty and relapse models")
        for task, model in self._models():  # the array paths rely on the booster's own column order
            if model.booster is not None and model.booster.feature_name() != list(model.feature_names):
                raise ValueError(f"the {task} model's booster was trained on other columns than it lists")

    def _feature_values(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each present model's `feature_values`, by task (taken once, used for risks and reasons)."""
        return {task: model.feature_values(features) for task, model in self._models()}

    def _models(self) -> list[tuple[str, TaskModel]]:
        return [
            (task, model)
            for task, model in (("poverty", self.poverty), ("relapse", self.relapse))
            if model is not None
        ]

    def score(
        self,
        households: pd.DataFrame,
        members: pd.DataFrame | None,
        history: pd.DataFrame | None = None,
        lang: Language = "zh",
        top_k: int = 3,
    ) -> pd.DataFrame:
        """One row per (household_id, round): poverty_risk, relapse_risk, risk_tier, reason_model, the
        data completeness columns (see `risks`) and reasons.

        `reasons` is a list of dicts (indicator, value, contribution, sentence), largest first.
        """
        frames = build_feature_frames(households, members, self.policy, history)
        return self.score_features(frames.features, lang=lang, top_k=top_k, known_inputs=frames.known_inputs)

    def score_features(
        self,
        features: pd.DataFrame,
        lang: Language = "zh",
        top_k: int = 3,
        explain: np.ndarray | None = None,
        known_inputs: KnownInputs | None = None,
    ) -> pd.DataFrame:
        """`score` on an already-built feature frame. `explain` (a boolean mask over the rows) limits the
        reasons to those rows (the others get none): a county round needs them for flagged households
        only, and TreeSHAP is most of the cost of scoring."""
        values = self._feature_values(features)
        risks = self._risks_of(features.index, values, known_inputs)
        chosen = np.ones(len(features), dtype=bool) if explain is None else np.asarray(explain, dtype=bool)
        reasons = self._reasons_of(values, risks["reason_model"].to_numpy(), chosen, lang, top_k)
        return risks.assign(reasons=pd.Series(reasons, index=features.index, dtype=object))

    def risks(self, features: pd.DataFrame, known_inputs: KnownInputs | None = None) -> pd.DataFrame:
        """Per row: poverty_risk, relapse_risk, risk_tier and reason_model (the task that explains it).

        With `known_inputs` (`FeatureFrames.known_inputs` of the same rows) also `data_completeness`,
        `sufficient_data` and `missing_blocks` (features/completeness.py); a row with insufficient data
        has no tier (None)."""
        return self._risks_of(features.index, self._feature_values(features), known_inputs)

    def data_completeness(self, known_inputs: KnownInputs, index: pd.Index) -> pd.DataFrame:
        """`features.completeness.data_completeness` over the present models, at the policy's minimum."""
        models = [ModelWeights(model.feature_names, model.explanatory_weight) for _, model in self._models()]
        return data_completeness(known_inputs, index, models, self.policy.data_completeness_minimum)

    def _risks_of(
        self, index: pd.Index, values: dict[str, np.ndarray], known_inputs: KnownInputs | None = None
    ) -> pd.DataFrame:
        missing = np.full(len(index), np.nan)
        poverty_risk = missing if self.poverty is None else self.poverty.proba_of(values["poverty"])
        relapse_risk = missing if self.relapse is None else self.relapse.proba_of(values["relapse"])
        use_poverty = ~(relapse_risk > poverty_risk) & ~np.isnan(poverty_risk)
        risks = pd.DataFrame(
            {
                "poverty_risk": poverty_risk,
                "relapse_risk": relapse_risk,
                "risk_tier": risk_tier(np.fmax(poverty_risk, relapse_risk), self.policy),
                "reason_model": np.where(use_poverty, "poverty", "relapse").astype(object),
            },
            index=index,
        )
        if known_inputs is None:
            return risks
        completeness = self.data_completeness(known_inputs, index)
        tiers = risks["risk_tier"].to_numpy().copy()
        tiers[~completeness[SUFFICIENT].to_numpy(dtype=bool)] = None
        risks["risk_tier"] = tiers
        return pd.concat([risks, completeness], axis=1)

    def reasons(
        self,
        features: pd.DataFrame,
        reason_model: np.ndarray,
        explain: np.ndarray,
        lang: Language = "zh",
        top_k: int = 3,
    ) -> list[list[dict[str, Any]]]:
        """The top reasons (dicts: indicator, value, contribution, sentence, effect_pp) of the rows in
        `explain`, from each row's `reason_model`; an empty list for the other rows.

        Only the indicators the policy lets be named (`reasons.eligible`) are reasons; `contribution` is
        in log-odds, `effect_pp` what it adds to the calibrated probability in percentage points
        (`models.explain.probability_effects`, rounded to 0.1)."""
        return self._reasons_of(self._feature_values(features), reason_model, explain, lang, top_k)

    def _reasons_of(
        self,
        values: dict[str, np.ndarray],
        reason_model: np.ndarray,
        explain: np.ndarray,
        lang: Language,
        top_k: int,
    ) -> list[list[dict[str, Any]]]:
        reasons: list[list[dict[str, Any]]] = [[] for _ in range(len(reason_model))]
        rules = ReasonRules.of(self.policy)
        for task, model in self._models():
            positions = np.flatnonzero((reason_model == task) & explain)
            if len(positions) == 0:
                continue
            rows = values[task][positions]
            with_base = model.contribution_values(rows)
            contribs = with_base[:, :-1]  # the last column is the base value; all sum to the margin
            effects = probability_effects(contribs, with_base.sum(axis=1), model.calibrator.transform)
            chosen = top_reasons_of_rows(
                contribs,
                rows,
                list(model.feature_names),
                top_k,
                lang,
                model.reference_values,
                rules,
                effects,
            )
            for position, household_reasons in zip(positions, chosen, strict=True):
                reasons[position] = [dict(vars(reason)) for reason in household_reasons]
        return reasons


class PackagedPredictor(PythonModel):
    """MLflow pyfunc model: feature frame in, calibrated probability (`risk` column) out.

    Log it with `artifacts={"booster": <path to booster.txt>}`; the booster is dropped when pickled
    and restored from that file in `load_context`.
    """

    def __init__(self, task_model: TaskModel, policy: Policy) -> None:
        self._task_model = task_model
        self.policy = policy

    @property
    def task_model(self) -> TaskModel:
        return self._task_model

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_task_model"] = self._task_model.without_booster()
        return state

    def load_context(self, context: Any) -> None:
        booster = lgb.Booster(model_file=context.artifacts[BOOSTER_ARTIFACT])
        self._task_model = replace(self._task_model, booster=booster)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        frame = pd.DataFrame(model_input)
        return pd.DataFrame({"risk": self._task_model.predict_proba(frame)}, index=frame.index)


def registry_reference(model_uri: str) -> tuple[str, str | None, str | None] | None:
    """(name, version, alias) of a registry URI `models:/NAME/VERSION` or `models:/NAME@ALIAS`; None for
    any other URI (a run, a local folder)."""
    if not model_uri.startswith("models:/"):
        return None
    reference = model_uri.removeprefix("models:/").strip("/")
    if "@" in reference:
        name, alias = reference.rsplit("@", 1)
        return name, None, alias
    name, _, version = reference.rpartition("/")
    if not name or not version.isdigit():
        return None
    return name, version, None


def load_task_model(model_uri: str) -> TaskModel:
    """The TaskModel inside a packaged predictor saved with MLflow (`models:/povrisk-poverty@champion`).

    For a registry URI the model carries its `registered_name` and `registered_version`; an alias is
    resolved to its version first, and that version is loaded (so the two always agree).
    """
    reference = registry_reference(model_uri)
    name, version = (None, None) if reference is None else reference[:2]
    if reference is not None and reference[2] is not None:
        version = str(MlflowClient().get_model_version_by_alias(reference[0], reference[2]).version)
        model_uri = f"models:/{name}/{version}"
    packaged = load_model(model_uri).unwrap_python_model()
    if not isinstance(packaged, PackagedPredictor):
        raise TypeError(
            f"{model_uri} does not hold a povrisk PackagedPredictor (got {type(packaged).__name__})"
        )
    if name is None or version is None:
        return packaged.task_model
    return packaged.task_model.registered_as(name, version)
